"""Durable destination queues: the ``deliveries`` table is the queue; lanes here serve it.

Each destination has one or more lanes. A lane takes its queued entries in id order (arrival order),
sends them one after the other and commits their new status, so order holds within a lane; with
``order_by: patient`` a patient's messages always share a lane. A failing entry is retried in place
with exponential backoff (the lane waits: later messages must not overtake it) until
``retry.max_attempts``, then dead-lettered as ``errored`` and the lane moves on.

Status is committed after each send, or after ``batch`` sends for idempotent destinations (files named
after the message), so a crash repeats at most the sends of one uncommitted batch. Entries of a node
that died are taken over by a live node (``Recovery``), which is how ``kill -9`` loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, select, update

from engine import audit
from engine.config import DestinationConfig
from engine.connectors.base import Destination, Outbound, SendResult
from engine.errors import DeliveryError, PermanentDeliveryError
from engine.message import ContentType, Message
from engine.services import Services
from engine.store.db import live_nodes, savepoint_retrying, utcnow
from engine.store.schema import attempts, audit_events, deliveries, messages
from engine.store.writer import Batch, isolated

__all__ = ["DestinationQueue", "InlineAnswer", "recover_orphans", "send_in_writer"]

log = logging.getLogger(__name__)

IDLE_POLL = 1.0  # seconds a lane sleeps when it was not notified (catches work from other nodes)
STOPPED_MID_SEND = "the engine stopped before the destination answered; the sender was not acknowledged"


@dataclass(slots=True)
class _Entry:
    id: int
    message_id: int
    attempts: int
    next_attempt_at: datetime | None
    raw: bytes
    content: str | None
    charset: str
    content_type: str
    control_id: str
    peer: str


class DestinationQueue:
    def __init__(
        self, channel_id: str, config: DestinationConfig, connector: Destination, services: Services
    ):
        self.channel_id = channel_id
        self.destination_id = config.id
        self.config = config
        self.connector = connector
        self.services = services
        self.batch_size = config.batch or (100 if connector.idempotent else 1)
        self._events = [asyncio.Event() for _ in range(config.lanes)]
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = asyncio.Event()
        self.sent = 0
        self.failed = 0
        # participants of this destination's audit records and their JSON, built on the first record
        self._participants: tuple[list[dict[str, Any]], str] | None = None

    def notify(self, lane: int) -> None:
        self._events[lane].set()

    def notify_all(self) -> None:
        for event in self._events:
            event.set()

    async def start(self) -> None:
        await self.connector.start()
        self._tasks = [
            asyncio.create_task(self._lane(i), name=f"{self.channel_id}/{self.destination_id}/{i}")
            for i in range(self.config.lanes)
        ]

    async def stop(self) -> None:
        self._stopping.set()
        self.notify_all()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.connector.stop()

    # -- the lane loop ------------------------------------------------------------------------------
    async def _lane(self, lane: int) -> None:
        event = self._events[lane]
        while not self._stopping.is_set():
            event.clear()
            try:
                entries = await asyncio.to_thread(self._fetch, lane)
            except Exception as exc:
                log.error("%s/%s: cannot read the queue: %s", self.channel_id, self.destination_id, exc)
                await self._sleep(IDLE_POLL)
                continue
            if not entries:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(event.wait(), IDLE_POLL)
                continue
            try:
                await self._serve(entries)
            except Exception:  # a bug or a store failure must not end the lane for good
                log.exception("%s/%s: lane %d failed; resuming", self.channel_id, self.destination_id, lane)
                await self._sleep(IDLE_POLL)

    async def _serve(self, entries: list[_Entry]) -> None:
        batch = Batch()
        after: list[Callable[[], None]] = []  # what sent deliveries ask for once their status committed
        pending = 0
        for entry in entries:
            if self._stopping.is_set():
                break
            wait = (entry.next_attempt_at - utcnow()).total_seconds() if entry.next_attempt_at else 0.0
            if wait > 0:
                await self._flush(batch, after)
                batch, after, pending = Batch(), [], 0
                if not await self._sleep(wait):
                    return
            done, result = await self._attempt(entry, batch)
            if result is not None and result.after_commit is not None:
                after.append(result.after_commit)
            pending += 1
            if not done:
                break  # it will be retried first; nothing behind it in this lane may overtake it
            if pending >= self.batch_size:
                await self._flush(batch, after)
                batch, after, pending = Batch(), [], 0
        await self._flush(batch, after)

    async def _sleep(self, seconds: float) -> bool:
        """Sleep unless stopping; False when the queue is stopping."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)
        return not self._stopping.is_set()

    async def _flush(self, batch: Batch, after: Sequence[Callable[[], None]] = ()) -> None:
        if not batch.rows():
            return
        try:
            await self.connector.flush()
        except Exception as exc:  # not durable downstream: leave them queued, they are sent again
            log.error(
                "%s/%s: flush failed, %d deliveries will be sent again: %s",
                self.channel_id,
                self.destination_id,
                len(batch.updates.get(deliveries.name, ())),
                exc,
            )
            return
        await self.services.writer.write(batch)
        for call in after:
            call()

    def _fetch(self, lane: int) -> list[_Entry]:
        d, m = deliveries, messages
        query = (
            select(
                d.c.id,
                d.c.message_id,
                d.c.attempts,
                d.c.next_attempt_at,
                m.c.raw,
                m.c.content,
                m.c.charset,
                m.c.content_type,
                m.c.control_id,
                m.c.peer,
            )
            .join(m, m.c.id == d.c.message_id)
            .where(
                d.c.channel_id == self.channel_id,
                d.c.destination == self.destination_id,
                d.c.status == "queued",
                d.c.lane == lane,
                d.c.owner_node == self.services.node_id,
            )
            .order_by(d.c.id)
            .limit(max(self.batch_size, 32))
        )
        with self.services.db.connect() as conn:
            return [_Entry(**row._asdict()) for row in conn.execute(query)]

    # -- one attempt --------------------------------------------------------------------------------
    async def _attempt(
        self, entry: _Entry, batch: Batch, *, retry: bool = True
    ) -> tuple[bool, SendResult | None]:
        """Send once and record it in ``batch``: (finished, the result when sent).

        Finished means sent or dead-lettered; an unfinished entry stays queued for a retry.
        """
        out = self._outbound(entry)
        started = time.monotonic()
        now = utcnow()
        number = entry.attempts + 1
        try:
            result = await self.connector.send(out)
        except Exception as exc:
            return self._failed(entry, batch, exc, number, started, now, retry), None
        self._sent(entry, out, batch, result, number, started, now)
        return True, result

    def _attempt_in(
        self, entry: _Entry, out: Outbound, prepared: Any, answer: InlineAnswer, conn: Connection
    ) -> Batch:
        """Send once inside the store's transaction (``inline = "store"``), on the writer's thread:
        the connector's writes in a savepoint (rolled back alone if it fails; done once more if it
        raced another process's transaction), the outcome's rows returned to be written in the same
        transaction."""
        batch = Batch()
        started = time.monotonic()
        now = utcnow()
        if not isolated(conn):
            # one of several batches in the group: a failure fails the group, which the writer
            # commits again batch by batch, this one then isolated below
            result = self.connector.send_in(conn, out, prepared)
        else:
            try:
                result = savepoint_retrying(conn, lambda: self.connector.send_in(conn, out, prepared))
            except Exception as exc:
                self._failed(entry, batch, exc, 1, started, now, retry=False)
                answer.result, answer.error = None, str(exc) or type(exc).__name__
                return batch
        self._sent(entry, out, batch, result, 1, started, now)
        answer.result, answer.error = result, None
        return batch

    def _outbound(self, entry: _Entry) -> Outbound:
        return Outbound(
            delivery_id=entry.id,
            message_id=entry.message_id,
            channel_id=self.channel_id,
            control_id=entry.control_id,
            content_type=ContentType(entry.content_type),
            charset=entry.charset,
            raw=entry.raw or b"",
            content=entry.content,
            attempt=entry.attempts + 1,
            peer=entry.peer or "",
        )

    def _sent(
        self,
        entry: _Entry,
        out: Outbound,
        batch: Batch,
        result: SendResult,
        number: int,
        started: float,
        now: datetime,
    ) -> None:
        ms = (time.monotonic() - started) * 1000
        sent = None if result.sent == out.raw else result.sent  # None = the received bytes, unchanged
        response = result.recorded if result.recorded is not None else result.response
        status = "errored" if result.refused else "sent"
        if result.refused:
            self.failed += 1
        else:
            self.sent += 1
        batch.update(
            deliveries,
            entry.id,
            {
                "status": status,
                "attempts": number,
                "sent_at": now,
                "updated_at": now,
                "sent": sent,
                "response": response,
                "last_error": result.refused,
                "next_attempt_at": None,
            },
        )
        self._record_attempt(batch, entry, number, now, status, ms, response, result.refused)
        outcome = audit.Outcome.MINOR_FAILURE if result.refused else audit.Outcome.SUCCESS
        self._audit(batch, now, entry, outcome, result.refused)
        for event in result.audit:
            batch.insert(audit_events, event.row(self.services.ids.next()))
        for table, row in result.rows:
            batch.insert(table, row)
        if result.writes is not None:
            batch.then(result.writes)

    def _failed(
        self,
        entry: _Entry,
        batch: Batch,
        exc: Exception,
        number: int,
        started: float,
        now: datetime,
        retry: bool,
    ) -> bool:
        self.failed += 1
        ms = (time.monotonic() - started) * 1000
        permanent = isinstance(exc, PermanentDeliveryError) and not (
            self.config.retry.retry_on_ae and exc.ack_code == "AE"
        )
        if not isinstance(exc, DeliveryError):
            log.exception(
                "%s/%s: connector error on delivery %s", self.channel_id, self.destination_id, entry.id
            )
        text = str(exc) or type(exc).__name__
        dead = permanent or not retry or number >= self.config.retry.max_attempts
        values: dict[str, Any] = {"attempts": number, "updated_at": now, "last_error": text}
        if dead:
            values |= {"status": "errored", "next_attempt_at": None}
            log.warning(
                "%s/%s: delivery %s of message %s errored after %d attempt(s): %s",
                self.channel_id,
                self.destination_id,
                entry.id,
                entry.message_id,
                number,
                text,
            )
        else:
            values |= {
                "status": "queued",
                "next_attempt_at": now + timedelta(seconds=self.config.retry.delay(number)),
            }
            log.info(
                "%s/%s: delivery %s attempt %d failed, retrying: %s",
                self.channel_id,
                self.destination_id,
                entry.id,
                number,
                text,
            )
        batch.update(deliveries, entry.id, values)
        self._record_attempt(batch, entry, number, now, "refused" if permanent else "failed", ms, None, text)
        self._audit(
            batch, now, entry, audit.Outcome.SERIOUS_FAILURE if dead else audit.Outcome.MINOR_FAILURE, text
        )
        return dead

    def _record_attempt(
        self,
        batch: Batch,
        entry: _Entry,
        number: int,
        now: datetime,
        outcome: str,
        ms: float,
        response: bytes | None,
        error: str | None,
    ) -> None:
        """One row of the delivery's attempt log: what each try got back, for the integrator."""
        batch.insert(
            attempts,
            {
                "id": self.services.ids.next(),
                "delivery_id": entry.id,
                "attempt": number,
                "at": now,
                "outcome": outcome,
                "duration_ms": ms,
                "response": response,
                "error": error,
            },
        )

    def _audit(
        self, batch: Batch, now: datetime, entry: _Entry, outcome: int, description: str | None
    ) -> None:
        if self._participants is None:  # the same for every record of this destination: built once
            participants = [
                audit.participant(self.services.app.engine.name, requestor=True, role="110153"),
                audit.participant(
                    self.connector.url.geturl(),
                    requestor=False,
                    role="110152",
                    network=self.connector.url.hostname or "",
                ),
            ]
            self._participants = (participants, audit.participants_json(participants))
        event = audit.AuditEvent(
            event_id=audit.EXPORT,
            action="R",
            outcome=outcome,
            event_time=now,
            event_type=f"destination^{self.channel_id}/{self.destination_id}",
            outcome_description=description,
            participants=self._participants[0],
            participants_json=self._participants[1],
            objects=[
                {
                    "type": 2,
                    "role": 3,
                    "id_type": "MSH-10",
                    "id": entry.control_id,
                    "detail": {"message_id": str(entry.message_id), "delivery_id": str(entry.id)},
                }
            ],
            channel_id=self.channel_id,
            message_id=entry.message_id,
        )
        batch.insert(audit_events, event.row(self.services.ids.next()))

    # -- after_delivery -----------------------------------------------------------------------------
    async def deliver_now(self, msg: Message) -> SendResult:
        """Send the ``pending`` entry of ``msg`` at once (one attempt: the sender retries, not us)."""
        batch = Batch()
        _, result = await self._attempt(self._pending(msg), batch, retry=False)
        await self._flush(batch)
        if result is None:
            raise DeliveryError(_last_error(batch))
        return result

    async def ask_inline(self, msg: Message, batch: Batch) -> InlineAnswer:
        """Ask the ``pending`` entry of ``msg`` within the commit that stores it (``Destination.inline``).

        "read": sent now, its outcome added to ``batch``; "store": ``send_in`` added to ``batch`` as
        work of its transaction. Either way the answer holds once ``batch`` has committed.
        """
        entry = self._pending(msg)
        answer = InlineAnswer()
        if self.connector.inline_mode(msg) == "store":
            out = self._outbound(entry)
            try:
                prepared = await self.connector.prepare_inline(out)
            except Exception as exc:
                self._failed(entry, batch, exc, 1, time.monotonic(), utcnow(), retry=False)
                answer.error = str(exc) or type(exc).__name__
                return answer
            batch.then(functools.partial(self._attempt_in, entry, out, prepared, answer))
            return answer
        _, answer.result = await self._attempt(entry, batch, retry=False)
        if answer.result is None:
            answer.error = _last_error(batch)
        return answer

    def _pending(self, msg: Message) -> _Entry:
        ident = msg.variables["delivery_ids"][self.destination_id]
        content = msg.content if msg.variables.get("changed") else None
        return _Entry(
            ident,
            msg.id,
            0,
            None,
            msg.raw,
            content,
            msg.charset,
            msg.content_type.value,
            msg.control_id,
            msg.peer,
        )


@dataclass(slots=True)
class InlineAnswer:
    """What an inline destination answered (``result``), or why it did not (``error``)."""

    result: SendResult | None = None
    error: str | None = "the destination was not asked"


def _last_error(batch: Batch) -> str:
    return str(batch.updates[deliveries.name][-1].get("last_error"))


def recover_orphans(services: Services, queues: list[DestinationQueue]) -> int:
    """Take over queue entries of dead nodes (after kill -9, or another node's crash). Returns how many."""
    alive = live_nodes(services.db)
    alive.add(services.node_id)
    d = deliveries
    total = 0
    now = utcnow()
    with services.db.begin() as conn:
        for q in queues:
            base = and_(
                d.c.channel_id == q.channel_id,
                d.c.destination == q.destination_id,
                (d.c.owner_node.is_(None)) | (d.c.owner_node.not_in(alive)),
            )
            total += (
                conn.execute(
                    update(d).where(base, d.c.status == "queued").values(owner_node=services.node_id)
                ).rowcount
                or 0
            )
            # An after_delivery send cut off by the crash: its sender got no answer and will resend.
            conn.execute(
                update(d)
                .where(base, d.c.status == "pending")
                .values(
                    status="errored",
                    updated_at=now,
                    owner_node=services.node_id,
                    last_error=STOPPED_MID_SEND,
                )
            )
    if total:
        log.info("took over %d queued deliveries from stopped nodes", total)
        for q in queues:
            q.notify_all()
    return total


async def send_in_writer(
    services: Services, destination: Destination, out: Outbound, prepared: Any
) -> SendResult:
    """A store-inline destination (``inline = "store"``) asked from a queue (``hie messages
    reprocess``), where nobody waits for its answer: ``send_in`` in the writer's next transaction,
    done once more if it raced another process, its audit records committed with its change (the
    lane commits the delivery's status later)."""

    def apply(conn: Connection) -> SendResult:
        result = savepoint_retrying(conn, lambda: destination.send_in(conn, out, prepared))
        if result.audit:
            conn.execute(audit_events.insert(), [e.row(services.ids.next()) for e in result.audit])
        return dataclasses.replace(result, audit=())

    return await services.writer.run(apply)
