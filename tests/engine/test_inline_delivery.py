"""Answering destinations asked in the commit that stores the message (``Destination.inline``).

"store": the destination's change commits with the message, or neither does; a failure rolls back
only that destination's writes and the message is kept as errored for the auditors. "read": the
answer, its audit records and what it writes commit with the message, once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from sqlalchemy import Column, Connection, Integer, MetaData, String, Table, func, insert, select

from engine.config import AppConfig
from engine.connectors.base import Destination, Options, Outbound, SendResult
from engine.hl7v2.ack import build_ack
from engine.hl7v2.peek import peek
from engine.registry import register_destination
from engine.store.schema import attempts, audit_events, deliveries, messages
from tests.conftest import hl7_message, running

_meta = MetaData()
ledger = Table(
    "test_ledger", _meta, Column("id", Integer, primary_key=True), Column("control_id", String(64))
)


class _LedgerOptions(Options):
    pass


def _ack(out: Outbound, code: str = "AA") -> bytes:
    return build_ack(peek(out.raw.decode()), code, application="LEDGER", facility="TEST").encode()


class LedgerDestination(Destination):
    """An in-process actor keeping a ledger in the engine's database; fails on ``FAIL`` control ids
    after it has written, refuses ``NO`` ones."""

    scheme = "test-ledger"
    Options = _LedgerOptions
    answers_sender = True
    inline = "store"
    committed: list[str] = []

    async def send(self, out: Outbound) -> SendResult:
        raise AssertionError("an inline 'store' destination is asked with send_in")

    def prepare_in(self, out: Outbound) -> str:
        return out.control_id.upper()  # what needs no database, done before the transaction

    def send_in(self, conn: Connection, out: Outbound, prepared: object) -> SendResult:
        assert prepared == out.control_id.upper()
        conn.execute(insert(ledger).values(control_id=out.control_id))
        if out.control_id.startswith("FAIL"):
            raise RuntimeError("the ledger broke after writing")
        if out.control_id.startswith("NO"):
            return SendResult(sent=out.raw, response=_ack(out, "AE"), refused="AE: not in this ledger")
        seen = out.control_id
        return SendResult(
            sent=out.raw, response=_ack(out), after_commit=lambda: LedgerDestination.committed.append(seen)
        )


class LookupDestination(Destination):
    """A query: reads the ledger, its answer writes a row (as a PDQ continuation would)."""

    scheme = "test-lookup"
    Options = _LedgerOptions
    answers_sender = True
    inline = "read"

    async def send(self, out: Outbound) -> SendResult:
        def keep(conn: Connection) -> None:
            conn.execute(insert(ledger).values(control_id=f"kept-{out.control_id}"))

        return SendResult(sent=out.raw, response=_ack(out), writes=keep)


register_destination(LedgerDestination)
register_destination(LookupDestination)


def channel(url: str) -> str:
    return f"""id: actor
source: {{url: 'memory://in'}}
ack: after_delivery
ack_from: actor
destinations:
  - {{id: actor, url: '{url}'}}
"""


def rows(rt: Any, table: Any, *where: Any) -> list[dict[str, Any]]:
    with rt.services.db.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(table).where(*where))]


def count(rt: Any, table: Any) -> int:
    with rt.services.db.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


async def test_a_store_destination_commits_with_the_message_or_is_rolled_back_alone(
    make_app: Callable[..., AppConfig], store_url: str
) -> None:
    app = make_app({"actor": channel("test-ledger:")}, store_url=store_url)
    async with running(app) as rt:
        _meta.create_all(rt.services.db)
        ch = rt.channels["actor"]
        commits_before = rt.services.writer.commits
        ok, _ = await ch.receive(hl7_message("OK1").encode(), "peer")
        assert ok.response is not None and b"MSA|AA|OK1" in ok.response
        assert rt.services.writer.commits == commits_before + 1  # one commit for message and change
        assert LedgerDestination.committed[-1] == "OK1"  # told only after the commit

        failed, _ = await ch.receive(hl7_message("FAIL1").encode(), "peer")
        assert failed.status.value == "errored"
        assert failed.error is not None and "the ledger broke after writing" in failed.error.text
        refused, _ = await ch.receive(hl7_message("NO1").encode(), "peer")
        assert refused.response is not None and b"MSA|AE|NO1" in refused.response

        assert sorted(r["control_id"] for r in rows(rt, ledger)) == ["NO1", "OK1"]  # FAIL1 rolled back
        by_control = {m["control_id"]: m["id"] for m in rows(rt, messages)}
        assert set(by_control) == {"OK1", "FAIL1", "NO1"}  # every message kept for the auditors
        status = {d["message_id"]: (d["status"], d["last_error"]) for d in rows(rt, deliveries)}
        assert status[by_control["OK1"]] == ("sent", None)
        assert status[by_control["FAIL1"]][0] == "errored"
        assert "the ledger broke after writing" in str(status[by_control["FAIL1"]][1])
        assert status[by_control["NO1"]] == ("errored", "AE: not in this ledger")
        assert len(rows(rt, attempts)) == 3
        exports = [e for e in rows(rt, audit_events) if e["event_type"] == "destination^actor/actor"]
        assert sorted(e["outcome"] for e in exports) == [0, 4, 8]  # success, minor failure, serious


async def test_a_failure_in_a_group_of_store_sends_fails_only_its_own_message(
    make_app: Callable[..., AppConfig], store_url: str
) -> None:
    """Sends in a group of several run without a savepoint each; one failing fails the group, which
    the writer commits again message by message: the others' changes are kept, its own is not."""
    app = make_app({"actor": channel("test-ledger:")}, store_url=store_url)
    async with running(app) as rt:
        _meta.create_all(rt.services.db)
        ch = rt.channels["actor"]
        ids = [f"OK{n}" for n in range(10)] + ["FAIL7", "FAIL8"]
        outcomes = await asyncio.gather(*(ch.receive(hl7_message(c).encode(), "peer") for c in ids))
        assert rt.services.writer.groups_retried >= 1  # they were grouped, and a failure undid the group
        by_control = {c: outcome for c, (outcome, _) in zip(ids, outcomes, strict=True)}
        assert all(by_control[c].status.value == "errored" for c in ("FAIL7", "FAIL8"))
        assert all(b"MSA|AA|" + c.encode() in (by_control[c].response or b"") for c in ids[:10])
        assert sorted(r["control_id"] for r in rows(rt, ledger)) == sorted(ids[:10])
        assert len(rows(rt, messages)) == len(ids)  # every message kept, the failed ones errored
        errored = [d for d in rows(rt, deliveries) if d["status"] == "errored"]
        assert len(errored) == 2 and all("the ledger broke" in str(d["last_error"]) for d in errored)


async def test_a_read_destination_answers_and_its_writes_commit_with_the_message(
    make_app: Callable[..., AppConfig], store_url: str
) -> None:
    app = make_app({"actor": channel("test-lookup:")}, store_url=store_url)
    async with running(app) as rt:
        _meta.create_all(rt.services.db)
        commits_before = rt.services.writer.commits
        outcome, _ = await rt.channels["actor"].receive(hl7_message("Q1").encode(), "peer")
        assert outcome.response is not None and b"MSA|AA|Q1" in outcome.response
        assert rt.services.writer.commits == commits_before + 1
        assert [r["control_id"] for r in rows(rt, ledger)] == ["kept-Q1"]
        assert [d["status"] for d in rows(rt, deliveries)] == ["sent"]
        assert count(rt, messages) == 1
