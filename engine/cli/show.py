"""``hie messages show``: every stage of one message, for a person to read.

``show`` prints a message's content: before anything is printed it commits an ATNA record (DICOM 110110
"Patient Record", action R) naming the OS user and the message's patients; if that record cannot be
written nothing is shown.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click

from engine import audit
from engine.cli.common import config_option, load_or_exit
from engine.cli.output import cell, decode, echo_json, lines, local_time
from engine.cli.store_access import cli_services, open_store
from engine.hl7v2.charset import codec_for
from engine.services import Services
from engine.store.db import utcnow
from engine.store.queries import get_message
from engine.store.schema import audit_events
from engine.store.writer import Batch

__all__ = ["show"]

STAGES = ("all", "raw", "content", "sent", "response")


def _audit_read(services: Services, msg: dict[str, Any], user: str) -> None:
    event = audit.message_read_event(
        user=user,
        message_id=msg["id"],
        channel_id=msg["channel_id"],
        control_id=msg["control_id"],
        message_type=msg["message_type"],
        patients=[(i["value"], i["authority"]) for i in msg["identifiers"]],
        event_time=utcnow(),
        application="hie-cli",
    )
    batch = Batch()
    batch.insert(audit_events, event.row(services.ids.next()))
    services.writer.write_sync(batch)


def _text_stage(data: bytes | None, msg: dict[str, Any]) -> dict[str, Any] | None:
    if data is None:
        return None
    return {"text": decode(data, msg["charset"]), "base64": data, "bytes": len(data)}


def _show_json(msg: dict[str, Any], stage: str) -> None:
    raw = _text_stage(msg["raw"], msg)
    dels = []
    for d in msg["deliveries"]:
        sent: Any = _text_stage(d["sent"], msg)
        if sent is None and d["sent_at"] is not None and msg["raw"] is not None:
            sent = "unchanged"  # the received bytes, as they are in raw
        log = [{**a, "response": _text_stage(a["response"], msg)} for a in d["attempt_log"]]
        dels.append(
            {
                **{k: v for k, v in d.items() if k not in ("sent", "response", "attempt_log")},
                "sent": sent,
                "response": _text_stage(d["response"], msg),
                "attempt_log": log,
            }
        )
    meta = {k: v for k, v in msg.items() if k not in ("raw", "content", "deliveries", "audit_count")}
    if stage == "raw":
        out: dict[str, Any] = {"id": msg["id"], "raw": raw}
    elif stage == "content":
        out = {"id": msg["id"], "content": msg["content"], "transformed": msg["content"] is not None}
    elif stage in ("sent", "response"):
        out = {
            "id": msg["id"],
            "deliveries": [{"destination": d["destination"], stage: d[stage]} for d in dels],
        }
    else:
        # raw NULL: retention archived the message and removed every stage's bytes (engine/retention.py)
        pruned = msg["raw"] is None
        out = {**meta, "pruned": pruned, "raw": raw, "content": msg["content"], "deliveries": dels}
    echo_json(out)


def _pair(application: str, facility: str) -> str:
    return " / ".join(x for x in (application, facility) if x)


def _heading(text: str) -> None:
    click.echo(f"== {text} ==")


def _field_lines(pairs: Iterable[tuple[str, Any]]) -> None:
    for label, value in pairs:
        if value not in (None, ""):
            click.echo(f"  {label:<18}{cell(value)}")


def _body(data: bytes, msg: dict[str, Any]) -> None:
    for line in lines(decode(data, msg["charset"]), msg["content_type"]):
        click.echo(line)


def _show_text(msg: dict[str, Any], stage: str) -> None:
    ctype = msg["content_type"]
    if stage == "all":
        _heading(f"message {msg['id']}")
        _field_lines(
            [
                ("channel", msg["channel_id"]),
                ("received", local_time(msg["received_at"])),
                ("status", msg["status"]),
                ("type", msg["message_type"]),
                ("control id", msg["control_id"]),
                ("sending", _pair(msg["sending_application"], msg["sending_facility"])),
                ("receiving", _pair(msg["receiving_application"], msg["receiving_facility"])),
                ("peer", msg["peer"]),
                ("content type", f"{ctype}, charset {msg['charset'] or 'none'}"),
                ("reprocessed from", msg["reprocessed_from"]),
                ("reprocessed as", ", ".join(str(i) for i in msg["reprocessed_as"])),
                ("error", msg["error"]),
                ("error detail", msg["error_detail"]),
                ("warnings", msg["warnings"]),
            ]
        )
        _heading("identifiers")
        if not msg["identifiers"]:
            click.echo("  (none)")
        for i in msg["identifiers"]:
            extra = ", ".join(
                x
                for x in (
                    f"authority {i['authority']}" if i["authority"] else "",
                    f"type {i['id_type']}" if i["id_type"] else "",
                )
                if x
            )
            suffix = f" ({cell(extra)})" if extra else ""
            click.echo(f"  {cell(i['field'])}: {cell(i['value'])}{suffix}")
    if stage in ("all", "raw"):
        raw = msg["raw"]
        if raw is None:
            _heading("raw: pruned by retention")
        else:
            _heading(f"raw: {len(raw)} bytes, shown as {codec_for(msg['charset']) or 'utf-8'}")
            _body(raw, msg)
    if stage in ("all", "content"):
        if msg["content"] is None and msg["raw"] is None:
            _heading("content: pruned by retention")
        elif msg["content"] is None:
            _heading("content: not transformed (the received message is the content)")
        else:
            _heading("content: transformed")
            for line in lines(msg["content"], ctype):
                click.echo(line)
    if stage == "all":
        if not msg["deliveries"]:
            _heading("deliveries: none")
        for d in msg["deliveries"]:
            _heading(f"delivery to {d['destination']}: {d['status']}")
            _field_lines(
                [
                    ("delivery id", d["id"]),
                    ("attempts", d["attempts"]),
                    ("lane", d["lane"]),
                    ("order key", d["order_key"]),
                    ("created", local_time(d["created_at"])),
                    ("sent at", local_time(d["sent_at"])),
                    ("next attempt", local_time(d["next_attempt_at"])),
                    ("last error", d["last_error"]),
                ]
            )
            for a in d["attempt_log"]:
                error = f": {cell(a['error'])}" if a["error"] else ""
                click.echo(
                    f"  #{a['attempt']} {local_time(a['at'])} {a['outcome']} {a['duration_ms']:.1f} ms{error}"
                )
            _sent(d, msg)
            _response(d, msg)
    if stage in ("sent", "response"):
        for d in msg["deliveries"]:
            _heading(f"delivery to {d['destination']}: {d['status']}")
            (_sent if stage == "sent" else _response)(d, msg)


def _sent(d: dict[str, Any], msg: dict[str, Any]) -> None:
    if d["sent"] is not None:
        click.echo(f"-- sent: {len(d['sent'])} bytes")
        _body(d["sent"], msg)
    elif d["sent_at"] is not None and msg["raw"] is None:
        click.echo("-- sent: pruned by retention")
    elif d["sent_at"] is not None:
        click.echo("-- sent: the received bytes, unchanged (see raw)")
    else:
        click.echo("-- sent: nothing yet")


def _response(d: dict[str, Any], msg: dict[str, Any]) -> None:
    if d["response"] is None:
        pruned = msg["raw"] is None and d["attempts"]
        click.echo("-- response: pruned by retention" if pruned else "-- response: none")
        return
    click.echo(f"-- response: {len(d['response'])} bytes")
    _body(d["response"], msg)


@click.command()
@click.argument("ident", metavar="ID", type=int)
@click.option(
    "--stage",
    type=click.Choice(STAGES),
    default="all",
    show_default=True,
    help="what to print; raw writes the exact received bytes",
)
@click.option("--json", "as_json", is_flag=True, help="machine-readable output (bytes also in base64)")
@config_option
def show(ident: int, stage: str, as_json: bool, config_path: Path | None) -> None:
    """Every stage of message ID: metadata, identifiers, raw, content, deliveries, attempts, sent, response.

    Each use is recorded in the audit trail (ATNA, DICOM 110110 Patient Record, read) under your OS user.
    """
    app = load_or_exit(config_path)
    user = audit.cli_user()
    with open_store(app) as db:
        msg = get_message(db, ident)
        if msg is None:
            raise click.ClickException(f"no message with id {ident}")
        with cli_services(app, db) as services:
            try:
                _audit_read(services, msg, user)
            except Exception as exc:
                raise click.ClickException(
                    f"the audit record could not be written, so nothing is shown: {exc}"
                ) from exc
    if as_json:
        _show_json(msg, stage)
    elif stage == "raw" and msg["raw"] is not None:
        sys.stdout.flush()
        sys.stdout.buffer.write(msg["raw"])
        sys.stdout.buffer.flush()
    elif stage == "raw":
        raise click.ClickException(f"the raw bytes of message {ident} were pruned by retention")
    else:
        _show_text(msg, stage)
