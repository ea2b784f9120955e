"""MLLP (HL7 v2 Minimal Lower Layer Protocol, HL7 v2.5 Appendix C.4) source and destination.

A frame is ``<VT 0x0B> message <FS 0x1C><CR 0x0D>``. Framing is done on bytes before any decoding:
GB18030/GBK trail bytes are never 0x0B, 0x1C or 0x0D, so a Chinese message cannot fake a frame end.
The source answers each message with an ACK (or the destination's answer on ``after_delivery``
channels) in the order the messages came, in the sender's charset.

Every way a sender can go wrong is answered and kept: bytes outside a frame, an oversized message,
a frame cut off by a closed connection or an idle timeout are stored as errored records with the
bytes received; broken frames get a NAK (AR) naming the problem; a flood beyond ``max_connections``
is turned away at accept. None of it disturbs the other connections.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from typing import Any, cast

from pydantic import Field

from engine.connectors.base import (
    Destination,
    Options,
    Outbound,
    SendResult,
    Source,
    admit_connection,
    stream_peer,
)
from engine.errors import DeliveryError, FramingError, MessageError, PermanentDeliveryError
from engine.hl7v2.ack import build_ack, parse_ack
from engine.hl7v2.charset import decode_message, encode_text
from engine.message import Message, Outcome

__all__ = ["MllpDestination", "MllpSource", "frame"]

log = logging.getLogger(__name__)

SB, EB, CR = b"\x0b", b"\x1c", b"\x0d"
END = EB + CR


def frame(payload: bytes) -> bytes:
    return SB + payload + END


class MllpSourceOptions(Options):
    tls: str | None = Field(None, description="name of a tls: entry in config.yaml")
    max_message_bytes: int | None = Field(None, ge=1024, description="default: listeners.mllp")
    max_connections: int | None = Field(None, ge=1, description="default: listeners.mllp")
    idle_timeout: float | None = Field(None, gt=0, description="seconds; default: listeners.mllp")
    max_pipelined: int = Field(
        64, ge=1, description="unanswered messages per connection before reading pauses"
    )


class MllpSource(Source):
    scheme = "mllp"
    shares_port = True
    Options = MllpSourceOptions
    options: MllpSourceOptions

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        limits = self.app.listeners.mllp
        self.max_bytes = self.options.max_message_bytes or limits.max_message_bytes
        self.max_connections = self.options.max_connections or limits.max_connections
        self.idle_timeout = self.options.idle_timeout or limits.idle_timeout
        self.connections: set[_Connection] = set()
        self.refused = 0
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self),
            self.url.hostname or "127.0.0.1",
            self.url.port,
            ssl=self.tls,
            reuse_address=True,
            reuse_port=self.reuse_port or None,
            backlog=1024,
        )
        log.info(
            "channel %s: MLLP listening on %s:%s%s",
            self.receiver.channel_id,
            self.url.hostname,
            self.port,
            " (TLS)" if self.tls else "",
        )

    def up(self) -> bool:
        return self._server is not None and self._server.is_serving()

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for conn in list(self.connections):
            conn.close()
        await self._server.wait_closed()
        self._server = None

    def answer_for(self, outcome: Outcome, msg: Message | None) -> bytes:
        if outcome.response is not None:
            return outcome.response
        text = build_ack(
            msg.header if msg else None,
            outcome.ack_code,
            outcome.error,
            application=self.app.engine.name,
            facility=self.app.engine.facility,
            warning="; ".join(outcome.warnings) or None,
        )
        return encode_text(text, msg.charset if msg and msg.charset else "utf-8")


class _Connection(asyncio.Protocol):
    """One sender's connection: framing, in-order answers, limits."""

    def __init__(self, source: MllpSource) -> None:
        self.source = source
        self.buffer = bytearray()
        self.in_frame = False
        self.pending: collections.deque[asyncio.Future[bytes]] = collections.deque()
        self.writer_task: asyncio.Task[None] | None = None
        self.transport: asyncio.Transport | None = None
        self.peer = ""
        self.last_activity = time.monotonic()
        self.idle_handle: asyncio.TimerHandle | None = None
        self.paused = False
        self.closing = False

    # -- asyncio.Protocol -------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it
        self.transport = cast(asyncio.Transport, transport)
        self.peer = stream_peer(transport)
        source = self.source
        if not admit_connection(
            source.receiver.channel_id, self.peer, len(source.connections), source.max_connections, transport
        ):
            source.refused += 1
            self.closing = True
            return
        self.source.connections.add(self)
        self._arm_idle()

    def connection_lost(self, exc: Exception | None) -> None:
        self.source.connections.discard(self)
        if self.idle_handle is not None:
            self.idle_handle.cancel()
        if self.in_frame and self.buffer and not self.closing:
            self._keep_unframed(
                bytes(self.buffer),
                f"truncated message: the connection closed after "
                f"{len(self.buffer)} bytes without an end block (0x1C 0x0D)",
            )
        self.buffer.clear()
        self.closing = True

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        self.last_activity = time.monotonic()
        self.buffer += data
        self._frames()

    # -- framing ----------------------------------------------------------------------------------
    def _frames(self) -> None:
        buf = self.buffer
        while buf and not self.closing:
            if not self.in_frame:
                start = buf.find(SB)
                junk = bytes(buf if start == -1 else buf[:start])
                if junk.strip(b"\r\n\t "):
                    self._nak_unframed(junk, "bytes outside an MLLP frame: expected start block 0x0B")
                del buf[: len(buf) if start == -1 else start + 1]
                if start == -1:
                    return
                self.in_frame = True
            end = buf.find(END)
            if end == -1:
                # a trailing 0x1C may be the first half of the end block: it is not message content
                if len(buf) - buf.endswith(EB) > self.source.max_bytes:
                    self._oversize()
                return
            if end > self.source.max_bytes:
                self._oversize()
                return
            payload = bytes(buf[:end])
            del buf[: end + 2]
            self.in_frame = False
            if SB in payload:
                # a new start block inside a frame: the previous frame never ended
                cut = payload.rfind(SB)
                self._nak_unframed(
                    payload[:cut],
                    "truncated message: a new start block 0x0B came before "
                    "the end block of the previous message",
                )
                payload = payload[cut + 1 :]
            self._submit(payload)

    def _oversize(self) -> None:
        limit = self.source.max_bytes
        kept = bytes(self.buffer[:limit])
        reason = f"message exceeds the limit of {limit} bytes (max_message_bytes); connection closed"
        log.warning("channel %s: %s from %s", self.source.receiver.channel_id, reason, self.peer)
        self._nak_unframed(kept, reason)
        self.buffer.clear()
        self.in_frame = False
        self._close_after_answers()

    # -- answers ----------------------------------------------------------------------------------
    def _submit(self, payload: bytes) -> None:
        self._queue(asyncio.ensure_future(self._answer(payload)))

    def _queue(self, answer: asyncio.Future[bytes]) -> None:
        """Answers go out in the order their messages came, whenever each is ready."""
        self.pending.append(answer)
        if len(self.pending) >= self.source.options.max_pipelined and not self.paused and self.transport:
            self.paused = True
            self.transport.pause_reading()
        if self.writer_task is None:
            self.writer_task = asyncio.ensure_future(self._write_answers())

    async def _answer(self, payload: bytes) -> bytes:
        try:
            outcome, msg = await self.source.receiver.receive(payload, self.peer)
            return self.source.answer_for(outcome, msg)
        except Exception as exc:
            log.exception(
                "channel %s: internal error answering %s", self.source.receiver.channel_id, self.peer
            )
            # the bytes are still kept, as an errored record, like any other input that did not go through
            self._keep_unframed(payload, f"internal error: {type(exc).__name__}: {exc}")
            error = MessageError(
                "internal error: the message was not accepted; send it again", hl7_code="207"
            )
            return self._headerless_answer("AE", error)

    def _nak_unframed(self, raw: bytes, reason: str) -> None:
        self._keep_unframed(raw, reason)
        nak: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        nak.set_result(self._headerless_answer("AR", FramingError(reason)))
        self._queue(nak)

    def _headerless_answer(self, code: str, error: MessageError) -> bytes:
        """A NAK when there is no usable MSH to answer from (HL7 v2.5 layout, UTF-8)."""
        return encode_text(build_ack(None, code, error, application=self.source.app.engine.name), "utf-8")

    def _keep_unframed(self, raw: bytes, reason: str) -> None:
        log.warning("channel %s: %s (%s)", self.source.receiver.channel_id, reason, self.peer)
        task = asyncio.ensure_future(self.source.receiver.reject_unframed(raw, self.peer, reason))
        task.add_done_callback(_log_failure)

    async def _write_answers(self) -> None:
        try:
            while self.pending:
                answer = await self.pending[0]
                self.pending.popleft()
                if self.transport is not None and not self.transport.is_closing():
                    self.transport.write(frame(answer))
                low_water = self.source.options.max_pipelined // 2
                if self.paused and len(self.pending) < low_water and self.transport:
                    self.paused = False
                    self.transport.resume_reading()
        finally:
            self.writer_task = None
        if self.closing and self.transport is not None:
            self.transport.close()

    def _close_after_answers(self) -> None:
        self.closing = True
        if self.writer_task is None and self.transport is not None:
            self.transport.close()

    # -- idle timeout -----------------------------------------------------------------------------
    def _arm_idle(self) -> None:
        loop = asyncio.get_running_loop()
        self.idle_handle = loop.call_later(self.source.idle_timeout, self._check_idle)

    def _check_idle(self) -> None:
        idle = time.monotonic() - self.last_activity
        if idle < self.source.idle_timeout or self.pending:
            self.idle_handle = asyncio.get_running_loop().call_later(
                max(0.05, self.source.idle_timeout - idle), self._check_idle
            )
            return
        if self.in_frame and self.buffer:
            self._keep_unframed(
                bytes(self.buffer),
                f"truncated message: no end block within the idle timeout of {self.source.idle_timeout:g} s",
            )
        else:
            log.info(
                "channel %s: closing idle connection from %s after %g s",
                self.source.receiver.channel_id,
                self.peer,
                self.source.idle_timeout,
            )
        self.closing = True
        self.buffer.clear()
        if self.transport is not None:
            self.transport.close()

    def close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.close()


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("could not keep an errored record: %s", task.exception())


class MllpDestinationOptions(Options):
    tls: str | None = Field(None, description="name of a tls: entry in config.yaml")
    connect_timeout: float = Field(10.0, gt=0)
    ack_timeout: float = Field(30.0, gt=0, description="seconds to wait for the answer")
    charset: str | None = Field(None, description="re-encode to this charset; default: as received")
    check_control_id: bool = Field(True, description="MSA-2 must equal the MSH-10 sent")
    max_answer_bytes: int = Field(16 * 1024 * 1024, ge=1024)


class MllpDestination(Destination):
    scheme = "mllp"
    Options = MllpDestinationOptions
    options: MllpDestinationOptions

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def stop(self) -> None:
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        while self._idle:
            reader, writer = self._idle.pop()
            if not writer.is_closing() and not reader.at_eof():
                return reader, writer
            writer.close()
        try:
            return await asyncio.wait_for(
                asyncio.open_connection(
                    self.url.hostname, self.url.port, ssl=self.tls, limit=self.options.max_answer_bytes
                ),
                self.options.connect_timeout,
            )
        except (OSError, TimeoutError) as exc:
            raise DeliveryError(f"cannot connect to {self.url.netloc}: {exc or 'timeout'}") from None

    async def send(self, out: Outbound) -> SendResult:
        payload = out.payload(self.options.charset)
        reader, writer = await self._connect()
        try:
            writer.write(frame(payload))
            await writer.drain()
            data = await asyncio.wait_for(reader.readuntil(END), self.options.ack_timeout)
        except TimeoutError:
            writer.close()
            raise DeliveryError(
                f"no answer from {self.url.netloc} within {self.options.ack_timeout:g} s"
            ) from None
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
            writer.close()
            raise DeliveryError(f"connection to {self.url.netloc} failed: {exc}") from None
        self._idle.append((reader, writer))
        start = data.find(SB)
        answer = data[start + 1 : -2] if start != -1 else data[:-2]
        self._check(answer, out)
        return SendResult(sent=payload, response=answer)

    def _check(self, answer: bytes, out: Outbound) -> None:
        """Downstream ACK rules: MSA-1 decides, MSA-2 must name the message we sent (HL7 v2.5 §2.9.2)."""
        try:
            text, _ = decode_message(answer, out.charset or "utf-8")
            ack = parse_ack(text)
        except MessageError as exc:
            raise DeliveryError(f"unusable answer from {self.url.netloc}: {exc.text}") from None
        if self.options.check_control_id and out.control_id and ack.control_id != out.control_id:
            raise DeliveryError(
                f"answer acknowledges {ack.control_id!r}, not the message sent ({out.control_id!r})"
            )
        why = f"{ack.code} from {self.url.netloc}" + (f": {ack.text}" if ack.text else "")
        if ack.code in ("AA", "CA"):
            return
        if ack.code in ("AE", "CE"):
            raise PermanentDeliveryError(why, ack_code="AE")
        if ack.code in ("AR", "CR"):
            raise DeliveryError(why)
        raise DeliveryError(f"unknown acknowledgment code {ack.code!r} from {self.url.netloc}")
