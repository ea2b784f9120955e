"""ITI-10 PIX Update Notification: a channel source that turns cross-reference changes into ADT^A31.

    id: pix-notify-hospital-a
    source: {url: "pix-iti10:", domains: [hospital-a, hospital-b], receiving_application: HIS_A}
    destinations:
      - {id: his-a, url: "mllp://10.0.0.5:3610", retry: {max_attempts: 50}}

Every feed that changes a person's cross-references writes one outbox row per notification channel
in its own transaction (``empi_notifications``), so a change that was acknowledged is never left
unnotified. This source claims its rows, builds the A31 with the person's identifiers in the
channel's domains of interest (``domains``; empty means all, the national ID-card domain included
as ``national-id``), hands it to the channel (stored, queued to the consumers with retries, like any
message), then deletes the row. A crash between the two sends the A31 again: an A31 says the whole
current list, so a repeat is harmless. Rows claimed by a node that died are taken over.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from typing import Any

from pydantic import Field
from sqlalchemy import Connection, delete, or_, select, update

from engine.connectors.base import Options, Source
from engine.hl7v2.ack import new_control_id
from engine.message import ContentType
from engine.services import Services
from engine.store.db import live_nodes
from engine.store.schema import audit_events
from engine.store.writer import Batch
from ihe import atna
from ihe.iti9 import QualifiedId
from ihe.iti10 import build_adt_a31
from profiles.empi.actor import EmpiActor
from profiles.empi.domains import Domains
from profiles.empi.schema import notifications, persons, records

__all__ = ["PixNotificationSource"]

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0  # without a local feed to wake it, the source looks for other nodes' rows
BATCH = 100


class NotificationOptions(Options):
    domains: list[str] = Field(default_factory=list, description="domains of interest; empty: every domain")
    receiving_application: str = Field("", description="MSH-5 of the A31")
    receiving_facility: str = Field("", description="MSH-6 of the A31")


class PixNotificationSource(Source):
    scheme = "pix-iti10"
    Options = NotificationOptions
    options: NotificationOptions

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._services: Services | None = None
        self._actor: EmpiActor | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    def attach(self, services: Services) -> None:
        self._services = services
        self._actor = EmpiActor.of(services)
        self._actor.manager.subscribe(self.receiver.channel_id, self._wake.set)

    async def start(self) -> None:
        unknown = [d for d in self.options.domains if d not in self._domains.by_id]
        if unknown:
            raise ValueError(f"pix-iti10 source: unknown domains {', '.join(unknown)}")
        self._task = asyncio.create_task(self._run(), name=f"pix-iti10 {self.receiver.channel_id}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @property
    def _domains(self) -> Domains:
        assert self._actor is not None
        return self._actor.manager.domains

    async def _run(self) -> None:
        while True:
            try:
                sent = await self.drain()
            except Exception:  # a bad row or a database hiccup must not end the notifications
                log.exception("channel %s: ITI-10 notifications failed; retrying", self.receiver.channel_id)
                sent = 0
            if sent:
                continue
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)

    async def drain(self) -> int:
        """Send what is in the outbox for this channel; how many A31 went to the channel.

        The outbox is written through the store's writer (claims, and each row's delete in the
        commit of its A31's audit record): one writer per database, as for the feeds.
        """
        assert self._services is not None
        writer = self._services.writer
        alive = await asyncio.to_thread(live_nodes, self._services.db)
        claimed = await writer.run(functools.partial(self._claim, alive | {self._services.node_id}))
        sent = 0
        for row_id, person_id in claimed:
            done = Batch()
            done.then(functools.partial(_forget, row_id))
            identifiers = await asyncio.to_thread(self._identifiers, person_id)
            if identifiers:
                control_id = new_control_id()
                text = build_adt_a31(
                    identifiers,
                    control_id=control_id,
                    application=self.app.engine.name,
                    facility=self.app.engine.facility,
                    receiving_application=self.options.receiving_application,
                    receiving_facility=self.options.receiving_facility,
                )
                outcome, _ = await self.receiver.receive(
                    text.encode("utf-8"), "pix-manager", content_type=ContentType.HL7V2
                )
                if outcome.ack_code != "AA":
                    log.error(
                        "channel %s: an A31 was not stored; it stays in the outbox", self.receiver.channel_id
                    )
                    continue
                done.insert(audit_events, self._audit_row(identifiers, control_id, outcome.message_id))
                sent += 1
            await writer.write(done)
        return sent

    def _audit_row(
        self, identifiers: list[QualifiedId], control_id: str, message_id: int | None
    ) -> dict[str, Any]:
        """ITI-10's ATNA record of one A31."""
        assert self._services is not None
        event = atna.notification_event(
            us=f"{self.app.engine.name}|{self.app.engine.facility}",
            consumer=f"{self.options.receiving_application}|{self.options.receiving_facility}",
            patients=[i.cx for i in identifiers],
            control_id=control_id,
            channel_id=self.receiver.channel_id,
            message_id=message_id,
        )
        return event.row(self._services.ids.next())

    def _claim(self, alive: set[int], conn: Connection) -> list[tuple[int, int]]:
        """This channel's unclaimed rows (or those of dead nodes), claimed for this node."""
        assert self._services is not None
        node = self._services.node_id
        n = notifications
        free = or_(n.c.claimed_by.is_(None), n.c.claimed_by.not_in(alive))
        ids = [
            r.id
            for r in conn.execute(
                select(n.c.id)
                .where(n.c.channel_id == self.receiver.channel_id, free)
                .order_by(n.c.id)
                .limit(BATCH)
            )
        ]
        if not ids:
            return []
        conn.execute(update(n).where(n.c.id.in_(ids), free).values(claimed_by=node))
        rows = conn.execute(
            select(n.c.id, n.c.person_id).where(n.c.id.in_(ids), n.c.claimed_by == node).order_by(n.c.id)
        )
        return [(int(r.id), int(r.person_id)) for r in rows]

    def _identifiers(self, person_id: int) -> list[QualifiedId]:
        assert self._services is not None
        domains = self._domains
        wanted = set(self.options.domains) or None
        with self._services.db.connect() as conn:
            person = conn.execute(select(persons).where(persons.c.id == person_id)).first()
            if person is None or person.status != "active":
                return []  # merged away: the survivor has a row of its own
            rows = conn.execute(
                select(records.c.domain, records.c.value)
                .where(records.c.person_id == person_id, records.c.status == "active")
                .order_by(records.c.domain, records.c.value)
            ).all()
        return domains.qualified(person.national_id, ((r.domain, r.value) for r in rows), wanted)


def _forget(row_id: int, conn: Connection) -> None:
    """The outbox row of an A31 that is stored (or of a person with nothing left to tell)."""
    conn.execute(delete(notifications).where(notifications.c.id == row_id))
