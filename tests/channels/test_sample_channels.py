"""The shipped sample configuration, run as a newcomer runs it: ``config.yaml`` and ``channels/*.yaml``.

The files are copied as they are, except that each listening port is moved to a free one (so the
test never collides with an engine already running on 2575-2579). Each hospital's HIS sends its own
dialect over MLLP; the platform's v2.5 ADT must come out in the archive folder and at the demo
downstream channel, and a message the mapping refuses must be answered AE and stored as errored.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.config import load_config
from engine.store.schema import messages
from tests.conftest import free_port, running
from tests.engine.connectors.mllp_peers import ack_of, hl7_send, rows, until

ROOT = Path(__file__).resolve().parents[2]
CASES = ROOT / "tests" / "data" / "mappings"


def sample_config(tmp_path: Path) -> tuple[Path, dict[int, int]]:
    """The sample config in ``tmp_path``; returns it and the port map (sample port -> free port)."""
    ports: dict[int, int] = {}

    def move(m: re.Match[str]) -> str:
        port = int(m.group(1))
        ports.setdefault(port, free_port())
        return f"127.0.0.1:{ports[port]}"

    (tmp_path / "channels").mkdir()
    for file in sorted((ROOT / "channels").glob("*.yaml")):
        text = re.sub(r"127\.0\.0\.1:(\d+)", move, file.read_text("utf-8"))
        (tmp_path / "channels" / file.name).write_text(text, "utf-8")
    config = (ROOT / "config.yaml").read_text("utf-8")
    config = config.replace("mappings_dir: mappings", f"mappings_dir: '{ROOT / 'mappings'}'")
    (tmp_path / "config.yaml").write_text(config, "utf-8")
    return tmp_path / "config.yaml", ports


@pytest.mark.parametrize(
    ("port", "case", "control_id", "expect_in_output"),
    [
        (2577, "hospital-a-adt/a01-inpatient.hl7", "A20261120001", "|张^伟^^^^^L|"),
        (2578, "hospital-b-adt/a04-outpatient.hl7", None, "|ADT^A04^ADT_A01|"),
        (2579, "hospital-c-adt/a01-inpatient.hl7", None, "|ADT^A01^ADT_A01|"),
    ],
    ids=["hospital-a", "hospital-b", "hospital-c"],
)
async def test_each_vendor_channel_maps_to_the_platform_profile_end_to_end(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    port: int,
    case: str,
    control_id: str | None,
    expect_in_output: str,
) -> None:
    monkeypatch.delenv("HIE_STORE_URL", raising=False)
    monkeypatch.delenv("HIE_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    config, ports = sample_config(tmp_path)
    app = load_config(config)
    message = (CASES / case).read_bytes()
    async with running(app) as rt:
        (answer,) = await hl7_send(ports[port], message)
        assert ack_of(answer, "gb18030")["MSA"][1] == "AA"
        archived = await until(lambda: list((tmp_path / "data" / "out" / "platform").glob("*.hl7")))
        downstream = tmp_path / "data" / "out" / "downstream"
        forwarded = await until(lambda: [f for f in downstream.glob("*") if not f.name.startswith(".")])
        stored = rows(rt, messages)
    for out in (archived[0], forwarded[0]):
        text = out.read_bytes().decode("utf-8")
        first = text.replace("\n", "\r").split("\r")[0]
        assert first.startswith("MSH|^~\\&|HIE|CITY_HIE|") and "|2.5|" in first, first
        assert first.endswith("UNICODE UTF-8"), first
        assert expect_in_output in text
    received = [r for r in stored if r["channel_id"].startswith("his-hospital")]
    assert len(received) == 1 and received[0]["status"] == "received"
    if control_id is not None:
        assert received[0]["control_id"] == control_id


async def test_a_message_the_mapping_refuses_is_answered_ae_and_stored_errored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HIE_STORE_URL", raising=False)
    monkeypatch.delenv("HIE_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    config, ports = sample_config(tmp_path)
    app = load_config(config)
    refused = (CASES / "hospital-c-adt" / "error-unknown-ethnicity.hl7").read_bytes()
    async with running(app) as rt:
        (answer,) = await hl7_send(ports[2579], refused)
        ack = ack_of(answer, "utf-8")
        stored = rows(rt, messages)
    assert ack["MSA"][1] == "AE"
    # a v2.5 sender reads the reason in ERR-8 and the field in ERR-2 (PID-22, ethnic group)
    assert "mapping hospital-c-adt" in ack["ERR"][8] and "gb-3304-ethnicity" in ack["ERR"][8]
    assert ack["ERR"][2].startswith("PID^1^22")
    (row,) = [r for r in stored if r["channel_id"] == "his-hospital-c"]
    assert row["status"] == "errored" and "PID.22.1" in row["error"]
    assert not (tmp_path / "data" / "out" / "platform").exists() or not any(
        (tmp_path / "data" / "out" / "platform").iterdir()
    )


async def test_the_readme_walk_through_of_the_patient_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """README step 7: a patient fed from two hospitals, then found by PIX and by PDQ."""
    monkeypatch.delenv("HIE_STORE_URL", raising=False)
    monkeypatch.delenv("HIE_DATA_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    config, ports = sample_config(tmp_path)
    empi = ROOT / "tests" / "data" / "empi"
    app = load_config(config)
    async with running(app):
        answers = await hl7_send(
            ports[3600], *((empi / f).read_bytes() for f in ("feed-hospital-a.hl7", "feed-hospital-b.hl7"))
        )
        assert [ack_of(a)["MSA"][1] for a in answers] == ["AA", "AA"]
        (refused,) = await hl7_send(ports[3600], (empi / "feed-unknown-domain.hl7").read_bytes())
        assert ack_of(refused)["MSA"][1] == "AE" and ack_of(refused)["ERR"][1].startswith("PID^1^3^204")
        (pix,) = await hl7_send(ports[3601], (empi / "pix-query.hl7").read_bytes())
        assert ack_of(pix)["PID"][3] == (
            "320102198503120311^^^NIC&2.16.156.10011.1.3&ISO~B20001^^^HOSP_B&1.2.156.112605.1.1&ISO"
        )
        (pdq,) = await hl7_send(ports[3602], (empi / "pdq-query.hl7").read_bytes())
        assert ack_of(pdq)["QAK"][2] == "OK" and ack_of(pdq)["PID"][5] == "欧阳^明轩"
