"""The Audit Record Repository as a destination: ``atna-repository:`` keeps each audit message a
syslog source received (ITI-20, ITI TF-2 §3.20; the repository's role in ITI TF-1 §9) as a row of
``audit_events``, beside the engine's own records, and its syslog HEADER and sender in
``atna_received`` (``profiles.atna.schema``).

Its work is a change to the engine's own database, so it is made inside the transaction that
stores the syslog message (``inline = "store"``, on an ``ack: after_delivery`` channel with
``ack_from`` this destination): the message, its audit row and the engine's own records commit
together, in the store writer's group commit, its two rows inserted with the delivery's status in
the statements that insert those of the whole group (``SendResult.rows``). Reading the message
(RFC 5424, then the audit XML) is done before, on the event loop (``prepare_in``). From a queue (an
``after_store`` channel, or ``hie messages reprocess``) the same work runs in the writer's next
transaction, and a message already kept is not kept twice.

A syslog message whose MSG is not an audit message is refused with the reason: its delivery is
errored (``hie messages search --status errored`` finds it) and the message stays stored as received.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, exists, select

from engine.connectors.base import Destination, Options, Outbound, SendResult
from engine.delivery import send_in_writer
from engine.services import Services
from engine.store.db import utcnow
from engine.store.schema import audit_events
from profiles.atna import rfc5424
from profiles.atna.audit_message import AuditMessageError, ReceivedAudit, read_audit_message
from profiles.atna.schema import received

__all__ = ["AtnaRepositoryDestination", "Prepared"]


class _Options(Options):
    pass


@dataclass(frozen=True, slots=True)
class Prepared:
    syslog: rfc5424.SyslogMessage
    audit: ReceivedAudit
    once: bool  # from a queue: skip a message already kept (a send repeated after a crash)


class AtnaRepositoryDestination(Destination):
    scheme = "atna-repository"
    Options = _Options
    inline = "store"
    idempotent = True  # ``once``: a repeated send keeps nothing twice
    _services: Services | None = None

    def attach(self, services: Services) -> None:
        self._services = services

    async def send(self, out: Outbound) -> SendResult:
        """From a queue: the work of ``send_in`` in the writer's next transaction."""
        assert self._services is not None, "attach() first"
        prepared = self.prepare_in(out)
        if isinstance(prepared, Prepared):
            prepared = Prepared(prepared.syslog, prepared.audit, once=True)
        return await send_in_writer(self._services, self, out, prepared)

    def prepare_in(self, out: Outbound) -> Prepared | str:
        try:
            syslog = rfc5424.parse(out.raw)
            audit = read_audit_message(syslog.msg)
        except (rfc5424.SyslogFormatError, AuditMessageError) as exc:
            return str(exc)
        return Prepared(syslog, audit, once=False)

    def send_in(self, conn: Connection, out: Outbound, prepared: Prepared | str) -> SendResult:
        if isinstance(prepared, str):
            return SendResult(sent=b"", refused=f"not an audit message: {prepared}")
        if (
            prepared.once
            and conn.execute(select(exists().where(received.c.message_id == out.message_id))).scalar()
        ):
            return SendResult(sent=b"")
        assert self._services is not None, "attach() first"
        ident = self._services.ids.next()
        row = prepared.audit.row(ident, channel_id=out.channel_id, message_id=out.message_id)
        # inserted with the delivery's status, in the group's statements (engine.delivery)
        return SendResult(
            sent=b"", rows=((audit_events, row), (received, self._received(ident, out, prepared)))
        )

    @staticmethod
    def _received(ident: int, out: Outbound, prepared: Prepared) -> dict[str, Any]:
        syslog = prepared.syslog
        return {
            "audit_id": ident,
            "message_id": out.message_id,
            "received_at": utcnow(),
            "peer": out.peer[:200],
            "hostname": syslog.hostname,
            "app_name": syslog.app_name,
            "procid": syslog.procid,
            "msgid": syslog.msgid,
            "sent_at": syslog.timestamp,
            "enterprise_site": prepared.audit.enterprise_site[:100],
        }
