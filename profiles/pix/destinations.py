"""The PIX Manager as destinations of a channel: ``pix-iti8:`` (feed) and ``pix-iti9:`` (query).

A channel receives the HL7 message over MLLP, stores it, maps a feed to the platform's AdtEvent,
and hands it to the manager; the manager's answer (the ACK of ITI-8, the RSP^K23 of ITI-9) goes
back to the sender, so the channel says ``ack: after_delivery`` and ``ack_from`` this destination::

    source: {url: "mllp://127.0.0.1:3600"}
    ack: after_delivery
    ack_from: pix
    steps:
      - map: {mapping: ihe-iti8-adt}      # or the vendor's own mapping to model:AdtEvent
    destinations:
      - {id: pix, url: "pix-iti8:"}

The answer is in the sender's charset and version; an answer other than AA is also recorded on the
delivery as errored, with the reason, so auditors find refused feeds and failed queries.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError
from sqlalchemy import Connection

from engine import audit
from engine.connectors.base import Outbound, SendResult
from engine.delivery import send_in_writer
from engine.errors import MessageError
from engine.hl7v2.ack import build_ack
from engine.hl7v2.peek import Header
from engine.message import ContentType
from ihe import atna
from ihe.iti9 import PixAnswer, build_rsp_k23, parse_qbp_q23
from profiles.canonical import AdtEvent
from profiles.empi.destination import EmpiDestination
from profiles.pix.manager import PreparedFeed

__all__ = ["PixFeedDestination", "PixQueryDestination"]


@dataclass(frozen=True, slots=True)
class _Prepared:
    header: Header
    feed: PreparedFeed | MessageError  # checked, or refused before any database work


class PixFeedDestination(EmpiDestination):
    """ITI-8: the AdtEvent the channel mapped goes into the EMPI; the answer is the feed's ACK.

    The feed runs inside the transaction that stores the message (``inline = "store"``): the
    message, the change to the index, its ATNA records, the ITI-10 outbox rows and the delivery's
    status commit together, so an AA is never sent for a feed that is not durable and a crash never
    leaves a stored feed unapplied or an applied feed unstored.
    """

    scheme = "pix-iti8"
    inline = "store"

    async def send(self, out: Outbound) -> SendResult:
        """From a queue (``hie reprocess`` queues the feed: nobody waits for its ACK): in the writer's
        next transaction, with its ATNA records, since the lane commits the delivery's status later."""
        assert self._services is not None
        return await send_in_writer(self._services, self, out, self.prepare_in(out))

    def prepare_in(self, out: Outbound) -> _Prepared:
        """The feed parsed and checked on the event loop; a refusal is answered from the writer."""
        header = self._request(out).header
        try:
            return _Prepared(header, self.actor.manager.prepare(self._event(out), header))
        except MessageError as exc:
            return _Prepared(header, exc)

    def send_in(self, conn: Connection, out: Outbound, prepared: _Prepared) -> SendResult:
        header = prepared.header
        try:
            if isinstance(prepared.feed, MessageError):
                raise prepared.feed
            answer = self.actor.manager.feed_in(conn, prepared.feed, out.message_id)
        except MessageError as exc:
            code = "AR" if exc.reject else "AE"
            refused = atna.feed_event(
                header,
                us=self.us,
                patients=[
                    f"{i.value}^^^{i.authority}" if i.authority else i.value for i in header.identifiers
                ],
                action="C",
                outcome=audit.Outcome.MINOR_FAILURE,
                description=exc.text,
                channel_id=out.channel_id,
                message_id=out.message_id,
            )
            return self._answer(
                out,
                build_ack(header, code, exc, application=self._application, facility=self._facility),
                f"{code}: {exc.text}",
                audited=(refused,),
            )
        # the ITI-8 records of each identity fed, committed with the change they describe
        audited = tuple(
            atna.feed_event(
                header,
                us=self.us,
                patients=[cx],
                action=action,
                channel_id=out.channel_id,
                message_id=out.message_id,
            )
            for cx, action in answer.identities
        )
        warning = "; ".join(answer.warnings) or None
        return self._answer(
            out,
            build_ack(header, "AA", warning=warning, application=self._application, facility=self._facility),
            None,
            audited=audited,
            after_commit=self.actor.manager.wake_subscribers if answer.changed_persons else None,
        )

    def _event(self, out: Outbound) -> AdtEvent:
        if out.content is None or out.content_type is not ContentType.JSON:
            raise MessageError(
                "the channel hands ITI-8 feeds to the PIX Manager as the platform's AdtEvent: add a "
                "map step to model:AdtEvent (mappings/ihe-iti8-adt.yaml for a standard IHE feed)",
                hl7_code="207",
            )
        try:
            return AdtEvent.model_validate_json(out.content)
        except ValidationError as exc:
            raise MessageError(f"the mapped feed is not an AdtEvent: {exc}", hl7_code="207") from None


class PixQueryDestination(EmpiDestination):
    """ITI-9: QBP^Q23 in, RSP^K23 out (every case of TF-2 §3.9.4.2.2.6)."""

    scheme = "pix-iti9"
    inline = "read"  # the message, the RSP and the query's ATNA record commit together, once

    async def send(self, out: Outbound) -> SendResult:
        req = self._request(out)
        query = None
        try:
            query = parse_qbp_q23(req)
            answer = await self.actor.read(self.actor.manager.query, query)
        except MessageError as exc:
            answer = PixAnswer(errors=[exc])
        text = build_rsp_k23(req, query, answer, application=self._application, facility=self._facility)
        refused = "; ".join(e.text for e in answer.errors) or None
        qpd = query.qpd if query is not None else (req.segment_text("QPD") or "")
        event = self.query_audit("ITI-9", out, req, qpd, answer.identifiers, refused)
        return self._answer(out, text, refused, audited=(event,))
