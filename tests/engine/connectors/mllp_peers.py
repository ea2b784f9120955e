"""Peers for the MLLP tests: a real python-hl7 client, a raw asyncio client, a fake downstream.

Shared by test_mllp_source.py, test_mllp_destination.py and test_mllp_tls.py. Everything here
talks to the engine over real sockets on 127.0.0.1; nothing reaches into the connector.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Callable
from typing import Any

from hl7.client import MLLPClient
from sqlalchemy import select

from tests.conftest import by_segment

SB, EB, CR = b"\x0b", b"\x1c", b"\r"
END = EB + CR
TIMEOUT = 10.0  # generous bound for anything the engine must do "at once"


def frame(payload: bytes) -> bytes:
    return SB + payload + END


def unframe(data: bytes) -> bytes:
    assert data.startswith(SB) and data.endswith(END), f"not one MLLP frame: {data[:80]!r}...{data[-20:]!r}"
    return data[1:-2]


def ack_of(data: bytes, charset: str = "utf-8") -> dict[str, list[str]]:
    """An answer (framed or not) split into fields per segment: ``ack["MSA"][1]`` is MSA-1."""
    if data.startswith(SB):
        data = unframe(data)
    return by_segment(data.decode(charset))


def msh10(payload: bytes) -> str:
    return payload.split(b"\r", 1)[0].split(b"|")[9].decode("ascii")


def channel(
    port: int, *, cid: str = "adt", source: str = "", dests: str | None = None, more: str = ""
) -> str:
    """A channel YAML with an MLLP source on ``port`` (idle timeout 1 s unless ``source`` says otherwise)."""
    options = "idle_timeout: 1" if "idle_timeout" not in source else ""
    opts = ", ".join(o for o in (options, source) if o)
    dests = dests if dests is not None else f"  - {{id: out, url: 'memory://{cid}-out'}}"
    return f"id: {cid}\nsource: {{url: 'mllp://127.0.0.1:{port}', {opts}}}\n{more}destinations:\n{dests}\n"


def rows(rt: Any, table: Any, *where: Any) -> list[dict[str, Any]]:
    with rt.services.db.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(table).where(*where).order_by(table.c.id))]


async def until(predicate: Callable[[], Any], within: float = TIMEOUT) -> Any:
    """Poll ``predicate`` until it returns something truthy; fail after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        value = predicate()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


# -- the python-hl7 client (synchronous: run it in a thread) -----------------------------------------
def _hl7_exchange(port: int, payloads: list[bytes]) -> list[bytes]:
    answers = []
    with MLLPClient("127.0.0.1", port) as client:
        client.socket.settimeout(TIMEOUT)
        for payload in payloads:
            data = client.send_message(payload)
            while data and not data.endswith(END):  # recv may return part of a long answer
                more = client.socket.recv(65536)
                if not more:
                    break
                data += more
            answers.append(data)
    return answers


async def hl7_send(port: int, *payloads: bytes) -> list[bytes]:
    """Send each payload with python-hl7's MLLPClient on one connection; the framed answers."""
    return await asyncio.to_thread(_hl7_exchange, port, list(payloads))


async def hl7_send_one(port: int, payload: bytes) -> bytes:
    (answer,) = await hl7_send(port, payload)
    return answer


# -- a raw client, for broken bytes ---------------------------------------------------------------------
class Peer:
    """A raw TCP (or TLS) client on asyncio streams."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int, tls: ssl.SSLContext | None = None) -> Peer:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=tls)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def frame(self, within: float = TIMEOUT) -> bytes:
        """The next answer, unframed."""
        data = await asyncio.wait_for(self.reader.readuntil(END), within)
        return unframe(data)

    async def ask(self, payload: bytes) -> dict[str, list[str]]:
        await self.send(frame(payload))
        return ack_of(await self.frame())

    async def rest(self, within: float = TIMEOUT) -> bytes:
        """Everything until the server closes the connection (raises TimeoutError if it never does)."""
        try:
            return await asyncio.wait_for(self.reader.read(), within)
        except (ConnectionResetError, ssl.SSLError):
            return b""

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError, ssl.SSLError):
            await self.writer.wait_closed()


# -- a fake downstream MLLP server ------------------------------------------------------------------------
def downstream_ack(payload: bytes, code: str, *, control: str | None = None, text: str = "") -> bytes:
    """An ACK as a downstream system (a lab) writes it, independent of the engine's ACK builder."""
    ctrl = msh10(payload) if control is None else control
    err = f"ERR|||207^Application internal error^HL70357|E||||{text}\r" if text else ""
    return (
        f"MSH|^~\\&|LAB|LAB_FAC|HIE|CITY_HIE|20261122083001||ACK^A01^ACK|L-{ctrl}|P|2.5\r"
        f"MSA|{code}|{ctrl}\r{err}"
    ).encode()


Answer = Callable[[bytes, int], bytes | None]  # (payload, 0-based index) -> answer, None = stay silent


class Downstream:
    """A small MLLP server: records what it gets and answers with ``answer`` (None: never answers)."""

    def __init__(self, answer: Answer, port: int = 0) -> None:
        self.answer = answer
        self.port = port
        self.received: list[bytes] = []
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> Downstream:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, reuse_address=True)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(writer)
        try:
            while True:
                data = await reader.readuntil(END)
                payload = data[data.index(SB) + 1 : -2]
                index = len(self.received)
                self.received.append(payload)
                answer = self.answer(payload, index)
                if answer is not None:
                    writer.write(frame(answer))
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def stop(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()
        await asyncio.sleep(0)  # let the handlers see their closed connections
        self._server = None

    async def __aenter__(self) -> Downstream:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def port_refusing() -> int:
    """A port with nothing listening (connection refused), found by binding then releasing it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
