"""Sending the engine's own audit records to an external Audit Record Repository (a small syslog
server in the test), over mutual TLS and over UDP, on SQLite and PostgreSQL: each record is sent
once, as a DICOM AuditMessage in an RFC 5424 message; records received from other systems are not
sent back; a repository that is down gets the records once it is up again."""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from engine.audit import message_read_event
from engine.config import AppConfig
from engine.store.schema import audit_events
from engine.store.writer import Batch
from profiles.atna import rfc5424
from profiles.atna.audit_message import ReceivedAudit, read_audit_message
from profiles.atna.forward import forward_now
from profiles.atna.rfc5425 import Deframer
from profiles.atna.schema import forward_marks
from tests.conftest import free_port, running
from tests.engine.connectors.mllp_peers import until
from tests.engine.connectors.test_mllp_tls import FILES, pki
from tests.profiles.atna.peers import query, received_rows, send_udp, syslog, udp_channel

__all__ = ["pki"]

MakeApp = Callable[..., AppConfig]
pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")


class Repository:
    """What an external Audit Record Repository received, message by message."""

    def __init__(self) -> None:
        self.messages: list[rfc5424.SyslogMessage] = []

    def take(self, data: bytes) -> None:
        self.messages.append(rfc5424.parse(data))

    @property
    def records(self) -> list[ReceivedAudit]:
        return [read_audit_message(m.msg) for m in self.messages]


@asynccontextmanager
async def tls_repository(port: int, pki: Path, repo: Repository) -> AsyncIterator[None]:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(pki / "ca.pem"))
    ctx.load_cert_chain(pki / "srv.pem", pki / "srv.key")
    ctx.verify_mode = ssl.CERT_REQUIRED  # ATNA: the engine must show its certificate

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        deframer = Deframer(1024 * 1024)
        while data := await reader.read(65536):
            for message in deframer.feed(data):
                repo.take(message)
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", port, ssl=ctx)
    try:
        yield
    finally:
        server.close()
        await server.wait_closed()


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, repo: Repository) -> None:
        self.repo = repo

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.repo.take(data)


def _own_record(rt: Any, patient: str) -> int:
    """A record of the engine's own: a person read a stored message naming ``patient``."""
    event = message_read_event(
        user="auditor",
        message_id=1,
        channel_id="adt",
        control_id="MSG1",
        message_type="ADT^A01",
        patients=[(patient, "HOSP_A")],
        event_time=datetime.now(UTC),
    )
    ident = rt.services.ids.next()
    batch = Batch()
    batch.insert(audit_events, event.row(ident))
    rt.services.writer.write_sync(batch)
    return int(ident)


def _mark(rt: Any) -> int | None:
    with rt.services.db.connect() as conn:
        return conn.execute(select(forward_marks.c.last_id)).scalar()


def _config(target: str) -> str:
    return f"atna: {{forward_to: '{target}', tls: cli, settle_seconds: 0, every_seconds: 3600}}\n"


@pytest.fixture
def app_for(make_app: MakeApp, pki: Path, tmp_path: Path, store_url: str) -> Callable[[str, int], AppConfig]:
    for name in FILES:
        shutil.copy(pki / name, tmp_path / name)
    tls = "tls:\n  cli: {cert: cli.pem, key: cli.key, ca: ca.pem}\n"

    def make(target: str, udp_port: int) -> AppConfig:
        return make_app({"arr": udp_channel(udp_port)}, store_url=store_url, extra=tls + _config(target))

    return make


async def test_own_records_are_sent_once_over_tls_and_received_ones_not_at_all(
    app_for: Callable[[str, int], AppConfig], pki: Path
) -> None:
    port, udp = free_port(), free_port()
    repo = Repository()
    app = app_for(f"syslog-tls://127.0.0.1:{port}", udp)
    async with running(app) as rt, tls_repository(port, pki, repo):
        await send_udp(udp, syslog(query("B1")))  # another system's record, kept here
        await until(lambda: received_rows(rt))
        first = [await asyncio.to_thread(_own_record, rt, p) for p in ("A100", "A101")]
        assert await asyncio.to_thread(forward_now, rt.services, app) == 2
        await until(lambda: len(repo.messages) == 2)
        assert await asyncio.to_thread(forward_now, rt.services, app) == 0  # nothing twice
        assert _mark(rt) == first[-1]
    header = repo.messages[0]
    assert (header.facility, header.severity, header.msgid, header.app_name) == (10, 5, "IHE+RFC-3881", "HIE")
    assert [r.event_id for r in repo.records] == ["110110^Patient Record^DCM"] * 2
    assert [r.patient_ids for r in repo.records] == [["A100^^^HOSP_A"], ["A101^^^HOSP_A"]]
    assert {r.source_id for r in repo.records} == {socket.gethostname()}
    assert repo.records[0].user_id == "auditor"


async def test_a_repository_that_is_down_gets_the_records_when_it_is_up(
    app_for: Callable[[str, int], AppConfig], pki: Path
) -> None:
    port = free_port()
    repo = Repository()
    app = app_for(f"syslog-tls://127.0.0.1:{port}", free_port())
    async with running(app) as rt:
        ident = await asyncio.to_thread(_own_record, rt, "A200")
        with pytest.raises(OSError):
            await asyncio.to_thread(forward_now, rt.services, app)
        assert _mark(rt) is None  # nothing was sent: the mark did not move
        async with tls_repository(port, pki, repo):
            assert await asyncio.to_thread(forward_now, rt.services, app) == 1
            await until(lambda: repo.messages)
        assert _mark(rt) == ident
    assert [r.patient_ids for r in repo.records] == [["A200^^^HOSP_A"]]


async def test_own_records_are_sent_over_udp(app_for: Callable[[str, int], AppConfig]) -> None:
    port = free_port()
    repo = Repository()
    app = app_for(f"syslog-udp://127.0.0.1:{port}", free_port())
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _Datagrams(repo), local_addr=("127.0.0.1", port)
    )
    try:
        async with running(app) as rt:
            for p in ("U1", "U2", "U3"):
                await asyncio.to_thread(_own_record, rt, p)
            assert await asyncio.to_thread(forward_now, rt.services, app) == 3
            await until(lambda: len(repo.messages) == 3)
            assert await asyncio.to_thread(forward_now, rt.services, app) == 0
    finally:
        transport.close()
    assert [r.patient_ids for r in repo.records] == [["U1^^^HOSP_A"], ["U2^^^HOSP_A"], ["U3^^^HOSP_A"]]
