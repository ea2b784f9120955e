"""A PIX feed run again with ``hie messages reprocess``: served from the queue, not inline.

Nobody waits for the ACK of a reprocessed feed; the PIX Manager applies it in a transaction of the
store's writer with its ATNA records, and the lane records the delivery's answer. An AA feed
updates the index it created; a refused one is refused again and leaves its record for auditors.
"""

from __future__ import annotations

import asyncio

import pytest
from click.testing import CliRunner, Result

from engine import runtime
from engine.cli.main import main
from engine.store.schema import audit_events, deliveries, messages
from profiles.empi.schema import events, records
from tests.engine.connectors.mllp_peers import ack_of, rows, until
from tests.profiles.conftest import Pix, seg
from tests.profiles.pix.test_pix_mllp import person_a


@pytest.fixture
def fast_takeover(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "HEARTBEAT_SECONDS", 0.5)  # the takeover pass, every 10 s in production


async def reprocess(pix: Pix, message_id: int) -> int:
    """Reprocess beside the running engine; the id of the new message."""
    result: Result = await asyncio.to_thread(
        CliRunner().invoke,
        main,
        ["messages", "reprocess", str(message_id), "--config", str(pix.config)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    (new,) = rows(pix.rt, messages, messages.c.reprocessed_from == message_id)
    return int(new["id"])


def delivery_of(pix: Pix, message_id: int) -> dict[str, object] | None:
    found = rows(pix.rt, deliveries, deliveries.c.message_id == message_id)
    return found[0] if found and found[0]["status"] in ("sent", "errored", "dead") else None


def feed_audits(pix: Pix, message_id: int) -> list[tuple[object, object]]:
    return [
        (a["action"], a["outcome"])
        for a in rows(pix.rt, audit_events, audit_events.c.message_id == message_id)
        if str(a["event_type"]).startswith("ITI-8")
    ]


async def test_a_reprocessed_feed_is_applied_from_the_queue_with_its_audit(
    fast_takeover: None, pix: Pix
) -> None:
    assert seg(await pix.feed(person_a()), "MSA")[0][1] == "AA"
    (first,) = [m for m in rows(pix.rt, messages) if m["channel_id"] == "pix-feed"]
    new = await reprocess(pix, int(str(first["id"])))
    delivery = await until(lambda: delivery_of(pix, new))
    assert delivery["status"] == "sent"
    assert ack_of(bytes(delivery["response"]))["MSA"][1] == "AA"
    # the same identity, updated by the new message; its ITI-8 record commits with the change
    (record,) = rows(pix.rt, records)
    assert record["value"] == "A1001" and record["message_id"] == new
    assert [e["kind"] for e in rows(pix.rt, events, events.c.message_id == new)] == ["update"]
    assert feed_audits(pix, new) == [("U", 0)]


async def test_a_refused_feed_reprocessed_is_refused_again_and_audited(fast_takeover: None, pix: Pix) -> None:
    answer = await pix.feed("PID|1||Z1^^^HOSP_Z^PI||张^三||19800101|M")  # a domain nobody configured
    assert seg(answer, "MSA")[0][1] == "AE"
    (first,) = [m for m in rows(pix.rt, messages) if m["channel_id"] == "pix-feed"]
    new = await reprocess(pix, int(str(first["id"])))
    delivery = await until(lambda: delivery_of(pix, new))
    assert delivery["status"] == "errored"  # an AE is final: not retried
    assert "AE" in str(delivery["last_error"]) and "HOSP_Z" in str(delivery["last_error"])
    assert ack_of(bytes(delivery["response"]))["MSA"][1] == "AE"
    assert rows(pix.rt, records) == []
    assert feed_audits(pix, new) == [("C", 4)]
    assert rows(pix.rt, messages, messages.c.id == new)[0]["reprocessed_from"] == first["id"]
