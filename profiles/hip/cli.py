"""``hie hip``: call the national ``HIPMessageServer`` interface as a hospital's platform does.

    hie hip upload discharge.xml                      # DocumentRegister (S0014) of a CDA document
    hie hip upload out/*.xml --action DocumentRegister --sender HOSP-A-EMR
    hie hip call S0001 patient-register.xml          # any V3 message under any action

The endpoint is the configuration's ``hip://`` channel (``--url`` for another). Each answer is
printed as the acknowledgement says it (AA or AE and its details); the exit status is 1 when any
answer is not AA, 2 when the service cannot be reached or a file cannot be read.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
import httpx
from lxml import etree

from engine.cli.common import load_or_exit
from profiles.hip.messages import SENDER, call_envelope, document_register
from profiles.hip.v3 import V3

__all__ = ["hip"]

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True)


def _endpoint(config: Path | None, url: str | None) -> str:
    if url:
        return url
    app = load_or_exit(config)
    for channel in app.channels:
        if channel.source.url.startswith("hip://"):
            scheme = "https" if getattr(channel.source, "tls", None) else "http"
            return f"{scheme}://{channel.source.url.removeprefix('hip://')}"
    raise click.ClickException("no channel of the configuration has a hip:// source (give --url)")


def _post(url: str, action: str, message: str) -> tuple[str, list[str]]:
    try:
        response = httpx.post(
            url,
            content=call_envelope(action, message),
            headers={"Content-Type": "application/soap+xml; charset=utf-8"},
            timeout=120,
        )
    except httpx.HTTPError as exc:
        click.echo(f"{url}: cannot be reached: {exc}", err=True)
        sys.exit(2)
    root = etree.fromstring(response.content, _PARSER)
    result = root.find(f".//{{{V3}}}HIPMessageServerResult")
    if result is None:
        reason = root.findtext(".//{http://www.w3.org/2003/05/soap-envelope}Text") or response.text[:300]
        return f"fault (HTTP {response.status_code})", [reason]
    ack = etree.fromstring((result.text or "").encode("utf-8"), _PARSER)
    code = ack.find(f"{{{V3}}}acknowledgement")
    details = [t.text or "" for t in ack.iter(f"{{{V3}}}text")]
    return (code.get("typeCode", "?") if code is not None else "?"), details


def _read(file: Path) -> bytes:
    try:
        return file.read_bytes()
    except OSError as exc:
        click.echo(f"{file}: cannot be read: {exc.strerror or exc}", err=True)
        sys.exit(2)


@click.group()
def hip() -> None:
    """Call the HIPMessageServer interface (uploads, any V3 message)."""


@hip.command("upload")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--action", default="S0014", show_default=True, help="the action naming DocumentRegister")
@click.option("--sender", default=SENDER, show_default=True, help="the sending system's id")
@click.option("--url", help="the service's address (default: the configuration's hip:// channel)")
@click.option("--config", "-c", "config", type=click.Path(path_type=Path), default=None)
def upload(files: tuple[Path, ...], action: str, sender: str, url: str | None, config: Path | None) -> None:
    """Upload CDA FILES, each wrapped in RCMR_IN000002UV02."""
    endpoint = _endpoint(config, url)
    failed = 0
    for file in files:
        document = _read(file)
        code = title = ""
        root: etree._Element | None = None
        try:
            root = etree.fromstring(document, _PARSER)
            kind = root.find(f"{{{V3}}}code")
            code = (kind.get("code") or "") if kind is not None else ""
            title = (root.findtext(f"{{{V3}}}title") or "").strip()
        except etree.XMLSyntaxError:
            pass  # sent as it is: the platform says what is wrong with it
        message = document_register(document, code=code, title=title, sender=sender, header=root)
        answer, details = _post(endpoint, action, message)
        failed += answer != "AA"
        click.echo(f"{file}: {answer}")
        for detail in details:
            click.echo(f"  {detail}")
    if failed:
        sys.exit(1)


@hip.command("call")
@click.argument("action")
@click.argument("message_file", type=click.Path(path_type=Path))
@click.option("--url", help="the service's address (default: the configuration's hip:// channel)")
@click.option("--config", "-c", "config", type=click.Path(path_type=Path), default=None)
def call(action: str, message_file: Path, url: str | None, config: Path | None) -> None:
    """Send MESSAGE_FILE (an HL7 V3 message) under ACTION."""
    answer, details = _post(_endpoint(config, url), action, _read(message_file).decode("utf-8", "replace"))
    click.echo(answer)
    for detail in details:
        click.echo(f"  {detail}")
    if answer != "AA":
        sys.exit(1)
