"""The lazy reader against python-hl7, the reference: same value for every path, on real-shaped messages."""

from __future__ import annotations

import importlib
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hl7
import pytest

from engine.mapping.errors import DefinitionError, ValueRejected
from engine.mapping.hl7path import compile_path
from engine.mapping.hl7reader import Hl7Reader, Separators
from engine.mapping.hl7types import field_count

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "bench"))
adt_a01 = importlib.import_module("mllp_throughput").adt_a01  # the benchmark's synthetic ADT^A01

# A made-up ORU with repeated segments, a Z-segment, empty and missing parts; the resident ID
# 11010519491231002X has a valid GB 11643 check digit.
ORU = "\r".join(
    [
        "MSH|^~\\&|LIS|HOSP_B|HIE|CITY_HIE|20261122093000||ORU^R01^ORU_R01|LIS-0007|P|2.5|||AL|NE|CHN|"
        "UNICODE UTF-8",
        "PID|1||200007^^^HOSP_B^PI~11010519491231002X^^^NIC&2.16.156.10011.1.3&ISO^NI||赵^一鸣^^^^^L||19491231|F",
        "ORC|RE|ORD-1^HIS|LAB-1^LIS",
        "OBR|1|ORD-1^HIS|LAB-1^LIS|CBC^血常规^L|||20261122080000",
        "OBX|1|NM|WBC^白细胞^L||6.2|10*9/L|4.0-10.0|N|||F",
        "OBX|2|NM|HGB^血红蛋白^L||128|g/L|115-150~110-160|N|||F",
        "NTE|1||复查",
        "OBR|2|ORD-2^HIS|LAB-2^LIS|GLU^血糖^L|||20261122081000",
        "OBX|1|NM|GLU^葡萄糖^L||5.4|mmol/L|3.9-6.1|N|||F",
        "ZPV|1|VIP^贵宾&VIP-A|||X",
    ]
)


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("gb18030")


SAMPLES: dict[str, str] = {
    p.name: _decode(p.read_bytes()) for p in sorted((ROOT / "tests/data/hl7").glob("*.hl7"))
}
SAMPLES["bench adt_a01(0) utf-8"] = adt_a01(0, "T").decode("utf-8")
SAMPLES["bench adt_a01(1) gb18030"] = adt_a01(1, "T").decode("gb18030")
SAMPLES["oru with Z-segment"] = ORU


def test_the_samples_are_there() -> None:
    assert len(SAMPLES) >= 6  # three files, two generated messages, the ORU


def parsed(text: str) -> Any:
    """python-hl7's tree. It splits segments on CR only, and the sample files end lines with LF
    (which our reader takes as they are): the reference gets CRs, as the engine's intake gives it."""
    return hl7.parse(text.replace("\r\n", "\r").replace("\n", "\r"))


# --------------------------------------------------------------------------------------------------
# python-hl7 as the reference


def reference(msg: Any, name: str, occ: int, f: int, r: int, c: int, s: int) -> str | None:
    """What python-hl7 gives for a path: ``extract_field`` for a leaf, the container's text for a
    composite (indexing, since ``extract_field`` descends into the first child); '' is None."""
    try:
        segs = msg.segments(name)
    except KeyError:
        return None
    if occ > len(segs):
        return None
    seg = segs[occ - 1]
    if f == 0:
        return str(seg)
    if f >= len(seg):
        return None
    if name == "MSH" and f <= 2:
        return str(seg[f]) or None
    reps = list(seg[f])
    if r > len(reps):
        return None
    node: Any = reps[r - 1]
    for n in (c, s):
        if not n:
            break
        if isinstance(node, str):
            node = node if n == 1 else ""
        else:
            children = list(node)
            node = children[n - 1] if n <= len(children) else ""
    if isinstance(node, str) or len(node) <= 1:
        try:
            value = msg.extract_field(name, occ, f, r, c or 1, s or 1)
        except IndexError:  # "reaches leaf node before completing path": absent
            return None
        return str(value) or None
    text = str(node)
    # One deliberate difference: a composite of separators only (``^^^``) is empty for us.
    return text if text.strip("^&") else None


def paths(msg: Any) -> Iterator[tuple[str, str, int, int, int, int, int]]:
    """Every path down to what the message holds, one beyond at each level, with and without [1]."""
    seen: Counter[str] = Counter()
    for seg in msg:
        name = str(seg[0])
        seen[name] += 1
        occ = seen[name]
        seg_text = f"{name}[{occ}]"
        yield seg_text, name, occ, 0, 1, 0, 0
        for f in range(1, len(seg) + 1):
            fields = [f"{seg_text}.{f}"] + ([f"{name}.{f}"] if occ == 1 else [])
            for text in fields:
                yield text, name, occ, f, 1, 0, 0
            if (name == "MSH" and f <= 2) or f >= len(seg):
                continue
            reps = list(seg[f])
            for r in range(1, len(reps) + 2):
                rep = reps[r - 1] if r <= len(reps) else ""
                rep_text = f"{seg_text}.{f}[{r}]"
                yield rep_text, name, occ, f, r, 0, 0
                comps = [rep] if isinstance(rep, str) else list(rep)
                for c in range(1, len(comps) + 2):
                    comp = comps[c - 1] if c <= len(comps) else ""
                    yield f"{rep_text}.{c}", name, occ, f, r, c, 0
                    if occ == 1 and r == 1:
                        yield f"{name}.{f}.{c}", name, occ, f, r, c, 0
                    subs = [comp] if isinstance(comp, str) else list(comp)
                    for s in range(1, len(subs) + 2):
                        yield f"{rep_text}.{c}.{s}", name, occ, f, r, c, s


@pytest.mark.parametrize("label", list(SAMPLES))
def test_every_path_reads_what_python_hl7_reads(label: str) -> None:
    text = SAMPLES[label]
    msg = parsed(text)
    reader = Hl7Reader(text)
    checked = 0
    for path, name, occ, f, r, c, s in paths(msg):
        try:
            compiled = compile_path(path)
        except DefinitionError:
            continue  # one beyond the last v2.5 field of a full segment
        assert compiled.first(reader) == reference(msg, name, occ, f, r, c, s), path
        checked += 1
    assert checked > 150


@pytest.mark.parametrize("label", list(SAMPLES))
def test_iterating_paths_give_what_python_hl7_gives_one_by_one(label: str) -> None:
    text = SAMPLES[label]
    msg = parsed(text)
    reader = Hl7Reader(text)
    names = Counter(str(seg[0]) for seg in msg)
    for name, occurrences in names.items():
        for f in range(3, min(8, (field_count(name) or 8) + 1)):
            expected = [reference(msg, name, o, f, 1, 1, 0) for o in range(1, occurrences + 1)]
            assert compile_path(f"{name}[*].{f}.1").values(reader) == [v for v in expected if v], (name, f)
            n_reps = len(list(msg.segments(name)[0][f])) if f < len(msg.segments(name)[0]) else 0
            reps = [reference(msg, name, 1, f, r, 1, 0) for r in range(1, n_reps + 1)]
            assert compile_path(f"{name}.{f}[*].1").values(reader) == [v for v in reps if v], (name, f)


def test_examples_named_in_the_conventions() -> None:
    r = Hl7Reader(SAMPLES["adt_a01_utf8.hl7"])
    assert compile_path("MSH.9.2").first(r) == "A01"
    assert compile_path("MSH.10").first(r) == "MSG-A-0001"
    assert compile_path("MSH.1").first(r) == "|"
    assert compile_path("MSH.2").first(r) == "^~\\&"
    assert compile_path("MSH.3").first(r) == "HIS"
    assert compile_path("PID.3").first(r) == "100001^^^HOSP_A&1.2.156.112604.1.1&ISO^PI"
    assert compile_path("PID.3[2].1").first(r) == "320102198503120012"
    assert compile_path("PID.3.4").first(r) == "HOSP_A&1.2.156.112604.1.1&ISO"  # composite, as sent
    assert compile_path("PID.3.4.2").first(r) == "1.2.156.112604.1.1"
    assert compile_path("PID.5.1").first(r) == "王"


def test_z_segments_and_missing_things_read_as_none() -> None:
    r = Hl7Reader(ORU)
    assert compile_path("ZPV.2.1").first(r) == "VIP"
    assert compile_path("ZPV.2.2.2").first(r) == "VIP-A"
    assert compile_path("ZPV.5").first(r) == "X"
    for absent in ("ZPV.4", "ZPV.9", "ZPV.2.3", "ZPV.2.1.2", "PV1.2", "OBR[3].4", "PID.3[3].1", "PID.5.9"):
        assert compile_path(absent).first(r) is None, absent


# --------------------------------------------------------------------------------------------------
# escapes and separators


def test_escape_sequences_are_decoded_as_python_hl7_does() -> None:
    text = "\r".join(
        [
            "MSH|^~\\&|HIS|HOSP_A|HIE|CITY_HIE|20261122083000||ADT^A08|E-1|P|2.5",
            "PID|1||300001^^^HOSP_A^PI||A\\F\\B^C\\S\\D^E\\T\\F^G\\R\\H^I\\E\\J^K\\X0D\\L",
        ]
    )
    msg = hl7.parse(text)
    r = Hl7Reader(text)
    expected = ["A|B", "C^D", "E&F", "G~H", "I\\J", "K\rL"]
    for c, value in enumerate(expected, 1):
        assert msg.extract_field("PID", 1, 5, 1, c) == value
        assert compile_path(f"PID.5.{c}").first(r) == value


def test_formatting_hex_and_unknown_escapes() -> None:
    text = "MSH|^~\\&|A|B\rNTE|1||line one\\.br\\line two^\\XE4B8AD\\文^\\H\\bold\\N\\^\\Zlocal\\^a\\b"
    r = Hl7Reader(text)
    assert compile_path("NTE.3.1").first(r) == "line one\nline two"
    assert compile_path("NTE.3.2").first(r) == "中文"  # hexadecimal UTF-8 bytes
    assert compile_path("NTE.3.3").first(r) == "bold"  # highlighting is display only
    assert compile_path("NTE.3.4").first(r) == "\\Zlocal\\"  # unknown: kept as sent
    assert compile_path("NTE.3.5").first(r) == "a\\b"  # unterminated: kept as sent


def test_a_composite_of_separators_only_is_empty() -> None:
    r = Hl7Reader("MSH|^~\\&|A|B\rPID|1||^^^~X^^^&&||^^&")
    assert compile_path("PID.3").first(r) is None
    assert compile_path("PID.3[2].4").first(r) is None
    assert compile_path("PID.3[*].1").values(r) == ["X"]
    assert compile_path("PID.5").first(r) is None
    assert compile_path("PID.3[*]").values(r) == ["X^^^&&"]
    assert len(compile_path("PID.3[*]").scopes(r)) == 1
    assert compile_path("PID.3.1").count(r) == 1


def test_escapes_stay_in_composite_values() -> None:
    r = Hl7Reader("MSH|^~\\&|A|B\rPID|1||X\\S\\Y^^^HOSP_A")
    assert compile_path("PID.3.1").first(r) == "X^Y"
    assert compile_path("PID.3").first(r) == "X\\S\\Y^^^HOSP_A"  # still distinguishable from structure


def test_separators_come_from_msh() -> None:
    text = "\r".join(
        [
            "MSH#$*@%#HIS#HOSP_A#HIE#CITY_HIE#20261122083000##ADT$A01#X-1#P#2.5",
            "PID#1##400001$$$HOSP_A%1.2.3%ISO$PI*11010519491231002X$$$NIC$NI##李$四##19491231#M#"
            "^not a separator",
            "NTE#1##a@F@b@S@c",
        ]
    )
    msg = hl7.parse(text)
    r = Hl7Reader(text)
    assert r.separators == Separators("#", "$", "*", "@", "%")
    assert compile_path("MSH.1").first(r) == "#"
    assert compile_path("MSH.2").first(r) == "$*@%"
    assert compile_path("MSH.9.2").first(r) == "A01"
    assert compile_path("PID.3[2].1").first(r) == "11010519491231002X"
    assert compile_path("PID.3.4.2").first(r) == "1.2.3"
    assert compile_path("PID.3[*].5").values(r) == ["PI", "NI"]
    assert compile_path("PID.9").first(r) == "^not a separator"
    assert compile_path("NTE.3").first(r) == "a#b$c" == msg.extract_field("NTE", 1, 3)
    assert compile_path("PID.5.2").first(r) == msg.extract_field("PID", 1, 5, 1, 2) == "四"


# --------------------------------------------------------------------------------------------------
# line ends and what is not a message


@pytest.mark.parametrize("end", ["\n", "\r\n", "\r\r"])
def test_other_line_ends_read_the_same(end: str) -> None:
    text = SAMPLES["bench adt_a01(0) utf-8"]
    cr = Hl7Reader(text)
    other = Hl7Reader(text.replace("\r", end) + end)
    assert other.segments == cr.segments
    for path in ("MSH.10", "PID.3[2].1", "PID.5.1", "OBX[2].5", "IN1.3.2", "PV2.3.2"):
        assert compile_path(path).first(other) == compile_path(path).first(cr) is not None


@pytest.mark.parametrize("text", ["", "   ", "PID|1||X", "EVN|A01\rMSH|^~\\&|A", "MSH"])
def test_a_message_without_msh_first_is_rejected_with_code_100(text: str) -> None:
    with pytest.raises(ValueRejected) as info:
        Hl7Reader(text)
    assert info.value.hl7_code == "100"
    assert "MSH" in info.value.message


def test_separators_that_are_not_separators_are_rejected() -> None:
    with pytest.raises(ValueRejected, match="five distinct separators"):
        Hl7Reader("MSH|^^\\&|A")


def test_fields_are_split_once_and_cached() -> None:
    r = Hl7Reader(SAMPLES["adt_a08_ascii.hl7"])
    i = r.positions("PID")[0]
    assert r.fields(i) is r.fields(i)
    assert r.fields(0)[1] == "|" and r.fields(0)[9] == "ADT^A08^ADT_A01"
