"""The Audit Record Repository over TLS (RFC 5425), mutual TLS as ATNA asks, on SQLite and
PostgreSQL: octet-counted audit messages are kept; a sender without a certificate is not heard;
a frame that cannot be read ends its connection, kept as an errored record, and the listener goes
on serving the next sender."""

from __future__ import annotations

import asyncio
import shutil
import ssl
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.config import AppConfig
from engine.store.schema import audit_events, messages
from profiles.atna.rfc5425 import frame
from tests.conftest import free_port, running
from tests.engine.connectors.mllp_peers import rows, until
from tests.engine.connectors.test_mllp_tls import FILES, client_context, pki
from tests.profiles.atna.peers import query, received_rows, syslog, tls_channel

__all__ = ["pki"]  # the module's fixture: a CA, a server and a client certificate

MakeApp = Callable[..., AppConfig]
TLS = (
    "tls:\n"
    "  srv: {cert: srv.pem, key: srv.key, ca: ca.pem, require_client_cert: true}\n"
    "  cli: {cert: cli.pem, key: cli.key, ca: ca.pem}\n"
)

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")


@pytest.fixture
def tls_app(make_app: MakeApp, pki: Path, tmp_path: Path, store_url: str) -> Callable[..., AppConfig]:
    for name in FILES:
        shutil.copy(pki / name, tmp_path / name)

    def make(channels: dict[str, str]) -> AppConfig:
        return make_app(channels, store_url=store_url, extra=TLS)

    return make


async def _connect(port: int, ctx: ssl.SSLContext) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="localhost")


async def _closed_by_server(reader: asyncio.StreamReader) -> bool:
    try:
        return await asyncio.wait_for(reader.read(), 10) == b""
    except (ConnectionError, ssl.SSLError):
        return True


async def test_audit_messages_over_mutual_tls_are_kept(tls_app: Callable[..., AppConfig], pki: Path) -> None:
    port = free_port()
    async with running(tls_app({"arr-tls": tls_channel(port)})) as rt:
        _, writer = await _connect(port, client_context(pki))
        # three frames in one write, the last one cut in two
        stream = b"".join(frame(syslog(query(p))) for p in ("T1", "T2", "T3"))
        writer.write(stream[:-100])
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(stream[-100:])
        await writer.drain()
        kept = await until(lambda: len(received_rows(rt)) == 3 and received_rows(rt))
        writer.close()
        patients = [
            r["patient_ids"] for r in rows(rt, audit_events, audit_events.c.source_id == "HOSP_B_EMR")
        ]
    assert patients == [f"T{i}^^^&1.2.156.112605.1.1&ISO" for i in (1, 2, 3)]
    assert all(r["peer"].endswith("cn=his-client") for r in kept)  # who sent it, by certificate


async def test_a_sender_without_a_certificate_is_not_heard(
    tls_app: Callable[..., AppConfig], pki: Path
) -> None:
    port = free_port()
    async with running(tls_app({"arr-tls": tls_channel(port)})) as rt:
        with pytest.raises((ssl.SSLError, ConnectionError)):
            reader, writer = await _connect(port, client_context(pki, with_cert=False))
            writer.write(frame(syslog(query("X1"))))
            await writer.drain()
            await asyncio.wait_for(reader.read(), 10)  # TLS 1.3: the refusal comes with the first read
            raise ConnectionError("closed")
        _, writer = await _connect(port, client_context(pki))
        writer.write(frame(syslog(query("X2"))))
        await writer.drain()
        await until(lambda: received_rows(rt))
        writer.close()
        stored = rows(rt, messages)
    assert [m["status"] for m in stored] == ["received"]


@pytest.mark.parametrize(
    ("broken", "reason"),
    [
        (b"<85>1 - emr EMR_B - IHE+RFC-3881 - <AuditMessage/>\n", "MSG-LEN must be a number"),
        (b"9000 <85>1 - emr EMR_B - IHE+RFC-3881 - ", "MSG-LEN 9000 exceeds the limit of 8192 bytes"),
    ],
)
async def test_a_frame_that_cannot_be_read_ends_its_connection_and_is_kept(
    tls_app: Callable[..., AppConfig], pki: Path, broken: bytes, reason: str
) -> None:
    port = free_port()
    channel = tls_channel(port, more=", max_message_bytes: 8192")
    async with running(tls_app({"arr-tls": channel})) as rt:
        reader, writer = await _connect(port, client_context(pki))
        writer.write(frame(syslog(query("F1"))) + broken)
        await writer.drain()
        assert await _closed_by_server(reader)
        writer.close()
        # the next sender is served
        _, writer = await _connect(port, client_context(pki))
        writer.write(frame(syslog(query("F2"))))
        await writer.drain()
        await until(lambda: len(received_rows(rt)) == 2)
        writer.close()
        (errored,) = await until(lambda: rows(rt, messages, messages.c.status == "errored"))
    assert reason in errored["error"] and errored["error"].endswith("; connection closed")
    assert errored["raw"] == broken


async def test_a_frame_cut_off_by_the_sender_is_kept_and_a_bad_message_in_a_good_frame_too(
    tls_app: Callable[..., AppConfig], pki: Path
) -> None:
    port = free_port()
    async with running(tls_app({"arr-tls": tls_channel(port)})) as rt:
        _, writer = await _connect(port, client_context(pki))
        # a frame whose SYSLOG-MSG is not RFC 5424: kept as errored, the connection goes on
        writer.write(frame(b"not syslog") + frame(syslog(query("G1"))) + b"500 <85>1 - emr")
        await writer.drain()
        await until(lambda: received_rows(rt))
        writer.close()
        errored = await until(
            lambda: (
                len(rows(rt, messages, messages.c.status == "errored")) == 2
                and rows(rt, messages, messages.c.status == "errored")
            )
        )
    reasons = sorted(e["error"] for e in errored)
    assert reasons[0].startswith("not an RFC 5424 syslog message: it does not start with <PRI>")
    assert reasons[1].startswith("truncated syslog frame: the connection closed after 11 of the 500 bytes")
