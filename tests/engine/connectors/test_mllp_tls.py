"""MLLP over TLS and mutual TLS, with a throwaway CA made by the openssl CLI for this module.

A sender with a certificate from our CA gets AA; one without a certificate, or speaking plain TCP to
the TLS port, gets no answer and nothing is stored; the listener keeps serving. An MLLP destination
with TLS delivers to a mutual-TLS source.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from engine.config import AppConfig
from engine.connectors import memory
from engine.store.schema import deliveries, messages
from tests.conftest import free_port, hl7_message, running
from tests.engine.connectors.mllp_peers import Peer, ack_of, channel, frame, rows, until

MakeApp = Callable[..., AppConfig]
FILES = ("ca.pem", "srv.pem", "srv.key", "cli.pem", "cli.key")

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _leaf(name: str, cn: str, usage: str, san: str, cwd: Path) -> None:
    ext = cwd / f"{name}.ext"
    ext.write_text(
        f"basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
        f"extendedKeyUsage={usage}\nsubjectAltName={san}\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid,issuer\n"
    )
    _openssl(
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        f"{name}.key",
        "-out",
        f"{name}.csr",
        "-subj",
        f"/CN={cn}",
        cwd=cwd,
    )
    _openssl(
        "x509",
        "-req",
        "-in",
        f"{name}.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-out",
        f"{name}.pem",
        "-extfile",
        ext.name,
        cwd=cwd,
    )


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate (CN his-client)."""
    d = tmp_path_factory.mktemp("pki")
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=HIE Test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
        cwd=d,
    )
    _leaf("srv", "localhost", "serverAuth", "IP:127.0.0.1,DNS:localhost", d)
    _leaf("cli", "his-client", "clientAuth", "DNS:his-client", d)
    return d


@pytest.fixture
def tls_app(make_app: MakeApp, pki: Path, tmp_path: Path) -> Callable[..., AppConfig]:
    """make_app with the certificates copied next to config.yaml and named tls: entries (relative paths)."""
    for name in FILES:
        shutil.copy(pki / name, tmp_path / name)
    tls = (
        "tls:\n"
        "  srv: {cert: srv.pem, key: srv.key, ca: ca.pem, require_client_cert: true}\n"
        "  cli: {cert: cli.pem, key: cli.key, ca: ca.pem}\n"
    )

    def make(channels: dict[str, str]) -> AppConfig:
        return make_app(channels, extra=tls)

    memory.SINKS.clear()
    return make


def client_context(pki: Path, *, with_cert: bool = True) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    if with_cert:
        ctx.load_cert_chain(pki / "cli.pem", pki / "cli.key")
    return ctx


async def test_mutual_tls_client_with_certificate_gets_aa(
    tls_app: Callable[..., AppConfig], pki: Path
) -> None:
    port = free_port()
    async with running(tls_app({"adt": channel(port, source="tls: srv")})) as rt:
        peer = await Peer.open(port, client_context(pki))
        ack = await peer.ask(hl7_message("TLS-1").encode())
        assert ack["MSA"][1:3] == ["AA", "TLS-1"]
        await peer.close()
        (row,) = rows(rt, messages)
        assert row["raw"] == hl7_message("TLS-1").encode()
        assert "cn=his-client" in row["peer"]  # who sent it, from the client certificate


async def test_client_without_certificate_and_plain_tcp_are_refused_and_the_listener_serves_on(
    tls_app: Callable[..., AppConfig], pki: Path
) -> None:
    port = free_port()
    async with running(tls_app({"adt": channel(port, source="tls: srv")})) as rt:
        # TLS 1.3: the client's handshake completes before the server checks for a certificate,
        # so the refusal arrives as an alert or a reset on the first read.
        anonymous = await Peer.open(port, client_context(pki, with_cert=False))
        try:
            await anonymous.send(frame(hl7_message("ANON-1").encode()))
            got = await anonymous.rest()
        except (ssl.SSLError, ConnectionError):
            got = b""
        assert b"MSA" not in got
        await anonymous.close()

        plain = await Peer.open(port)
        try:
            await plain.send(frame(hl7_message("PLAIN-1").encode()))
            got = await plain.rest()
        except ConnectionError:
            got = b""
        assert b"MSA" not in got  # at most a TLS alert, never an ACK in clear text
        await plain.close()

        peer = await Peer.open(port, client_context(pki))
        assert (await peer.ask(hl7_message("TLS-2").encode()))["MSA"][1:3] == ["AA", "TLS-2"]
        await peer.close()
        assert [r["control_id"] for r in rows(rt, messages)] == ["TLS-2"]


async def test_mllp_destination_with_tls_delivers_to_a_mutual_tls_source(
    tls_app: Callable[..., AppConfig], pki: Path
) -> None:
    front, back = free_port(), free_port()
    dest = (
        f"  - {{id: lab, url: 'mllp://127.0.0.1:{back}', tls: cli, "
        "retry: {max_attempts: 3, backoff: 0.05}}"
    )
    payload = hl7_message("TLS-FWD-1").encode()
    app = tls_app(
        {"fwd": channel(front, cid="fwd", dests=dest), "back": channel(back, cid="back", source="tls: srv")}
    )
    async with running(app) as rt:
        peer = await Peer.open(front)
        assert (await peer.ask(payload))["MSA"][1] == "AA"
        await peer.close()
        (d,) = await until(
            lambda: [
                d
                for d in rows(rt, deliveries, deliveries.c.channel_id == "fwd")
                if d["status"] in ("sent", "errored")
            ]
        )
        assert d["status"] == "sent", d["last_error"]
        assert ack_of(d["response"])["MSA"][1:3] == ["AA", "TLS-FWD-1"]
        back_row = next(r for r in rows(rt, messages) if r["channel_id"] == "back")
        assert back_row["raw"] == payload and "cn=his-client" in back_row["peer"]
        await until(lambda: memory.SINKS.get("back-out"))
    assert memory.SINKS["back-out"] == [payload]
