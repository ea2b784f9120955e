"""Durable destination queues: retries, dead letters, ordering, take-over of a dead node's work."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from engine.config import AppConfig
from engine.connectors import file as file_module
from engine.connectors import memory
from engine.store.schema import attempts, audit_events, deliveries, messages
from tests.conftest import hl7_message, running


def channel(dest_options: str, *, extra_dests: str = "") -> str:
    return f"""id: adt
source: {{url: 'memory://in'}}
destinations:
  - {{id: out, url: 'memory://out', {dest_options}}}
{extra_dests}"""


async def until(predicate: Callable[[], Any], limit: float = 15.0) -> Any:
    for _ in range(int(limit / 0.05)):
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


def rows(rt: Any, table: Any, *where: Any) -> list[dict[str, Any]]:
    with rt.services.db.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(table).where(*where))]


async def test_retry_with_backoff_then_sent(make_app: Callable[..., AppConfig], store_url: str) -> None:
    memory.SINKS.clear()
    app = make_app(
        {"adt": channel("fail_times: 2, retry: {backoff: 0.05, max_attempts: 5}")}, store_url=store_url
    )
    async with running(app) as rt:
        outcome, _ = await memory.inject("in", hl7_message("R1").encode())
        assert outcome.ack_code == "AA"
        await until(lambda: memory.SINKS.get("out"))
        (d,) = await until(lambda: [r for r in rows(rt, deliveries) if r["status"] == "sent"])
        assert d["attempts"] == 3 and d["last_error"] is None and d["sent"] is None  # None: bytes as received
        log = rows(rt, attempts, attempts.c.delivery_id == d["id"])
        assert sorted(a["outcome"] for a in log) == ["failed", "failed", "sent"]
        assert all("failing on purpose" in a["error"] for a in log if a["outcome"] == "failed")
    assert memory.SINKS["out"] == [hl7_message("R1").encode()]


async def test_dead_letter_after_max_attempts_and_the_lane_moves_on(
    make_app: Callable[..., AppConfig],
) -> None:
    memory.SINKS.clear()
    app = make_app({"adt": channel("fail_times: 3, retry: {backoff: 0.02, max_attempts: 3}")})
    async with running(app) as rt:
        await memory.inject("in", hl7_message("D1").encode())
        await memory.inject("in", hl7_message("D2").encode())
        await until(lambda: memory.SINKS.get("out"))
        by_control = {m["control_id"]: m["id"] for m in rows(rt, messages)}
        d1 = rows(rt, deliveries, deliveries.c.message_id == by_control["D1"])[0]
        assert d1["status"] == "errored" and d1["attempts"] == 3
        assert "failing on purpose (3/3)" in d1["last_error"]
        d2 = await until(
            lambda: [
                r
                for r in rows(rt, deliveries, deliveries.c.message_id == by_control["D2"])
                if r["status"] == "sent"
            ]
        )
        assert d2
    assert memory.SINKS["out"] == [hl7_message("D2").encode()]


async def test_refused_delivery_is_errored_without_retry(make_app: Callable[..., AppConfig]) -> None:
    app = make_app({"adt": channel("refuse: true")})
    async with running(app) as rt:
        await memory.inject("in", hl7_message("X1").encode())
        (d,) = await until(lambda: [r for r in rows(rt, deliveries) if r["status"] == "errored"])
        assert d["attempts"] == 1 and "refuses" in d["last_error"]
        events = rows(rt, audit_events, audit_events.c.event_id.like("110106%"))
        assert [e["outcome"] for e in events] == [8]  # export, serious failure


async def test_order_per_patient_holds_while_another_patient_is_retrying(
    make_app: Callable[..., AppConfig],
) -> None:
    memory.SINKS.clear()
    app = make_app({"adt": channel("order_by: patient, lanes: 4")})
    async with running(app):
        sent = []
        for i in range(40):
            control = f"P{i % 4}-{i:02d}"
            sent.append(control)
            await memory.inject("in", hl7_message(control, patient=f"PAT{i % 4}").encode())
        await until(lambda: len(memory.SINKS.get("out", [])) == 40)
    got = [m.split(b"|")[9].decode() for m in memory.SINKS["out"]]
    for p in range(4):
        assert [c for c in got if c.startswith(f"P{p}-")] == [c for c in sent if c.startswith(f"P{p}-")]


async def test_work_of_a_dead_node_is_taken_over_at_start(
    make_app: Callable[..., AppConfig], store_url: str
) -> None:
    memory.SINKS.clear()
    app = make_app({"adt": channel("delay: 0")}, store_url=store_url)
    async with running(app) as rt:
        # Put the delivered entry back in the queue, owned by a node id that never beat: exactly what
        # a kill -9 leaves behind for a delivery whose status was not committed yet.
        await memory.inject("in", hl7_message("K1").encode())
        await until(lambda: memory.SINKS.get("out"))
        with rt.services.db.begin() as conn:
            conn.execute(update(deliveries).values(status="queued", owner_node=999_999, attempts=0))
    memory.SINKS.clear()
    async with running(app) as rt:
        await until(lambda: memory.SINKS.get("out"))
        (d,) = rows(rt, deliveries)
        assert d["status"] == "sent" and d["owner_node"] == rt.services.node_id


async def test_only_routed_destinations_are_queued(make_app: Callable[..., AppConfig]) -> None:
    memory.SINKS.clear()
    text = (
        channel("delay: 0", extra_dests="  - {id: lab, url: 'memory://lab'}\n")
        + """steps:
  - route:
      rules:
        - when: {fields: [{path: PV1.2, equals: I}]}
          to: [lab]
      otherwise: [out]
"""
    )
    app = make_app({"adt": text})
    async with running(app) as rt:
        await memory.inject("in", hl7_message("I1").encode())
        await memory.inject("in", hl7_message("O1").replace("PV1|1|I|", "PV1|1|O|").encode())
        await until(lambda: memory.SINKS.get("lab") and memory.SINKS.get("out"))
        statuses = {(r["message_id"], r["destination"]): r["status"] for r in rows(rt, deliveries)}
    assert sorted(statuses.values()) == ["filtered", "filtered", "sent", "sent"]
    assert [m.split(b"|")[9] for m in memory.SINKS["lab"]] == [b"I1"]
    assert [m.split(b"|")[9] for m in memory.SINKS["out"]] == [b"O1"]


async def test_a_failed_flush_leaves_deliveries_queued_and_they_are_sent_again(
    make_app: Callable[..., AppConfig], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failures = [OSError(5, "Input/output error")]

    def flaky_sync(path: Path) -> None:
        if failures:
            raise failures.pop()

    monkeypatch.setattr(file_module, "sync_directory", flaky_sync)
    text = f"id: adt\nsource: {{url: 'memory://in'}}\ndestinations:\n  - {{id: out, url: 'file://{tmp_path}/out'}}\n"
    async with running(make_app({"adt": text})) as rt:
        await memory.inject("in", hl7_message("F1").encode())
        (d,) = await until(lambda: [r for r in rows(rt, deliveries) if r["status"] == "sent"])
        # the first send's status was not committed (its directory sync failed); the second was
        assert d["attempts"] == 1 and not failures
        assert len(rows(rt, attempts)) == 1
    assert [p.name.split("-")[0] for p in (tmp_path / "out").iterdir()] == ["adt"]
