"""What the EMPI's destinations (``pix-iti8:``, ``pix-iti9:``, ``pdq-iti21:``) share.

The actor (one EMPI per process), the request as received (in the sender's charset), and the answer
as a ``SendResult``: the answer goes back to the sender; an answer that refuses is also recorded on
the delivery as errored, with the reason. The query's ATNA record and what the answer must write
(a PDQ continuation) travel in the SendResult and commit with the delivery's status: a query costs
one commit (``Destination.inline``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sqlalchemy import Connection

from engine import audit
from engine.connectors.base import Destination, Options, Outbound, SendResult
from engine.services import Services
from ihe import atna
from ihe._hl7v2 import Request
from ihe.iti9 import QualifiedId
from profiles.empi.actor import EmpiActor

__all__ = ["EmpiDestination", "EmpiOptions"]


class EmpiOptions(Options):
    pass


class EmpiDestination(Destination):
    """Base of the EMPI's destinations: the shared actor, the request, the answer as SendResult."""

    Options = EmpiOptions
    answers_sender = True
    _actor: EmpiActor | None = None
    _services: Services | None = None

    def attach(self, services: Services) -> None:
        self._actor = EmpiActor.of(services)
        self._services = services

    def query_audit(
        self,
        transaction: str,
        out: Outbound,
        req: Request,
        qpd: str,
        found: Iterable[QualifiedId],
        refused: str | None,
    ) -> audit.AuditEvent:
        """The ATNA record of a query (ITI-9, ITI-21): who asked, the QPD, the patients returned."""
        return atna.query_event(
            transaction,
            req.header,
            qpd,
            us=self.us,
            patients=[i.cx for i in found],
            outcome=audit.Outcome.MINOR_FAILURE if refused else audit.Outcome.SUCCESS,
            description=refused,
            channel_id=out.channel_id,
            message_id=out.message_id,
        )

    @property
    def us(self) -> str:
        """Our participant id in audit records: the engine's application|facility."""
        return f"{self.app.engine.name}|{self.app.engine.facility}"

    @property
    def actor(self) -> EmpiActor:
        if self._actor is None:
            raise RuntimeError("the EMPI destination was not attached to the engine's services")
        return self._actor

    def _request(self, out: Outbound) -> Request:
        return Request(out.raw.decode(out.charset or "utf-8", "replace"))

    def _answer(
        self,
        out: Outbound,
        text: str,
        refused: str | None,
        *,
        audited: tuple[audit.AuditEvent, ...] = (),
        writes: Callable[[Connection], None] | None = None,
        after_commit: Callable[[], None] | None = None,
    ) -> SendResult:
        charset = out.charset or "utf-8"
        sent = out.content.encode("utf-8") if out.content is not None else out.raw
        return SendResult(
            sent=sent,
            response=text.encode(charset, "replace"),
            response_charset=charset,
            refused=refused,
            audit=audited,
            writes=writes,
            after_commit=after_commit,
        )

    @property
    def _application(self) -> str:
        return self.app.engine.name

    @property
    def _facility(self) -> str:
        return self.app.engine.facility
