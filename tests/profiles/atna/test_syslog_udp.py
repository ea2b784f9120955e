"""The Audit Record Repository over UDP (RFC 5426), on SQLite and PostgreSQL with real sockets: a
Query record from another system is kept beside the engine's own records and found by its
patient; what is not syslog, or not an audit message, is kept as errored with the reason and the
listener goes on; a burst of 500 datagrams is stored whole."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import func, select

from engine.config import AppConfig
from engine.store.queries import Search, search
from engine.store.schema import audit_events, deliveries, messages
from profiles.atna.intake import control_id
from profiles.atna.schema import received
from tests.conftest import free_port, running
from tests.engine.connectors.mllp_peers import rows, until
from tests.profiles.atna.peers import PATIENT, query, received_rows, send_udp, syslog, udp_channel

MakeApp = Callable[..., AppConfig]


async def test_a_query_record_from_another_system_is_found_by_its_patient(
    make_app: MakeApp, store_url: str
) -> None:
    port = free_port()
    data = syslog(query("B200017"))
    async with running(make_app({"arr": udp_channel(port)}, store_url=store_url)) as rt:
        await send_udp(port, data)
        (kept,) = await until(lambda: received_rows(rt))
        # an auditor's question: every access to this patient, whoever reported it
        (record,) = rows(rt, audit_events, audit_events.c.patient_ids.like(f"%{PATIENT}%"))
        (message,) = rows(rt, messages)
        own = rows(rt, audit_events, audit_events.c.id != record["id"])
    assert record["id"] == kept["audit_id"]
    assert (record["event_id"], record["action"], record["outcome"]) == ("110112^Query^DCM", "E", 0)
    assert record["source_id"] == "HOSP_B_EMR"  # the sender's AuditSourceID, not ours
    assert record["user_id"] == "EMR_B|HOSP_B"
    assert (record["channel_id"], record["message_id"]) == ("arr", message["id"])
    assert (kept["hostname"], kept["app_name"], kept["msgid"], kept["enterprise_site"]) == (
        "emr.hosp-b.example",
        "EMR_B",
        "IHE+RFC-3881",
        "HOSP_B",
    )
    assert kept["peer"].startswith("127.0.0.1:")
    # the syslog message is stored like every message, indexed as ITI-20
    assert message["raw"] == data and message["status"] == "received"
    assert (message["message_type"], message["control_id"]) == ("SYSLOG^ITI-20", control_id(data))
    assert (message["sending_application"], message["sending_facility"]) == ("EMR_B", "emr.hosp-b.example")
    # and the engine recorded receiving it (Import) and keeping it (Export to the repository)
    assert sorted(r["event_id"] for r in own) == ["110106^Export^DCM", "110107^Import^DCM"]
    assert {r["source_id"] for r in own} != {"HOSP_B_EMR"}


async def test_what_is_not_syslog_or_not_audit_is_kept_as_errored_and_the_listener_goes_on(
    make_app: MakeApp, store_url: str
) -> None:
    port = free_port()
    async with running(make_app({"arr": udp_channel(port)}, store_url=store_url)) as rt:
        await send_udp(port, b"<85>Dec  5 10:00:00 emr EMR_B: <AuditMessage/>")
        await send_udp(port, syslog(b"<ClinicalDocument/>"))
        await send_udp(port, syslog(query("B300001")))
        await until(lambda: received_rows(rt))
        await until(lambda: len(rows(rt, messages)) == 3)
        errored = search(rt.services.db, Search(channel="arr", status="errored"))
        (bsd,) = rows(rt, messages, messages.c.status == "errored")
        (refused,) = rows(rt, deliveries, deliveries.c.status == "errored")
        (record,) = rows(rt, audit_events, audit_events.c.source_id == "HOSP_B_EMR")
    assert len(errored) == 2
    assert bsd["raw"].startswith(b"<85>Dec") and "RFC 3164" in bsd["error"]
    assert refused["last_error"].startswith("not an audit message: the MSG is a ClinicalDocument element")
    assert record["patient_ids"] == "B300001^^^&1.2.156.112605.1.1&ISO"


async def test_a_burst_of_500_datagrams_is_stored_whole(make_app: MakeApp, store_url: str) -> None:
    port = free_port()
    datagrams = [syslog(query(f"P{i:05d}")) for i in range(500)]

    def kept(rt: object) -> int:
        with rt.services.db.connect() as conn:  # type: ignore[attr-defined]
            return int(conn.execute(select(func.count()).select_from(received)).scalar_one())

    async with running(make_app({"arr": udp_channel(port)}, store_url=store_url)) as rt:
        # at the repository's design rate, 2,000 messages/s, from another thread
        await send_udp(port, *datagrams, per_second=2000)
        await until(lambda: kept(rt) == 500, within=60)
        patients = {
            r["patient_ids"] for r in rows(rt, audit_events, audit_events.c.source_id == "HOSP_B_EMR")
        }
        source = rt.sources["arr"]
    assert patients == {f"P{i:05d}^^^&1.2.156.112605.1.1&ISO" for i in range(500)}
    assert source.intake.dropped == 0  # type: ignore[attr-defined]


async def test_a_flood_beyond_max_pending_is_dropped_and_counted(make_app: MakeApp, store_url: str) -> None:
    port = free_port()
    datagrams = [syslog(query(f"F{i:05d}")) for i in range(300)]
    channel = udp_channel(port, more=", max_pending: 2")
    async with running(make_app({"arr": channel}, store_url=store_url)) as rt:
        await send_udp(port, *datagrams)  # as fast as the socket takes them
        source = rt.sources["arr"]

        def settled() -> bool:
            kept = len(received_rows(rt))
            return kept + source.intake.dropped == 300 and not source.intake.in_flight  # type: ignore[attr-defined]

        await until(settled, within=60)
        kept = len(received_rows(rt))
        # the listener still serves once the flood has passed
        await send_udp(port, syslog(query("AFTER")))
        await until(lambda: len(received_rows(rt)) == kept + 1)
    assert source.intake.dropped > 0 and kept > 0  # type: ignore[attr-defined]
