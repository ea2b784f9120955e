"""``syslog-tls://host:port``: audit messages over TLS (RFC 5425; ITI TF-2 §3.20.4.1.3), the
transport ATNA requires of a Secure Node. The channel's ``tls:`` entry gives the certificate, and
with ``require_client_cert`` the mutual authentication of ATNA (ITI TF-2 §3.19, Authenticate Node):
a sender without a certificate of the configured CA does not get past the handshake.

Frames are octet-counted (``profiles.atna.rfc5425``). Syslog has no answers, so nothing is written
back; each SYSLOG-MSG is stored (``profiles.atna.intake``) and a sender that outruns the store
stops being read (``max_pending`` messages per connection waiting for their commit) until the
store catches up: TCP then holds the sender back, and nothing is lost.

What a sender can get wrong, and what happens: a MSG-LEN that is not a number or is larger than
``max_message_bytes`` ends the connection, the bytes kept as an errored record (there is no way to
find the next frame); a frame cut off by the connection's end or by ``idle_timeout`` is kept as an
errored record; a frame whose SYSLOG-MSG is not RFC 5424 is kept as errored and the connection goes
on; more than ``max_connections`` connections: the newcomer is closed at once. None of it disturbs
the other connections.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, cast
from urllib.parse import SplitResult

from pydantic import Field, model_validator

from engine.connectors.base import Options, Source, admit_connection, stream_peer
from profiles.atna.intake import Intake, port_problem
from profiles.atna.rfc5425 import Deframer

__all__ = ["SyslogTlsSource"]

log = logging.getLogger(__name__)


class SyslogTlsOptions(Options):
    tls: str | None = Field(None, description="name of a tls: entry in config.yaml (required)")
    max_message_bytes: int = Field(
        1024 * 1024, ge=8192, description="largest SYSLOG-MSG (RFC 5425 §4.3.1: at least 8192)"
    )
    max_connections: int = Field(256, ge=1)
    idle_timeout: float = Field(
        300.0, gt=0, description="seconds without a byte before a connection is closed"
    )
    max_pending: int = Field(
        256, ge=1, description="messages of one connection waiting for the store before reading pauses"
    )

    @model_validator(mode="after")
    def _needs_tls(self) -> SyslogTlsOptions:
        if self.tls is None:
            raise ValueError("syslog-tls needs tls: <name of a tls: entry> (RFC 5425 is syslog over TLS)")
        return self


class SyslogTlsSource(Source):
    scheme = "syslog-tls"
    shares_port = True
    Options = SyslogTlsOptions
    options: SyslogTlsOptions

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.intake = Intake(self.receiver, self.app.engine.name)
        self.connections: set[_Connection] = set()
        self.refused_connections = 0
        self._server: asyncio.Server | None = None

    @classmethod
    def check_url(cls, url: SplitResult) -> str | None:
        return port_problem(url)

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.sockets[0].getsockname()[1])

    async def start(self) -> None:
        self._server = await asyncio.get_running_loop().create_server(
            lambda: _Connection(self),
            self.url.hostname or "127.0.0.1",
            self.url.port,
            ssl=self.tls,
            reuse_address=True,
            reuse_port=self.reuse_port or None,
            backlog=1024,
        )
        log.info(
            "channel %s: syslog (TLS) listening on %s:%s",
            self.receiver.channel_id,
            self.url.hostname,
            self.port,
        )

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for conn in list(self.connections):
            conn.close()
        await self._server.wait_closed()
        self._server = None
        for _ in range(500):  # what arrived is stored before the channel stops
            if not self.intake.in_flight:
                break
            await asyncio.sleep(0.01)


class _Connection(asyncio.Protocol):
    """One sender's connection: framing, flow control, limits."""

    def __init__(self, source: SyslogTlsSource) -> None:
        self.source = source
        self.deframer = Deframer(source.options.max_message_bytes)
        self.transport: asyncio.Transport | None = None
        self.peer = ""
        self.pending = 0
        self.paused = False
        self.closing = False
        self.last_activity = time.monotonic()
        self.idle_handle: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.peer = stream_peer(transport)
        source = self.source
        limit = source.options.max_connections
        if not admit_connection(
            source.receiver.channel_id, self.peer, len(source.connections), limit, transport
        ):
            source.refused_connections += 1
            self.closing = True
            return
        self.source.connections.add(self)
        self._arm_idle()

    def connection_lost(self, exc: Exception | None) -> None:
        self.source.connections.discard(self)
        if self.idle_handle is not None:
            self.idle_handle.cancel()
        if self.deframer.pending and not self.closing:
            self._keep(
                bytes(self.deframer.buffer),
                f"truncated syslog frame: the connection closed after {self.deframer.unfinished()}",
            )
        self.closing = True

    def data_received(self, data: bytes) -> None:
        if self.closing:
            return
        self.last_activity = time.monotonic()
        for message in self.deframer.feed(data):
            self._submit(message)
        fault = self.deframer.fault
        if fault is not None:
            log.warning("channel %s: %s from %s", self.source.receiver.channel_id, fault.reason, self.peer)
            self._keep(fault.kept, f"{fault.reason}; connection closed")
            self.close()

    def _submit(self, message: bytes) -> None:
        self.pending += 1
        task = self.source.intake.submit(message, self.peer)
        task.add_done_callback(self._stored)
        if self.pending >= self.source.options.max_pending and not self.paused and self.transport:
            self.paused = True
            self.transport.pause_reading()

    def _stored(self, _task: asyncio.Task[None]) -> None:
        self.pending -= 1
        if self.paused and self.pending <= self.source.options.max_pending // 2 and self.transport:
            self.paused = False
            if not self.closing:
                self.transport.resume_reading()

    def _keep(self, data: bytes, reason: str) -> None:
        self.source.intake.keep_broken(data, self.peer, reason)

    def _arm_idle(self) -> None:
        self.idle_handle = asyncio.get_running_loop().call_later(
            self.source.options.idle_timeout, self._check_idle
        )

    def _check_idle(self) -> None:
        timeout = self.source.options.idle_timeout
        idle = time.monotonic() - self.last_activity
        if idle < timeout or self.pending:
            self.idle_handle = asyncio.get_running_loop().call_later(
                max(0.05, timeout - idle), self._check_idle
            )
            return
        if self.deframer.pending:
            self._keep(
                bytes(self.deframer.buffer),
                f"truncated syslog frame: {self.deframer.unfinished()}, then nothing within the idle "
                f"timeout of {timeout:g} s",
            )
        else:
            log.info(
                "channel %s: closing idle connection from %s after %g s",
                self.source.receiver.channel_id,
                self.peer,
                timeout,
            )
        self.close()

    def close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.close()
