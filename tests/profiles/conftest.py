"""The EMPI's sample channels (pix-feed, pix-query, pdq-query) on free ports, and their MLLP peers.

The channels are the shipped ``channels/*.yaml`` with the sample ``empi:`` domains of
``config.yaml`` (hospital A: HOSP_A 1.2.156.112604.1.1, fed by HIS_A; hospital B: HOSP_B
1.2.156.112605.1.1, fed by HIS_B), each on a free port. Every RSP must pass hl7apy's strict v2.5
validation. The people are made up; their ID-card numbers have valid check characters.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from engine.config import AppConfig, load_config
from engine.runtime import Runtime
from tests.conftest import far_from_now, free_port, running
from tests.engine.connectors.mllp_peers import hl7_send

ROOT = Path(__file__).resolve().parents[2]
A = "HOSP_A&1.2.156.112604.1.1&ISO"
B = "HOSP_B&1.2.156.112605.1.1&ISO"
NATIONAL = "NIC&2.16.156.10011.1.3&ISO"
NID_A = "320102198503120311"  # 欧阳明轩, 1985-03-12, male
NID_B = "320508199007210240"  # 林秀英, 1990-07-21, female
CHANNELS = ("pix-feed", "pix-query", "pdq-query", "pix-feed-hospital-a", "pix-notify", "pix-consumer-demo")


class Pix:
    def __init__(self, rt: Runtime, ports: dict[str, int], folder: Path) -> None:
        self.rt = rt
        self.notifications = folder / "data" / "out" / "pix-notifications"  # the demo consumer's files
        self.config = folder / "config.yaml"
        self.feed_port, self.query_port, self.pdq_port, self.vendor_port = (ports[c] for c in CHANNELS[:4])
        self._n = 0
        self.last_id = ""

    def _id(self) -> str:
        self._n += 1
        self.last_id = f"T{self._n:05d}"  # MSH-10 of the last request, which MSA-2 must echo
        return self.last_id

    async def feed(
        self,
        pid: str,
        *,
        event: str = "A01",
        app: str = "HIS_A",
        fac: str = "HOSP_A",
        version: str = "2.5",
        mrg: str = "",
    ) -> list[list[str]]:
        structure = "ADT_A39" if event == "A40" else "ADT_A01"
        msg = (
            f"MSH|^~\\&|{app}|{fac}|PIX|CITY_HIE|20261203090000||ADT^{event}^{structure}|{self._id()}|P|{version}"
            f"|||||CHN|UNICODE UTF-8\rEVN|{event}|20261203090000\r{pid}\r"
        )
        msg += f"MRG|{mrg}\r" if mrg else "PV1|1|N\r"
        (answer,) = await hl7_send(self.feed_port, msg.encode("utf-8"))
        return segments(answer)

    async def query(self, qpd3: str, qpd4: str = "", *, strict: bool = True) -> list[list[str]]:
        msg = (
            f"MSH|^~\\&|XDS_REG|CITY|PIX|CITY_HIE|20261203100000||QBP^Q23^QBP_Q21|{self._id()}|P|2.5\r"
            f"QPD|IHE PIX Query|Q{self._n}|{qpd3}|{qpd4}\rRCP|I\r"
        )
        (answer,) = await hl7_send(self.query_port, msg.encode("utf-8"))
        text = unframe_text(answer)
        if strict:
            validate_strictly(text)
        return segments(answer)

    async def pdq(
        self, qpd3: str, qpd8: str = "", *, rcp2: str = "", dsc: str = "", tag: str = "", strict: bool = True
    ) -> list[list[str]]:
        msg_id = self._id()
        msg = (
            f"MSH|^~\\&|HIS_C|HOSP_C|EMPI|CITY_HIE|20261203100000||QBP^Q22^QBP_Q21|{msg_id}|P|2.5\r"
            f"QPD|IHE PDQ Query|{tag or msg_id}|{qpd3}|||||{qpd8}\rRCP|I|{rcp2}\r"
        )
        if dsc:
            msg += f"DSC|{dsc}|I\r"
        (answer,) = await hl7_send(self.pdq_port, msg.encode("utf-8"))
        if strict:
            validate_strictly(unframe_text(answer))
        return segments(answer)

    async def cancel(self, tag: str) -> list[list[str]]:
        msg = (
            f"MSH|^~\\&|HIS_C|HOSP_C|EMPI|CITY_HIE|20261203100000||QCN^J01^QCN_J01|{self._id()}|P|2.5\r"
            f"QID|{tag}|IHE PDQ Query\r"
        )
        (answer,) = await hl7_send(self.pdq_port, msg.encode("utf-8"))
        return segments(answer)


def validate_strictly(text: str) -> None:
    """hl7apy's strict structure and datatype validation of an RSP (v2.5).

    hl7apy models QPD with three fields, while HL7 v2.5 §5.5.4 puts a query's parameters "in
    successive fields" from QPD-3 on (ITI-9's QPD-4, ITI-21's QPD-8 are what-domains-returned, and
    ITI-21's QPD-3 repeats): the echoed QPD is cut to QPD-1, QPD-2 and the first repetition of
    QPD-3 for hl7apy only; every other segment is validated as sent.
    """
    lines = []
    for line in text.strip("\r").split("\r"):
        if line.startswith("QPD|"):
            fields = line.split("|")[:4]
            fields[3:] = [fields[3].split("~")[0]] if len(fields) > 3 else []
            line = "|".join(fields)
        lines.append(line)
    parse_message("\r".join(lines), validation_level=VALIDATION_LEVEL.STRICT).validate()


def unframe_text(answer: bytes) -> str:
    return answer.strip(b"\x0b\x1c\r").decode("utf-8") + "\r"


def segments(answer: bytes) -> list[list[str]]:
    return [s.split("|") for s in unframe_text(answer).split("\r") if s]


def seg(answer: list[list[str]], name: str) -> list[list[str]]:
    return [s for s in answer if s[0] == name]


def pid3(answer: list[list[str]]) -> list[str]:
    (pid,) = seg(answer, "PID")
    return pid[3].split("~")


def deploy(tmp_path: Path, store_url: str, names: tuple[str, ...]) -> tuple[AppConfig, dict[str, int]]:
    """The sample config and the named sample channels under ``tmp_path``, every 127.0.0.1 address
    moved to a free port (the same address to the same port); each channel's source port."""
    ports: dict[str, int] = {}
    moved: dict[str, str] = {}  # sample address -> free address, so pix-notify reaches the consumer

    def move(m: re.Match[str]) -> str:
        moved.setdefault(m.group(0), f"127.0.0.1:{free_port()}")
        return moved[m.group(0)]

    (tmp_path / "channels").mkdir()
    for name in names:
        text = re.sub(r"127\.0\.0\.1:\d+", move, (ROOT / "channels" / f"{name}.yaml").read_text("utf-8"))
        source = text.split("destinations:")[0]
        found = re.search(r"url: (?:mllp|http|soap|hip|dicom|wado)://127\.0\.0\.1:(\d+)", source)
        ports[name] = int(found.group(1)) if found else 0
        (tmp_path / "channels" / f"{name}.yaml").write_text(text, "utf-8")
    config = (ROOT / "config.yaml").read_text("utf-8")
    config = config.replace("mappings_dir: mappings", f"mappings_dir: '{ROOT / 'mappings'}'")
    config = config.replace("url: ${HIE_STORE_URL:-}", f"url: '{store_url}'")
    config = config.replace("data_dir: ${HIE_DATA_DIR:-data}", f"data_dir: '{tmp_path / 'data'}'")
    # the nightly prune must not run inside a test that happens to span its minute
    config = config.replace("retention:\n", f"retention:\n  prune_at: '{far_from_now()}'\n", 1)
    (tmp_path / "config.yaml").write_text(config, "utf-8")
    return load_config(tmp_path / "config.yaml"), ports


@pytest.fixture
async def pix(tmp_path: Path, store_url: str) -> AsyncIterator[Pix]:
    app, ports = deploy(tmp_path, store_url, CHANNELS)
    async with running(app) as rt:
        yield Pix(rt, ports, tmp_path)
