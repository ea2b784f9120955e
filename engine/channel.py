"""One channel, composed once at start-up: decode -> steps -> store (durable) -> destination queues.

The channel decides; connectors only speak. ``receive`` returns an ``Outcome`` only after the
message and its queue entries are committed, so an AA never precedes durability. On an
``after_delivery`` channel it then waits for the ``ack_from`` destination and relays its answer;
an in-process actor's destination is asked within that same commit instead (``Destination.inline``:
a query answered first, an actor's change made inside the transaction), one commit per request.
"""

from __future__ import annotations

import json
import logging
import traceback
import zlib
from collections.abc import Iterable
from datetime import datetime
from time import perf_counter
from typing import TYPE_CHECKING, Any

from engine import audit
from engine.config import ChannelConfig, DestinationConfig
from engine.connectors.base import SendResult
from engine.errors import CharsetError, DeliveryError, MessageError
from engine.hl7v2.charset import codec_for, decode_message
from engine.hl7v2.peek import Header, peek, require_control_id
from engine.message import ContentType, Message, Outcome, OutcomeStatus
from engine.registry import build_steps
from engine.services import Services
from engine.store.db import utcnow
from engine.store.schema import audit_events, deliveries, identifiers, messages
from engine.store.writer import Batch

if TYPE_CHECKING:
    from engine.delivery import DestinationQueue

__all__ = ["Channel"]

log = logging.getLogger(__name__)

# built once, not per message: the record of an outcome
_AUDIT_OUTCOME = {
    OutcomeStatus.ACCEPTED: audit.Outcome.SUCCESS,
    OutcomeStatus.FILTERED: audit.Outcome.SUCCESS,
}
_MESSAGE_STATUS = {OutcomeStatus.ACCEPTED: "received", OutcomeStatus.FILTERED: "filtered"}


class Channel:
    def __init__(self, config: ChannelConfig, services: Services) -> None:
        self.config = config
        self.channel_id = config.id
        self.charset = codec_for(config.charset) or "gb18030"
        self.services = services
        self.steps = build_steps(config, services.app)
        self.queues: dict[str, DestinationQueue] = {}
        self._meter = services.telemetry.meter(config.id)  # counts and answer latency, for metrics
        # peer -> (participants, their JSON) of our audit records; bounded, peers change ports
        self._participants: dict[str, tuple[list[dict[str, Any]], str]] = {}

    # -- the receive path ---------------------------------------------------------------------------
    async def receive(
        self,
        raw: bytes,
        peer: str,
        *,
        content_type: ContentType = ContentType.HL7V2,
        header: Header | None = None,
    ) -> tuple[Outcome, Message | None]:
        started = perf_counter()
        msg, outcome, batch, targets = self.prepare(raw, peer, content_type, header=header)
        relay = outcome.status is OutcomeStatus.ACCEPTED and self.config.ack == "after_delivery"
        answering = self.queues[self.config.ack_from or ""] if relay else None
        inline = None
        if answering is not None and answering.connector.inline_mode(msg) != "queue":
            # asked within the commit that stores the message: one commit, not two (Destination.inline)
            inline = await answering.ask_inline(msg, batch)
        try:
            await self.services.writer.write(batch)
        except Exception as exc:
            log.error("channel %s: message %s not stored: %s", self.channel_id, msg.id, exc)
            error = MessageError(f"the message could not be stored, send it again ({type(exc).__name__})")
            self._meter.done(OutcomeStatus.ERRORED, started)
            return Outcome(OutcomeStatus.ERRORED, error=error), msg
        for dest_id, lane in targets:
            self.queues[dest_id].notify(lane)
        if answering is None:
            self._meter.done(outcome.status, started)
            return outcome, msg
        if inline is None:
            await self._relay(answering, msg, outcome)
        elif inline.result is None:
            self._unanswered(answering, outcome, inline.error or "no answer")
        else:
            self._answered(inline.result, outcome)
        self._meter.done(outcome.status, started)
        return outcome, msg

    async def reject_unframed(self, raw: bytes, peer: str, reason: str) -> int | None:
        """Keep bytes that never became a message, for the auditors; they are told nothing more."""
        self._meter.unframed()
        ident = self.services.ids.next()
        now = utcnow()
        batch = Batch()
        batch.insert(
            messages, self._row(ident, now, raw, peer, ContentType.BYTES, "", None, "errored", error=reason)
        )
        self._audit(batch, now, None, ident, peer, audit.Outcome.SERIOUS_FAILURE, reason)
        try:
            await self.services.writer.write(batch)
        except Exception as exc:
            log.error("channel %s: errored bytes from %s not stored: %s", self.channel_id, peer, exc)
            return None
        return ident

    def prepare(
        self,
        raw: bytes,
        peer: str,
        content_type: ContentType,
        *,
        reprocessed_from: int | None = None,
        only: Iterable[str] | None = None,
        header: Header | None = None,
    ) -> tuple[Message, Outcome, Batch, list[tuple[str, int]]]:
        """Everything up to the write: decode, run the steps, build the rows. No I/O; the CLI reuses it.

        ``header``: what a source that is not HL7 v2 read of its request for the store's index (a
        SOAP request's MessageID as control id, its action as message type)."""
        ident = self.services.ids.next()
        now = utcnow()
        msg = Message(
            id=ident,
            channel_id=self.channel_id,
            raw=raw,
            received_at=now,
            content_type=content_type,
            peer=peer,
            header=header if content_type is not ContentType.HL7V2 else None,
        )
        outcome = self._run(msg)
        batch = Batch()
        batch.insert(messages, self._message_row(msg, outcome, reprocessed_from))
        if msg.header is not None:
            for i in msg.header.identifiers:
                batch.insert(
                    identifiers,
                    {
                        "message_id": ident,
                        "value": i.value[:100],
                        "authority": i.authority[:100],
                        "id_type": i.id_type[:20],
                        "field": i.field,
                    },
                )
        targets: list[tuple[str, int]] = []
        if outcome.status is OutcomeStatus.ACCEPTED:
            chosen = set(only) if only is not None else None
            for dest in self.config.destinations:
                picked = (msg.routes is None or dest.id in msg.routes) and (
                    chosen is None or dest.id in chosen
                )
                lane, key = self._lane(dest, msg)
                status = "queued" if picked else "filtered"
                if picked and self.config.ack == "after_delivery" and dest.id == self.config.ack_from:
                    status = "pending"  # delivered in the request, not from the queue
                delivery_id = self.services.ids.next()
                msg.variables.setdefault("delivery_ids", {})[dest.id] = delivery_id
                batch.insert(
                    deliveries,
                    {
                        "id": delivery_id,
                        "message_id": ident,
                        "channel_id": self.channel_id,
                        "destination": dest.id,
                        "lane": lane,
                        "order_key": key,
                        "status": status,
                        "attempts": 0,
                        "next_attempt_at": None,
                        "owner_node": self.services.node_id,
                        "created_at": now,
                        "updated_at": now,
                        "sent_at": None,
                        "sent": None,
                        "response": None,
                        "last_error": None,
                    },
                )
                if status == "queued":
                    targets.append((dest.id, lane))
        self._audit(
            batch,
            now,
            msg,
            ident,
            peer,
            _AUDIT_OUTCOME.get(outcome.status, audit.Outcome.SERIOUS_FAILURE),
            outcome.error.text if outcome.error else None,
        )
        return msg, outcome, batch, targets

    def _run(self, msg: Message) -> Outcome:
        try:
            if msg.content_type is ContentType.HL7V2:
                try:
                    msg.content, msg.charset = decode_message(msg.raw, self.charset)
                except CharsetError:
                    msg.header = _ascii_header(msg.raw)  # so the NAK still names the message (MSA-2)
                    raise
                msg.header = peek(msg.content)
                require_control_id(msg.header)
            elif msg.content_type not in (ContentType.BYTES, ContentType.MIME):
                msg.content, msg.charset = msg.raw.decode("utf-8"), "utf-8"
            for step in self.steps:
                result = step.apply(msg)
                if result.filtered:
                    msg.variables["filtered_by"] = f"{step.kind}: {result.reason}"
                    return Outcome(OutcomeStatus.FILTERED, message_id=msg.id, warnings=msg.warnings)
        except MessageError as exc:
            status = OutcomeStatus.REJECTED if exc.reject else OutcomeStatus.ERRORED
            return Outcome(status, message_id=msg.id, error=exc)
        except UnicodeDecodeError as exc:
            return Outcome(
                OutcomeStatus.REJECTED,
                message_id=msg.id,
                error=MessageError(f"the content is not UTF-8: {exc}", hl7_code="102", reject=True),
            )
        except Exception as exc:  # a bug in a step must not take the listener down
            log.exception("channel %s: step failed on message %s", self.channel_id, msg.id)
            msg.variables["error_detail"] = _traceback_summary(exc)
            return Outcome(
                OutcomeStatus.ERRORED,
                message_id=msg.id,
                error=MessageError(f"internal error in a pipeline step: {type(exc).__name__}: {exc}"),
            )
        return Outcome(OutcomeStatus.ACCEPTED, message_id=msg.id, warnings=msg.warnings)

    async def _relay(self, queue: DestinationQueue, msg: Message, outcome: Outcome) -> None:
        try:
            result = await queue.deliver_now(msg)
        except DeliveryError as exc:
            self._unanswered(queue, outcome, str(exc))
            return
        self._answered(result, outcome)

    @staticmethod
    def _answered(result: SendResult, outcome: Outcome) -> None:
        outcome.response = result.response
        outcome.response_charset = result.response_charset
        if result.after_commit is not None:
            result.after_commit()

    @staticmethod
    def _unanswered(queue: DestinationQueue, outcome: Outcome, reason: str) -> None:
        outcome.status = OutcomeStatus.ERRORED
        outcome.error = MessageError(f"destination {queue.destination_id} did not answer: {reason}")

    # -- rows ---------------------------------------------------------------------------------------
    def _message_row(self, msg: Message, outcome: Outcome, reprocessed_from: int | None) -> dict[str, object]:
        status = _MESSAGE_STATUS.get(outcome.status, "errored")
        decoded_changed = (
            msg.content_type is not ContentType.BYTES and msg.content and msg.variables.get("changed")
        )
        error = outcome.error.text if outcome.error else msg.variables.get("filtered_by")
        row = self._row(
            msg.id,
            msg.received_at,
            msg.raw,
            msg.peer,
            msg.content_type,
            msg.charset,
            msg.content if decoded_changed else None,
            status,
            error=error,
            detail=msg.variables.get("error_detail"),
        )
        h = msg.header
        if h is not None:
            row |= {
                "control_id": h.control_id[:64],
                "message_type": h.message_type[:32],
                "sending_application": h.sending_application[:100],
                "sending_facility": h.sending_facility[:100],
                "receiving_application": h.receiving_application[:100],
                "receiving_facility": h.receiving_facility[:100],
            }
        row["warnings"] = json.dumps(msg.warnings, ensure_ascii=False) if msg.warnings else None
        row["reprocessed_from"] = reprocessed_from
        return row

    def _row(
        self,
        ident: int,
        now: object,
        raw: bytes,
        peer: str,
        content_type: ContentType,
        charset: str,
        content: str | None,
        status: str,
        *,
        error: str | None = None,
        detail: str | None = None,
    ) -> dict[str, object]:
        return {
            "id": ident,
            "channel_id": self.channel_id,
            "received_at": now,
            "updated_at": now,
            "status": status,
            "content_type": content_type.value,
            "charset": charset,
            "control_id": "",
            "message_type": "",
            "sending_application": "",
            "sending_facility": "",
            "receiving_application": "",
            "receiving_facility": "",
            "peer": peer[:200],
            "raw": raw,
            "content": content,
            "error": error,
            "error_detail": detail,
            "warnings": None,
            "reprocessed_from": None,
        }

    def _audit(
        self,
        batch: Batch,
        now: object,
        msg: Message | None,
        ident: int,
        peer: str,
        outcome: int,
        description: str | None,
    ) -> None:
        assert isinstance(now, datetime)
        participants, participants_json = self._audit_participants(peer)
        event = audit.AuditEvent(
            event_id=audit.IMPORT,
            action="C",
            outcome=outcome,
            event_time=now,
            event_type=f"channel^{self.channel_id}",
            outcome_description=description,
            participants=participants,
            objects=audit.message_objects(msg.header if msg else None, ident),
            channel_id=self.channel_id,
            message_id=ident,
            participants_json=participants_json,
        )
        batch.insert(audit_events, event.row(self.services.ids.next()))

    def _audit_participants(self, peer: str) -> tuple[list[dict[str, Any]], str]:
        """The participants of a receive record and their JSON, built once per peer (same every time)."""
        cached = self._participants.get(peer)
        if cached is None:
            participants = [
                audit.participant(peer, requestor=True, role="110153", network=peer.split(":")[0]),
                audit.participant(self.services.app.engine.name, requestor=False, role="110152"),
            ]
            if len(self._participants) >= 1024:  # each connection is a new ip:port
                self._participants.clear()
            cached = self._participants[peer] = (participants, audit.participants_json(participants))
        return cached

    def _lane(self, dest: DestinationConfig, msg: Message) -> tuple[int, str]:
        key = ""
        h = msg.header
        if dest.order_by == "patient" and h is not None and h.identifiers:
            first = h.identifiers[0]
            key = f"{first.value}^{first.authority}"
        elif dest.order_by == "sending-facility" and h is not None:
            key = h.sending_facility
        if dest.lanes == 1:
            return 0, key[:200]
        if dest.order_by == "none" or not key:
            return msg.id % dest.lanes, key[:200]
        return zlib.crc32(key.encode()) % dest.lanes, key[:200]


def _ascii_header(raw: bytes) -> Header | None:
    """MSH of a message whose bytes do not decode, read as ASCII (MSH is ASCII in every charset we accept).

    Only for answering and indexing the errored record: the charset the sender named is not echoed in
    the ACK (it is unknown, or its bytes were wrong) and identifiers, perhaps garbled, are not indexed.
    """
    try:
        header = peek(raw.decode("ascii", "replace"))
    except MessageError:
        return None
    header.charset = ""
    header.identifiers.clear()
    return header


def _traceback_summary(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)[-5:]
    lines = [f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} in {f.name}" for f in frames]
    return f"{type(exc).__name__}: {exc}\n" + "\n".join(lines)
