"""``hie send``: send HL7 v2 files to an MLLP endpoint and print each answer."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

import click

from engine.connectors.mllp import END, SB, frame
from engine.errors import MessageError
from engine.hl7v2.ack import parse_ack
from engine.hl7v2.charset import decode_message
from engine.hl7v2.peek import segments

__all__ = ["send", "split_messages"]


def split_messages(data: bytes) -> list[bytes]:
    """A file may hold several messages, each starting with MSH at a line start; LF/CRLF become CR."""
    data = data.replace(b"\r\n", b"\r").replace(b"\n", b"\r")
    out: list[bytes] = []
    for chunk in data.split(b"\rMSH"):
        chunk = chunk.strip(b"\r")
        if not chunk:
            continue
        if not chunk.startswith(b"MSH"):
            chunk = b"MSH" + chunk
        out.append(chunk + b"\r")
    return out


@click.command()
@click.argument("url")
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--timeout", default=30.0, show_default=True, help="seconds to wait for each answer")
@click.option(
    "--tls-ca", type=click.Path(exists=True, path_type=Path), help="CA bundle: use TLS and verify the server"
)
@click.option(
    "--tls-cert", type=click.Path(exists=True, path_type=Path), help="client certificate (mutual TLS)"
)
@click.option("--tls-key", type=click.Path(exists=True, path_type=Path), help="client key (mutual TLS)")
@click.option("--quiet", "-q", is_flag=True, help="print one line per message instead of the whole answer")
def send(
    url: str,
    files: tuple[Path, ...],
    timeout: float,
    tls_ca: Path | None,
    tls_cert: Path | None,
    tls_key: Path | None,
    quiet: bool,
) -> None:
    """Send each message in FILES to URL (mllp://host:port) and print the answer.

    Exits 1 if any answer is not AA (or CA).
    """
    if not url.startswith("mllp://"):
        raise click.BadParameter("only mllp://host:port is supported", param_hint="URL")
    host, _, port = url[len("mllp://") :].rstrip("/").rpartition(":")
    if not port.isdigit():
        raise click.BadParameter(f"{url}: needs a port", param_hint="URL")
    messages = [(f, m) for f in files for m in split_messages(f.read_bytes())]
    failures = 0
    try:
        sock = socket.create_connection((host, int(port)), timeout=timeout)
    except OSError as exc:
        raise click.ClickException(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from None
    if tls_ca is not None:
        ctx = ssl.create_default_context(cafile=str(tls_ca))
        if tls_cert is not None:
            ctx.load_cert_chain(str(tls_cert), str(tls_key) if tls_key else None)
        sock = ctx.wrap_socket(sock, server_hostname=host)
    with (
        sock,
        click.progressbar(
            messages, label="sending", file=None, hidden=not quiet or len(messages) < 20
        ) as bar,
    ):
        for path, message in bar:
            sock.sendall(frame(message))
            answer = _read_answer(sock)
            text, _ = decode_message(answer, "utf-8")
            try:
                ack = parse_ack(text)
                code = ack.code
            except MessageError as exc:
                code, ack = "??", None
                click.echo(f"{path}: unreadable answer: {exc.text}", err=True)
            if code not in ("AA", "CA"):
                failures += 1
            if quiet:
                reason = f" {ack.text}" if ack and ack.text else ""
                click.echo(f"{path}: {code} {ack.control_id if ack else ''}{reason}")
            else:
                click.echo(f"# {path}")
                click.echo("\n".join(segments(text)))
    if failures:
        click.echo(f"{failures} of {len(messages)} message(s) not accepted", err=True)
        raise SystemExit(1)


def _read_answer(sock: socket.socket) -> bytes:
    data = b""
    while END not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise click.ClickException("the connection closed before an answer arrived")
        data += chunk
    start = data.find(SB)
    return data[start + 1 : data.find(END)]
