"""The map step in a running channel: a vendor's HL7 over MLLP becomes the platform's v2.5 ADT.

Real sockets on 127.0.0.1 (python-hl7's MLLP client), the shipped mappings and code tables, and
the store on SQLite and PostgreSQL: what the sender is answered, what is stored, what goes out.
"""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from engine.config import load_config
from engine.connectors import memory
from engine.store.schema import deliveries, messages
from tests.conftest import free_port, running
from tests.engine.connectors.mllp_peers import ack_of, hl7_send, rows, until

ROOT = Path(__file__).resolve().parents[3]
CASES = ROOT / "tests" / "data" / "mappings"


def app_with(tmp_path: Path, store_url: str, port: int):  # type: ignore[no-untyped-def]
    (tmp_path / "channels").mkdir()
    (tmp_path / "channels" / "his-a.yaml").write_text(
        f"""id: his-a
source: {{url: 'mllp://127.0.0.1:{port}', idle_timeout: 2}}
steps:
  - map: {{mapping: hospital-a-adt}}
  - map: {{mapping: platform-adt-v25}}
destinations:
  - {{id: platform, url: 'memory://his-a-platform'}}
""",
        "utf-8",
    )
    (tmp_path / "config.yaml").write_text(
        f"engine: {{data_dir: data, mappings_dir: '{ROOT / 'mappings'}'}}\nstore: {{url: '{store_url}'}}\n",
        "utf-8",
    )
    return load_config(tmp_path / "config.yaml")


async def test_vendor_feed_is_mapped_stored_and_delivered(tmp_path: Path, store_url: str) -> None:
    memory.SINKS.clear()
    port = free_port()
    app = app_with(tmp_path, store_url, port)
    good = (CASES / "hospital-a-adt" / "a01-inpatient.hl7").read_bytes()
    warned = (CASES / "hospital-a-adt" / "a01-birth-date-disagrees.hl7").read_bytes()
    unmapped = (CASES / "hospital-a-adt" / "error-unmapped-sex.hl7").read_bytes()
    async with running(app) as rt:
        answers = await hl7_send(port, good, warned, unmapped)
        acks = [ack_of(a, "gbk") for a in answers]
        assert [a["MSA"][1] for a in acks] == ["AA", "AA", "AE"]
        # the sender is told which mapping rule refused which value, with ERR naming PID-8 (v2.4 layout)
        assert "PID.8: code '7' is not mapped by table hospital-a-sex" in acks[2]["MSA"][3]
        assert acks[2]["ERR"][1].startswith("PID^1^8^103")
        sent = await until(
            lambda: len(memory.SINKS.get("his-a-platform", [])) == 2 and memory.SINKS["his-a-platform"]
        )
        stored = rows(rt, messages)
    # delivered: the platform's v2.5 profile, UTF-8 as its MSH-18 says, ID card as an NI identifier
    first = sent[0].decode("utf-8")
    assert "|ADT^A01^ADT_A01|A20261120001|P|2.5|" in first and first.split("\r")[0].endswith("UNICODE UTF-8")
    assert "320102198503120012^^^&2.16.156.10011.1.3&ISO^NI" in first and "|张^伟^^^^^L|" in first
    # stored: raw bytes as received (GBK), the transformed content, statuses, the warning, the error
    by_control = {r["control_id"]: r for r in stored}
    ok = by_control["A20261120001"]
    assert ok["raw"] == good and ok["status"] == "received" and ok["content_type"] == "hl7v2"
    assert ok["content"].startswith("MSH|^~\\&|HIE|CITY_HIE|")
    warning = json.loads(by_control["A20261120008"]["warnings"])
    assert warning == ["id_card check (line 79): ID card says born 1960-12-25, PID.7 says 1960-01-01"]
    bad = by_control["A20261120005"]
    assert bad["status"] == "errored" and "hospital-a-sex" in bad["error"] and bad["content"] is None
    assert bad["raw"] == unmapped


async def test_an_errored_mapping_queues_nothing(tmp_path: Path) -> None:
    memory.SINKS.clear()
    port = free_port()
    app = app_with(tmp_path, f"sqlite:///{tmp_path / 'store.db'}", port)
    bad = (CASES / "hospital-a-adt" / "error-bad-check-digit.hl7").read_bytes()
    async with running(app) as rt:
        (answer,) = await hl7_send(port, bad)
        assert ack_of(answer, "gbk")["MSA"][1] == "AE"
        with rt.services.db.connect() as conn:
            assert conn.execute(select(deliveries)).first() is None
    assert "his-a-platform" not in memory.SINKS
