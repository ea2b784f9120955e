"""Reading the store (search, get_message, stats) on SQLite and PostgreSQL, after a real engine run."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import update

from engine.config import AppConfig
from engine.store.queries import Search, as_utc, get_message, matching_ids, originals, search, stats
from engine.store.schema import messages
from tests.engine.cli.scenario import Filled, fill

__all__: list[str] = []


@pytest.fixture
async def filled(make_app: Callable[..., AppConfig], store_url: str) -> Filled:
    return await fill(make_app, store_url)


def labels(f: Filled, rows: Sequence[dict[str, Any] | int]) -> list[str]:
    by_id = {v: k for k, v in f.ids.items()}
    return [by_id[r if isinstance(r, int) else int(r["id"])] for r in rows]


async def test_search_filters(filled: Filled) -> None:
    db = filled.db()
    try:

        def find(**kw: Any) -> list[str]:
            return labels(filled, search(db, Search(**kw)))

        assert find() == ["L1", "A4", "A3", "A2", "A1"]  # newest first
        assert find(channel="lab") == ["L1"]
        assert find(patient_id="P100") == ["L1", "A1"]
        assert find(control_id="A2") == ["A2"]
        assert find(status="errored") == ["L1", "A4"]  # a dead-lettered delivery, a rejected message
        assert find(status="filtered") == ["A3"]
        assert find(status="received") == ["L1", "A2", "A1"]
        assert find(status="sent") == ["A2", "A1"]
        assert find(status="queued") == []
        assert find(destination="lis") == ["L1"]
        assert find(destination="lis", status="errored") == ["L1"]
        assert find(destination="out", status="errored") == []
        assert find(message_type="ADT^A08") == ["A2"]
        assert find(message_type="ADT") == ["L1", "A4", "A3", "A2", "A1"]
        assert find(message_type="AD") == []  # a code is matched whole, not as a prefix
        assert find(message_type="ADT^A0*") == ["L1", "A4", "A3", "A2", "A1"]
        assert find(message_type="ADT^A0_") == []  # LIKE wildcards in the input are literal
        assert find(sending_facility="HOSP_B") == ["A2"]
        assert find(channel="adt", patient_id="P100") == ["A1"]
        with pytest.raises(ValueError, match="unknown status"):
            find(status="bogus")
    finally:
        db.dispose()


async def test_time_filters_respect_offsets(filled: Filled) -> None:
    db = filled.db()
    try:
        old = datetime.now(UTC) - timedelta(days=3)
        with db.begin() as conn:
            conn.execute(update(messages).where(messages.c.id == filled.ids["A1"]).values(received_at=old))
        two_days = datetime.now(UTC) - timedelta(days=2)
        assert "A1" not in labels(filled, search(db, Search(since=two_days)))
        assert labels(filled, search(db, Search(until=two_days))) == ["A1"]
        # The same instant written in +08:00: SQLite compares text, so the query must convert to UTC.
        east = two_days.astimezone(timezone(timedelta(hours=8)))
        assert labels(filled, search(db, Search(until=east))) == ["A1"]
        west = two_days.astimezone(timezone(timedelta(hours=-5)))
        assert "A1" not in labels(filled, search(db, Search(since=west)))
        rows = search(db, Search(control_id="A1"))
        assert rows[0]["received_at"].tzinfo is not None
        assert abs(rows[0]["received_at"] - old) < timedelta(seconds=1)
        assert stats(db, channel="adt", since=two_days)["adt"]["received"] == 3
    finally:
        db.dispose()


async def test_paging_with_before_id(filled: Filled) -> None:
    db = filled.db()
    try:
        seen: list[str] = []
        before = None
        while True:
            page = search(db, Search(limit=2, before_id=before))
            if not page:
                break
            assert len(page) <= 2
            seen += labels(filled, page)
            before = page[-1]["id"]
        assert seen == ["L1", "A4", "A3", "A2", "A1"]
        assert labels(filled, matching_ids(db, Search(channel="adt", limit=None))) == ["A1", "A2", "A3", "A4"]
    finally:
        db.dispose()


async def test_search_rows_are_metadata_with_delivery_states(filled: Filled) -> None:
    db = filled.db()
    try:
        (a1,) = search(db, Search(control_id="A1"))
        assert "raw" not in a1 and "content" not in a1
        assert a1["message_type"] == "ADT^A01" and a1["sending_facility"] == "HOSP_A"
        states = [(d["destination"], d["status"]) for d in a1["deliveries"]]
        assert states == [("out", "sent"), ("arch", "sent")]
        (l1,) = search(db, Search(channel="lab"))
        assert l1["deliveries"][0]["status"] == "errored" and "refuses" in l1["deliveries"][0]["last_error"]
    finally:
        db.dispose()


async def test_get_message_has_every_stage(filled: Filled) -> None:
    db = filled.db()
    try:
        msg = get_message(db, filled.ids["A2"])
        assert msg is not None
        assert msg["raw"] == filled.raw["A2"] and msg["charset"] == "gb18030"
        assert msg["content"] is None  # not transformed
        assert msg["received_at"].tzinfo is not None
        assert {i["value"] for i in msg["identifiers"]} == {"P200"}
        assert msg["identifiers"][0]["authority"] == "HOSP_A" and msg["identifiers"][0]["field"] == "PID-3"
        out, arch = msg["deliveries"]
        assert out["destination"] == "out" and out["status"] == "sent" and out["sent"] is None
        assert out["response"] is not None and b"MSA|AA|A2" in out["response"]
        assert [a["outcome"] for a in out["attempt_log"]] == ["sent"]
        assert arch["response"] is None
        assert msg["audit_count"] == 3  # import + two exports
        assert msg["reprocessed_as"] == []
        l1 = get_message(db, filled.ids["L1"])
        assert l1 is not None
        assert [a["outcome"] for a in l1["deliveries"][0]["attempt_log"]] == ["refused"]
        assert get_message(db, 12345) is None
    finally:
        db.dispose()


async def test_originals_for_reprocessing(filled: Filled) -> None:
    db = filled.db()
    try:
        got = originals(db, [filled.ids["A1"], filled.ids["L1"], 999])
        assert set(got) == {filled.ids["A1"], filled.ids["L1"]}
        a1 = got[filled.ids["A1"]]
        assert a1["raw"] == filled.raw["A1"] and a1["has_raw"] and a1["channel_id"] == "adt"
        assert a1["identifiers"] == [{"value": "P100", "authority": "HOSP_A"}]
        light = originals(db, [filled.ids["A1"]], with_raw=False)[filled.ids["A1"]]
        assert "raw" not in light and light["has_raw"] is True
    finally:
        db.dispose()


async def test_stats_per_channel(filled: Filled) -> None:
    db = filled.db()
    try:
        got = stats(db)
        assert got["adt"] == {
            "received": 4,
            "filtered": 1,
            "queued": 0,
            "sent": 4,
            "errored": 1,
            "errored_messages": 1,
            "errored_deliveries": 0,
        }
        assert got["lab"] == {
            "received": 1,
            "filtered": 0,
            "queued": 0,
            "sent": 0,
            "errored": 1,
            "errored_messages": 0,
            "errored_deliveries": 1,
        }
        assert set(stats(db, channel="lab")) == {"lab"}
        assert stats(db, since=datetime.now(UTC) + timedelta(hours=1)) == {}
    finally:
        db.dispose()


def test_as_utc() -> None:
    naive = datetime(2026, 11, 22, 8, 30)
    assert as_utc(naive) == datetime(2026, 11, 22, 8, 30, tzinfo=UTC)
    east = datetime(2026, 11, 22, 8, 30, tzinfo=timezone(timedelta(hours=8)))
    assert as_utc(east) == datetime(2026, 11, 22, 0, 30, tzinfo=UTC)
