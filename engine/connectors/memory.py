"""In-memory connectors: a test double for sources and destinations, with no network.

``memory://NAME`` as a source is fed by ``inject(NAME, raw)``; as a destination it keeps what it
receives in ``SINKS[NAME]`` and can be told to fail, refuse or answer, to exercise queues and retries.
"""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import Field

from engine.connectors.base import Destination, Options, Outbound, SendResult, Source
from engine.errors import DeliveryError, PermanentDeliveryError
from engine.hl7v2.ack import build_ack
from engine.hl7v2.peek import peek
from engine.message import ContentType, Message, Outcome

__all__ = ["SINKS", "MemoryDestination", "MemorySource", "inject"]

_SOURCES: dict[str, MemorySource] = {}
SINKS: dict[str, list[bytes]] = {}


class MemorySourceOptions(Options):
    content_type: ContentType = ContentType.HL7V2


class MemorySource(Source):
    scheme = "memory"
    Options = MemorySourceOptions

    async def start(self) -> None:
        _SOURCES[self.url.netloc] = self

    async def stop(self) -> None:
        _SOURCES.pop(self.url.netloc, None)


async def inject(name: str, raw: bytes, peer: str = "memory") -> tuple[Outcome, Message | None]:
    source = _SOURCES[name]
    return await source.receiver.receive(raw, peer, content_type=source.options.content_type)


class MemoryDestinationOptions(Options):
    fail_times: int = Field(0, ge=0, description="raise a retryable error on the first N attempts")
    refuse: bool = Field(False, description="refuse every delivery for good")
    answer: bool = Field(False, description="answer HL7 messages with an AA ACK")
    delay: float = Field(0.0, ge=0)


class MemoryDestination(Destination):
    scheme = "memory"
    Options = MemoryDestinationOptions
    options: MemoryDestinationOptions

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._failures = 0

    async def send(self, out: Outbound) -> SendResult:
        if self.options.delay:
            await asyncio.sleep(self.options.delay)
        if self.options.refuse:
            raise PermanentDeliveryError("memory destination refuses every message")
        if self._failures < self.options.fail_times:
            self._failures += 1
            raise DeliveryError(
                f"memory destination failing on purpose ({self._failures}/{self.options.fail_times})"
            )
        payload = out.payload()
        SINKS.setdefault(self.url.netloc, []).append(payload)
        response = None
        if self.options.answer and out.content_type is ContentType.HL7V2:
            text = payload.decode(out.charset or "utf-8", "replace")
            response = build_ack(peek(text), "AA").encode(out.charset or "utf-8")
        return SendResult(sent=payload, response=response, response_charset=out.charset)
