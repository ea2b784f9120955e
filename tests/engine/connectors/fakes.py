"""Test doubles shared by the connector tests: the channel as a source connector sees it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from engine.hl7v2.peek import peek
from engine.message import ContentType, Message, Outcome, OutcomeStatus

__all__ = ["SAMPLE", "Call", "Decide", "FakeReceiver", "message"]

SAMPLE = (
    "MSH|^~\\&|HIS|HOSP_A|HIE|CITY|20261122083000||ADT^A01^ADT_A01|MSG00001|P|2.5\r"
    "PID|1||100001^^^HOSP_A^PI||Zhang^San||19800101|M\r"
)


def message(control_id: str) -> str:
    return SAMPLE.replace("MSG00001", control_id)


@dataclass
class Call:
    raw: bytes
    peer: str
    content_type: ContentType


Decide = Callable[[bytes], Outcome]


class FakeReceiver:
    """Records every call and answers with ``decide(raw)`` (default: accepted, id = call number)."""

    charset = "utf-8"

    def __init__(self, decide: Decide | None = None, channel_id: str = "test-channel") -> None:
        self.channel_id = channel_id
        self.calls: list[Call] = []
        self.unframed: list[tuple[bytes, str, str]] = []
        self.decide = decide or (lambda raw: Outcome(OutcomeStatus.ACCEPTED, message_id=len(self.calls)))

    async def receive(
        self, raw: bytes, peer: str, *, content_type: ContentType = ContentType.HL7V2
    ) -> tuple[Outcome, Message | None]:
        self.calls.append(Call(raw, peer, content_type))
        outcome = self.decide(raw)
        text = raw.decode("utf-8", "replace")
        msg = Message(
            id=outcome.message_id or 0,
            channel_id=self.channel_id,
            raw=raw,
            received_at=datetime.now(UTC),
            content_type=content_type,
            content=text,
            charset="utf-8",
            header=peek(text) if text.startswith("MSH") else None,
            peer=peer,
        )
        return outcome, msg

    async def reject_unframed(self, raw: bytes, peer: str, reason: str) -> int | None:
        self.unframed.append((raw, peer, reason))
        return 99
