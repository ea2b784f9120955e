"""``syslog-udp://host:port``: audit messages in UDP datagrams (RFC 5426; ITI TF-2 §3.20.4.1.3).

One datagram is one SYSLOG-MSG (RFC 5426 §3.1), with no answer and no retransmission: what the
network or a full socket buffer loses is lost, which is why ATNA prefers TLS. To lose as little as
possible in a burst the socket asks the kernel for a large receive buffer (``receive_buffer_bytes``;
Linux caps it at ``net.core.rmem_max``), and a datagram is only handed to the channel on arrival:
parsing and storing run in tasks, the group commit of the store's writer taking many at a time.

A flood is bounded: with ``max_pending`` datagrams waiting for the store, further ones are dropped
and counted (a warning every 10 s says how many), rather than queued without limit in memory.
A datagram that is not RFC 5424 is kept as an errored record with the reason; the listener goes on.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any
from urllib.parse import SplitResult

from pydantic import Field

from engine.connectors.base import Options, Source
from profiles.atna.intake import Intake, port_problem

__all__ = ["SyslogUdpSource"]

log = logging.getLogger(__name__)


class SyslogUdpOptions(Options):
    max_pending: int = Field(
        10000, ge=1, description="datagrams being stored at once; more are dropped (and counted)"
    )
    receive_buffer_bytes: int = Field(
        4 * 1024 * 1024, ge=65536, description="SO_RCVBUF asked for (the kernel may give less)"
    )


class SyslogUdpSource(Source):
    scheme = "syslog-udp"
    shares_port = True  # SO_REUSEPORT: the kernel spreads senders over the workers
    Options = SyslogUdpOptions
    options: SyslogUdpOptions

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.intake = Intake(self.receiver, self.app.engine.name)
        self._transport: asyncio.DatagramTransport | None = None

    @classmethod
    def check_url(cls, url: SplitResult) -> str | None:
        return port_problem(url)

    @property
    def port(self) -> int:
        assert self._transport is not None
        return int(self._transport.get_extra_info("sockname")[1])

    async def start(self) -> None:
        host = self.url.hostname or "127.0.0.1"
        family, kind, proto, _, address = socket.getaddrinfo(host, self.url.port, type=socket.SOCK_DGRAM)[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.options.receive_buffer_bytes)
            if self.reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind(address)
            sock.setblocking(False)
            transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
                lambda: _Datagrams(self), sock=sock
            )
        except Exception:
            sock.close()
            raise
        self._transport = transport
        log.info(
            "channel %s: syslog (UDP) listening on %s:%s, receive buffer %d bytes",
            self.receiver.channel_id,
            host,
            self.port,
            sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF),
        )

    async def stop(self) -> None:
        if self._transport is None:
            return
        self._transport.close()
        self._transport = None
        # what arrived is stored before the channel stops (within reason: the store may be gone)
        for _ in range(500):
            if not self.intake.in_flight:
                break
            await asyncio.sleep(0.01)


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, source: SyslogUdpSource) -> None:
        self.source = source

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        peer = f"{addr[0]}:{addr[1]}"
        intake = self.source.intake
        if intake.in_flight >= self.source.options.max_pending:
            intake.drop(peer, f"{intake.in_flight} datagrams are waiting for the store (max_pending)")
            return
        intake.submit(data, peer)

    def error_received(self, exc: Exception) -> None:
        # an ICMP error for an earlier datagram (we send none): nothing to do but note it
        log.debug("channel %s: UDP error: %s", self.source.receiver.channel_id, exc)
