"""Building HL7 v2 messages by path: read back by our reader, python-hl7 and hl7apy."""

from __future__ import annotations

import hl7
import pytest

from engine.mapping.errors import DefinitionError
from engine.mapping.hl7builder import Hl7Builder, check_target
from engine.mapping.hl7path import compile_path, parse
from engine.mapping.hl7reader import Hl7Reader, Separators

ADT_ORDER = ["MSH", "EVN", "PID", "PD1", "NK1", "PV1", "PV2", "OBX", "AL1", "DG1"]

# Made-up patient; 11010519491231002X has a valid GB 11643 check digit.
ADT_VALUES = {
    "MSH.3.1": "HIE",
    "MSH.4.1": "CITY_HIE",
    "MSH.5.1": "EMPI",
    "MSH.6.1": "CITY",
    "MSH.7.1": "20261122083000",
    "MSH.9.1": "ADT",
    "MSH.9.2": "A01",
    "MSH.9.3": "ADT_A01",
    "MSH.10": "HIE-000042",
    "MSH.11.1": "P",
    "MSH.12.1": "2.5",
    "MSH.18": "UNICODE UTF-8",
    "EVN.2.1": "20261122083000",
    "PID.1": "1",
    "PID.3[type=PI].1": "100042",
    "PID.3[type=PI].4.1": "HOSP_A",
    "PID.3[type=NI].1": "11010519491231002X",
    "PID.3[type=NI].4.2": "2.16.156.10011.1.3",
    "PID.3[type=NI].4.3": "ISO",
    "PID.5.1.1": "赵",
    "PID.5.2": "一鸣",
    "PID.5.7": "L",
    "PID.7.1": "19491231",
    "PID.8": "F",
    "PID.11.1.1": "中山路1号",
    "PID.11.3": "南京",
    "PV1.2": "I",
    "PV1.3.1": "心内科",
    "PV1.3.2": "101",
    "PV1.19.1": "V000000042",
}


def build_adt(**kwargs: str) -> Hl7Builder:
    b = Hl7Builder(segment_order=ADT_ORDER, **kwargs)
    for path, value in reversed(ADT_VALUES.items()):  # in no particular order
        b.set(path, value)
    return b


def test_round_trip_reads_back_every_value() -> None:
    text = build_adt().to_text()
    r = Hl7Reader(text)
    for path, value in ADT_VALUES.items():
        assert compile_path(path).first(r) == value, path
    assert compile_path("PID.3[*].5").values(r) == ["NI", "PI"]  # the NI was set first (reversed order)
    assert not text.endswith("\r") and text.startswith("MSH|^~\\&|HIE|CITY_HIE|")


def test_a_built_v2_5_adt_parses_with_python_hl7() -> None:
    msg = hl7.parse(build_adt().to_text())
    assert [str(s[0]) for s in msg] == ["MSH", "EVN", "PID", "PV1"]
    assert msg.extract_field("MSH", 1, 9, 1, 2) == "A01"
    assert msg.extract_field("MSH", 1, 10) == "HIE-000042"
    assert msg.extract_field("PID", 1, 3, 1, 4, 2) == "2.16.156.10011.1.3"  # NI was set first
    assert msg.extract_field("PID", 1, 5, 1, 2) == "一鸣"


def test_a_built_v2_5_adt_parses_with_hl7apy() -> None:
    from hl7apy.consts import VALIDATION_LEVEL
    from hl7apy.parser import parse_message

    m = parse_message(build_adt().to_text(), validation_level=VALIDATION_LEVEL.STRICT)
    assert m.msh.msh_10.value == "HIE-000042"
    assert m.pid.pid_5.xpn_2.value == "一鸣"
    assert m.pv1.pv1_2.value == "I"


def test_values_with_separators_are_escaped() -> None:
    b = Hl7Builder()
    nasty = {
        "NTE.3": "a|b",
        "PID.5.1": "x^y",
        "PID.5.2": "m~n",
        "PID.5.3": "p\\q",
        "PID.5.4": "s&t",
        "PID.5.5": "line 1\rline 2\nline 3",
    }
    for path, value in nasty.items():
        b.set(path, value)
    text = b.to_text()
    assert "PID|||||x\\S\\y^m\\R\\n^p\\E\\q^s\\T\\t^line 1\\X0D\\line 2\\X0A\\line 3" in text
    assert text.count("\r") == 2  # three segments, no CR left in the data
    r = Hl7Reader(text)
    for path, value in nasty.items():
        assert compile_path(path).first(r) == value
    msg = hl7.parse(text)
    assert msg.extract_field("NTE", 1, 3) == "a|b"
    assert msg.extract_field("PID", 1, 5, 1, 3) == "p\\q"
    assert msg.extract_field("PID", 1, 5, 1, 4) == "s&t"


def test_msh_1_and_2_come_from_the_separators() -> None:
    b = Hl7Builder(field_sep="#", encoding="$*@%")
    b.set("MSH.9.2", "A08")
    b.set("PID.5.1", "a#b$c")
    text = b.to_text()
    assert text == "MSH#$*@%#######$A08\rPID#####a@F@b@S@c"  # MSH-3..MSH-8 empty
    r = Hl7Reader(text)
    assert r.separators == Separators("#", "$", "*", "@", "%")
    assert compile_path("MSH.1").first(r) == "#"
    assert compile_path("MSH.2").first(r) == "$*@%"
    assert compile_path("PID.5.1").first(r) == "a#b$c"
    assert Hl7Builder().to_text() == "MSH|^~\\&"


@pytest.mark.parametrize("path", ["MSH.1", "MSH.2", "MSH.2.1", "PID", "OBR[*]", ".5"])
def test_paths_a_builder_cannot_write_are_refused(path: str) -> None:
    with pytest.raises(DefinitionError, match=r"cannot write at|relative path|MSH-2 holds"):
        Hl7Builder().set(path, "x")


def test_check_target_at_load_time() -> None:
    assert check_target("PID.3[*].1").stars == 1
    with pytest.raises(DefinitionError, match="MSH-1 and MSH-2 are the separators"):
        check_target(compile_path("MSH.1"))
    with pytest.raises(DefinitionError, match="absolute"):
        check_target(parse(".1", compile_path("PID.3[*]")))


def test_segment_order_then_first_set_order() -> None:
    b = Hl7Builder(segment_order=["MSH", "EVN", "PID", "PV1"])
    for path in ("ZPV.1", "PV1.2", "AL1.1", "PID.1", "EVN.1", "MSH.3"):
        b.set(path, "x")
    assert [line[:3] for line in b.to_text().split("\r")] == ["MSH", "EVN", "PID", "PV1", "ZPV", "AL1"]


def test_repeated_segments_and_index_for_each_star() -> None:
    b = Hl7Builder(segment_order=["MSH", "PID", "OBR", "OBX"])
    for n, (code, value) in enumerate([("WBC", "6.2"), ("HGB", "128"), ("PLT", "210")], 1):
        b.set("OBX[*].1", str(n), (n,))
        b.set("OBX[*].5", value, (n,))
        b.set("OBX[*].3.1", code, (n,))
    b.set("PID.3[*].1", "second", (2,))
    b.set("PID.3[*].1", "first", (1,))
    b.set("OBR[*].16[*].1", "D002", (1, 2))
    lines = b.to_text().split("\r")
    assert lines[1] == "PID|||first~second"
    assert lines[2] == "OBR||||||||||||||||~D002"
    assert lines[3:] == ["OBX|1||WBC||6.2", "OBX|2||HGB||128", "OBX|3||PLT||210"]
    with pytest.raises(ValueError, match="needs as many indexes"):
        b.set("OBX[*].5", "x")


def test_selection_writes_into_the_matching_repetition_or_adds_one() -> None:
    b = Hl7Builder()
    b.set("PID.3[type=PI].1", "100042")
    b.set("PID.3[type=NI].1", "11010519491231002X")
    b.set("PID.3[type=PI].4.1", "HOSP_A")  # the PI repetition again, not a third one
    b.set("OBX[3.1=HGB].5", "128")
    b.set("OBX[3.1=WBC].5", "6.2")
    b.set("OBX[3.1=HGB].6.1", "g/L")
    assert b.to_text().split("\r")[1:] == [
        "PID|||100042^^^HOSP_A^PI~11010519491231002X^^^^NI",
        "OBX|||HGB||128|g/L",
        "OBX|||WBC||6.2",
    ]


def test_trailing_empty_parts_are_trimmed_and_intermediates_created_empty() -> None:
    b = Hl7Builder()
    b.set("PV1.3.4.1", "")
    b.set("PV1.2", "I")
    b.set("PID.11[2].3", "南京")
    b.set("NTE[2].3", "two")
    assert b.to_text().split("\r")[1:] == ["PV1||I", "PID|||||||||||~^^南京", "NTE", "NTE|||two"]


def test_setting_a_field_or_component_replaces_what_was_below() -> None:
    b = Hl7Builder()
    b.set("PID.5.1.2", "x")
    b.set("PID.5.1", "赵")
    b.set("PID.8", "M")
    b.set("PID.8", "F")
    b.set("PID.5.2", "一鸣")
    b.set("PID.13", "A^B")  # a value, not structure: escaped
    r = Hl7Reader(b.to_text())
    assert compile_path("PID.5").first(r) == "赵^一鸣"
    assert compile_path("PID.8").first(r) == "F"
    assert compile_path("PID.13").first(r) == "A^B"
    assert compile_path("PID.13.2").first(r) is None


@pytest.mark.parametrize(
    ("field_sep", "encoding"), [("||", "^~\\&"), ("|", "^~\\"), ("|", "^~|&"), ("A", "^~\\&")]
)
def test_bad_separators_are_refused(field_sep: str, encoding: str) -> None:
    with pytest.raises(DefinitionError, match="separators"):
        Hl7Builder(field_sep=field_sep, encoding=encoding)
