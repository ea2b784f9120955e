"""``hie messages``: list, search, show and reprocess the messages in the store.

``list`` and ``search`` print metadata only (never content), so they need no audit record. ``show``
prints a message's content: before anything is printed it commits an ATNA record (DICOM 110110
"Patient Record", action R) naming the OS user and the message's patients; if that record cannot be
written nothing is shown. ``reprocess`` never touches the original: it runs the received bytes through
the channel's pipeline again as a new message (``reprocessed_from`` = the original) whose queue entries
have no owner, so the running engine's recovery pass (every 10 s), or its next start, delivers them.

Times given on the command line are local time unless they carry an offset; tables show local time,
``--json`` gives ISO 8601 in UTC.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import sys
import threading
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from sqlalchemy import Engine, delete
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from engine import audit
from engine.cli.common import config_option, load_or_exit
from engine.config import AppConfig, ChannelConfig
from engine.hl7v2.charset import codec_for
from engine.hl7v2.peek import segments
from engine.ids import IdGenerator
from engine.message import ContentType, OutcomeStatus
from engine.services import Services
from engine.store.db import migrate, open_engine, register_node, utcnow
from engine.store.queries import SEARCH_STATUSES, Search, get_message, matching_ids, originals, search
from engine.store.schema import audit_events, deliveries, nodes
from engine.store.writer import Batch, BatchWriter

if TYPE_CHECKING:
    from engine.channel import Channel

__all__ = [
    "WHEN",
    "cli_services",
    "format_table",
    "local_time",
    "messages",
    "open_store",
    "parse_when",
    "search_filters",
]

F = TypeVar("F", bound=Callable[..., Any])

STAGES = ("all", "raw", "content", "sent", "response")
ERROR_WIDTH = 48  # characters of the error summary in listings
CHUNK = 200  # messages loaded, prepared and written together when reprocessing


# -- times ----------------------------------------------------------------------------------------------
_RELATIVE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_when(text: str, *, now: datetime | None = None) -> datetime:
    """``2026-11-22`` (local midnight), ``2026-11-22T08:30[:00][+08:00|Z]`` or ``30m``/``2h``/``7d`` ago.

    Returns an aware UTC datetime. A date or time without an offset is local time.
    """
    now = now or datetime.now(UTC)
    m = _RELATIVE.match(text)
    if m:
        return now - timedelta(**{_UNITS[m.group(2).lower()]: int(m.group(1))})
    value = text.strip()
    if value.lower() == "now":
        return now
    if len(value) == 10:
        day = date.fromisoformat(value)  # ValueError on a bad date
        return datetime.combine(day, time()).astimezone().astimezone(UTC)
    parsed = datetime.fromisoformat(value)
    return parsed.astimezone(UTC)  # naive: astimezone() takes it as local time


if TYPE_CHECKING:
    _ParamType = click.ParamType[datetime]
else:  # click < 8.5 has no generic ParamType
    _ParamType = click.ParamType


class _When(_ParamType):
    name = "TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            return parse_when(str(value))
        except ValueError:
            self.fail(f"{value!r}: expected a date (2026-11-22), a date and time (2026-11-22T08:30, "
                      "an offset such as +08:00 is allowed) or a time ago (30m, 2h, 7d)", param, ctx)


WHEN = _When()


def local_time(value: datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S") if value else ""


# -- output helpers -------------------------------------------------------------------------------------
def _width(text: str) -> int:
    """Terminal columns: CJK names (common in facility fields) take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def _pad(text: str, width: int, right: bool) -> str:
    fill = " " * max(0, width - _width(text))
    return fill + text if right else text + fill


_CONTROL = {i: f"\\x{i:02x}" for i in (*range(0x20), 0x7F, *range(0x80, 0xA0)) if i != 0x09}


def printable(text: str) -> str:
    """Control characters from a sender (ESC sequences...) are shown, not sent to the terminal."""
    return text.translate(_CONTROL)


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return printable(text.replace("\r", " ").replace("\n", " ").replace("\t", " "))


def format_table(
    headers: Sequence[str], rows: Iterable[Sequence[Any]], *, right: Iterable[int] = ()
) -> list[str]:
    """Aligned columns separated by two spaces; ``right``: indexes of right-aligned (numeric) columns."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [_width(h) for h in headers]
    for row in cells:
        for i, value in enumerate(row):
            widths[i] = max(widths[i], _width(value))
    align = set(right)
    out = []
    for row in [list(headers), *cells]:
        line = "  ".join(_pad(v, widths[i], i in align) for i, v in enumerate(row))
        out.append(line.rstrip())
    return out


def _truncate(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _decode(data: bytes, charset: str) -> str:
    """Bytes for display: the stored charset, else UTF-8, else the charset with escapes."""
    codec = codec_for(charset) if charset else None
    for candidate in (codec, "utf-8"):
        if candidate:
            try:
                return data.decode(candidate)
            except (UnicodeDecodeError, LookupError):
                continue
    return data.decode(codec or "utf-8", "backslashreplace")


def _lines(text: str, content_type: str) -> list[str]:
    """HL7 v2: one segment per line; anything else: its own lines."""
    hl7 = content_type in (ContentType.HL7V2.value, ContentType.BYTES.value)
    parts = segments(text) if hl7 else text.splitlines()
    return [printable(p) for p in parts]


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(_jsonable(value), ensure_ascii=False, indent=2))


# -- the store ------------------------------------------------------------------------------------------
def _redact(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<store url>"


@contextmanager
def open_store(app: AppConfig) -> Iterator[Engine]:
    """The configured store, migrated to the current schema; a database error becomes a CLI error."""
    try:
        db = open_engine(app.store_url, synchronous=app.store.synchronous, pool_size=app.store.pool_size)
        migrate(db)
    except SQLAlchemyError as exc:
        raise click.ClickException(f"cannot open the store {_redact(app.store_url)}: {exc}") from exc
    try:
        yield db
    finally:
        db.dispose()


@contextmanager
def cli_services(app: AppConfig, db: Engine) -> Iterator[Services]:
    """What the engine's channels use, but the CLI's own: a node of its own, a writer, an id maker.

    The node row is removed again at the end (the CLI owns no queue entries), so ``engine_nodes`` does
    not grow by one row per command.
    """
    node_id = register_node(db)
    writer = BatchWriter(db, batch_max=app.store.batch_max)
    writer.start()
    try:
        yield Services(app=app, db=db, writer=writer, ids=IdGenerator(node_id), node_id=node_id)
    finally:
        writer.stop()
        with db.begin() as conn:
            conn.execute(delete(nodes).where(nodes.c.id == node_id))


def _write_all(writer: BatchWriter, batches: Sequence[Batch]) -> list[BaseException | None]:
    """Submit every batch at once (group commit), wait for all; one result per batch."""
    results: list[BaseException | None] = [None] * len(batches)
    left = [len(batches)]
    lock = threading.Lock()
    finished = threading.Event()
    if not batches:
        return results

    def done_for(i: int) -> Callable[[BaseException | None], None]:
        def done(exc: BaseException | None) -> None:
            results[i] = exc
            with lock:
                left[0] -= 1
                if left[0] == 0:
                    finished.set()
        return done

    for i, batch in enumerate(batches):
        writer.submit(batch, done_for(i))
    finished.wait()
    return results


# -- options --------------------------------------------------------------------------------------------
def search_filters(func: F) -> F:
    """The filters shared by ``list``, ``search`` and ``reprocess --all-matching``."""
    options = [
        click.option("--channel", help="channel id"),
        click.option("--status", type=click.Choice(SEARCH_STATUSES),
                     help="received/filtered/errored: the message; errored also matches a dead-lettered "
                          "delivery; queued/pending/sent: one of its deliveries (--destination's, if given)"),
        click.option("--since", type=WHEN, help="received at or after: 2026-11-22, 2026-11-22T08:30, 2h, 7d"),
        click.option("--until", type=WHEN, help="received before (same forms as --since)"),
        click.option("--control-id", help="MSH-10"),
        click.option("--patient-id", help="a patient identifier (PID-3, PID-2, PID-4, PID-19, MRG-1)"),
        click.option("--type", "message_type", help="ADT^A01 exactly, ADT for every ADT event, or ADT^A0*"),
        click.option("--facility", help="sending facility (MSH-4)"),
        click.option("--destination", help="has a delivery to this destination"),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _search_from(kw: dict[str, Any], *, limit: int | None, before: int | None) -> Search:
    return Search(channel=kw.get("channel"), status=kw.get("status"), since=kw.get("since"),
                  until=kw.get("until"), control_id=kw.get("control_id"), patient_id=kw.get("patient_id"),
                  message_type=kw.get("message_type"), sending_facility=kw.get("facility"),
                  destination=kw.get("destination"), before_id=before, limit=limit)


@click.group()
def messages() -> None:
    """Browse the message store: list, search, show, reprocess."""


# -- list / search --------------------------------------------------------------------------------------
def _summary(row: dict[str, Any]) -> str:
    if row.get("error"):
        return str(row["error"])
    for d in row["deliveries"]:
        if d["status"] == "errored" or (d["status"] == "queued" and d["last_error"]):
            return f"{d['destination']}: {d['last_error'] or d['status']}"
    return ""


def _listing(
    config_path: Path | None, limit: int, before: int | None, as_json: bool, kw: dict[str, Any]
) -> None:
    app = load_or_exit(config_path)
    s = _search_from(kw, limit=limit + 1, before=before)
    with open_store(app) as db:
        rows = search(db, s)
    more = len(rows) > limit
    rows = rows[:limit]
    next_before = rows[-1]["id"] if more else None
    if as_json:
        keep = ("id", "received_at", "channel_id", "message_type", "control_id", "sending_application",
                "sending_facility", "status", "content_type", "error", "reprocessed_from", "deliveries")
        _echo_json({"messages": [{k: r[k] for k in keep} for r in rows], "next_before": next_before})
        return
    if not rows:
        click.echo("no messages match", err=True)
        return
    table = format_table(
        ("ID", "RECEIVED", "CHANNEL", "TYPE", "CONTROL ID", "FACILITY", "STATUS", "DELIVERIES", "ERROR"),
        [(r["id"], local_time(r["received_at"]), r["channel_id"], r["message_type"], r["control_id"],
          r["sending_facility"], r["status"],
          " ".join(f"{d['destination']}:{d['status']}" for d in r["deliveries"]),
          _truncate(_summary(r), ERROR_WIDTH)) for r in rows],
    )
    for line in table:
        click.echo(line)
    if next_before is not None:
        click.echo(f"more: add --before {next_before}", err=True)


def _listing_command(name: str, doc: str) -> click.Command:
    @click.command(name=name, help=doc)
    @search_filters
    @click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True,
                  help="most messages shown")
    @click.option("--before", "before", type=int, metavar="ID", help="page: messages older than this id")
    @click.option("--json", "as_json", is_flag=True, help="machine-readable output")
    @config_option
    def command(config_path: Path | None, limit: int, before: int | None, as_json: bool, **kw: Any) -> None:
        _listing(config_path, limit, before, as_json, kw)

    return command


messages.add_command(_listing_command(
    "list", "Newest messages first, metadata only (never content). Accepts the same filters as search."))
messages.add_command(_listing_command(
    "search", "Messages matching every filter given, newest first, metadata only (never content)."))


# -- show -----------------------------------------------------------------------------------------------
def _audit_read(services: Services, msg: dict[str, Any], user: str) -> None:
    event = audit.message_read_event(
        user=user, message_id=msg["id"], channel_id=msg["channel_id"], control_id=msg["control_id"],
        message_type=msg["message_type"], patients=[(i["value"], i["authority"]) for i in msg["identifiers"]],
        event_time=utcnow(), application="hie-cli",
    )
    batch = Batch()
    batch.insert(audit_events, event.row(services.ids.next()))
    services.writer.write_sync(batch)


def _text_stage(data: bytes | None, msg: dict[str, Any]) -> dict[str, Any] | None:
    if data is None:
        return None
    return {"text": _decode(data, msg["charset"]), "base64": data, "bytes": len(data)}


def _show_json(msg: dict[str, Any], stage: str) -> None:
    raw = _text_stage(msg["raw"], msg)
    dels = []
    for d in msg["deliveries"]:
        sent: Any = _text_stage(d["sent"], msg)
        if sent is None and d["sent_at"] is not None:
            sent = "unchanged"  # the received bytes, as they are in raw
        log = [{**a, "response": _text_stage(a["response"], msg)} for a in d["attempt_log"]]
        dels.append({**{k: v for k, v in d.items() if k not in ("sent", "response", "attempt_log")},
                     "sent": sent, "response": _text_stage(d["response"], msg), "attempt_log": log})
    meta = {k: v for k, v in msg.items() if k not in ("raw", "content", "deliveries", "audit_count")}
    if stage == "raw":
        out: dict[str, Any] = {"id": msg["id"], "raw": raw}
    elif stage == "content":
        out = {"id": msg["id"], "content": msg["content"], "transformed": msg["content"] is not None}
    elif stage in ("sent", "response"):
        out = {"id": msg["id"],
               "deliveries": [{"destination": d["destination"], stage: d[stage]} for d in dels]}
    else:
        out = {**meta, "raw": raw, "content": msg["content"], "deliveries": dels}
    _echo_json(out)


def _pair(application: str, facility: str) -> str:
    return " / ".join(x for x in (application, facility) if x)


def _heading(text: str) -> None:
    click.echo(f"== {text} ==")


def _field_lines(pairs: Iterable[tuple[str, Any]]) -> None:
    for label, value in pairs:
        if value not in (None, ""):
            click.echo(f"  {label:<18}{_cell(value)}")


def _body(data: bytes, msg: dict[str, Any]) -> None:
    for line in _lines(_decode(data, msg["charset"]), msg["content_type"]):
        click.echo(line)


def _show_text(msg: dict[str, Any], stage: str) -> None:
    ctype = msg["content_type"]
    if stage == "all":
        _heading(f"message {msg['id']}")
        _field_lines([
            ("channel", msg["channel_id"]), ("received", local_time(msg["received_at"])),
            ("status", msg["status"]), ("type", msg["message_type"]), ("control id", msg["control_id"]),
            ("sending", _pair(msg["sending_application"], msg["sending_facility"])),
            ("receiving", _pair(msg["receiving_application"], msg["receiving_facility"])),
            ("peer", msg["peer"]), ("content type", f"{ctype}, charset {msg['charset'] or 'none'}"),
            ("reprocessed from", msg["reprocessed_from"]),
            ("reprocessed as", ", ".join(str(i) for i in msg["reprocessed_as"])),
            ("error", msg["error"]), ("error detail", msg["error_detail"]), ("warnings", msg["warnings"]),
        ])
        _heading("identifiers")
        if not msg["identifiers"]:
            click.echo("  (none)")
        for i in msg["identifiers"]:
            extra = ", ".join(x for x in (f"authority {i['authority']}" if i["authority"] else "",
                                          f"type {i['id_type']}" if i["id_type"] else "") if x)
            suffix = f" ({_cell(extra)})" if extra else ""
            click.echo(f"  {_cell(i['field'])}: {_cell(i['value'])}{suffix}")
    if stage in ("all", "raw"):
        raw = msg["raw"]
        if raw is None:
            _heading("raw: pruned by retention")
        else:
            _heading(f"raw: {len(raw)} bytes, shown as {codec_for(msg['charset']) or 'utf-8'}")
            _body(raw, msg)
    if stage in ("all", "content"):
        if msg["content"] is None:
            _heading("content: not transformed (the received message is the content)")
        else:
            _heading("content: transformed")
            for line in _lines(msg["content"], ctype):
                click.echo(line)
    if stage == "all":
        if not msg["deliveries"]:
            _heading("deliveries: none")
        for d in msg["deliveries"]:
            _heading(f"delivery to {d['destination']}: {d['status']}")
            _field_lines([
                ("delivery id", d["id"]), ("attempts", d["attempts"]), ("lane", d["lane"]),
                ("order key", d["order_key"]), ("created", local_time(d["created_at"])),
                ("sent at", local_time(d["sent_at"])), ("next attempt", local_time(d["next_attempt_at"])),
                ("last error", d["last_error"]),
            ])
            for a in d["attempt_log"]:
                error = f": {_cell(a['error'])}" if a["error"] else ""
                click.echo(f"  #{a['attempt']} {local_time(a['at'])} {a['outcome']} "
                           f"{a['duration_ms']:.1f} ms{error}")
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
    elif d["sent_at"] is not None:
        click.echo("-- sent: the received bytes, unchanged (see raw)")
    else:
        click.echo("-- sent: nothing yet")


def _response(d: dict[str, Any], msg: dict[str, Any]) -> None:
    if d["response"] is None:
        click.echo("-- response: none")
        return
    click.echo(f"-- response: {len(d['response'])} bytes")
    _body(d["response"], msg)


@messages.command()
@click.argument("ident", metavar="ID", type=int)
@click.option("--stage", type=click.Choice(STAGES), default="all", show_default=True,
              help="what to print; raw writes the exact received bytes")
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
                    f"the audit record could not be written, so nothing is shown: {exc}") from exc
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


# -- reprocess ------------------------------------------------------------------------------------------
def _reprocess_event(
    orig: dict[str, Any], new_id: int, outcome: str, user: str, now: datetime
) -> audit.AuditEvent:
    """The user's act, on the original message's patients.

    DICOM 110106 "Export" with action E: reprocessing sends a stored patient's data out of the engine
    again, on a person's command, which is what Export covers (data leaving the system's custody). PS3.15
    gives Export the action R; we use E (execute) so that this record of a person's command, which by
    itself sends nothing, is told apart from the engine's own Export/R record of each actual send (written
    by the destination queue with the engine as requestor). Neither 110110 Patient Record (C/R/U/D on a
    record, the new copy's creation is already audited by the channel as 110107 Import) nor 110100
    Application Activity (start/stop of an application) fits a person re-sending patient data.
    """
    read = audit.message_read_event(
        user=user, message_id=orig["id"], channel_id=orig["channel_id"], control_id=orig["control_id"],
        message_type=orig["message_type"], event_time=now, application="hie-cli",
        patients=[(i["value"], i["authority"]) for i in orig["identifiers"]],
        description=f"reprocessed as message {new_id}: {outcome}",
    )
    objects = [*read.objects, {"type": 2, "role": 3, "id_type": "message_id", "id": str(new_id),
                               "detail": {"message_id": str(new_id), "reprocessed_from": str(orig["id"])}}]
    return dataclasses.replace(read, event_id=audit.EXPORT, action="E",
                               event_type=f"reprocess^{orig['channel_id']}", objects=objects)


@dataclasses.dataclass
class _Result:
    original: int
    new_id: int | None = None
    status: str = ""  # the new message's stored status (received, filtered, errored) or "failed"
    queued: list[str] = dataclasses.field(default_factory=list)
    not_routed: list[str] = dataclasses.field(default_factory=list)
    error: str | None = None


def _prepare(channel: Channel, orig: dict[str, Any], only: set[str] | None, user: str,
             services: Services) -> tuple[Batch, _Result]:
    msg, outcome, batch, _ = channel.prepare(
        orig["raw"], f"reprocess:{user}", ContentType(orig["content_type"]),
        reprocessed_from=orig["id"], only=only,
    )
    stored = {OutcomeStatus.ACCEPTED: "received",
              OutcomeStatus.FILTERED: "filtered"}.get(outcome.status, "errored")
    result = _Result(orig["id"], msg.id, stored)
    for row in batch.inserts.get(deliveries.name, []):
        # No owner: the running engine's recovery pass takes the entry over (or the next start does).
        row["owner_node"] = None
        if row["status"] == "pending":
            # after_delivery: nobody waits for this answer; the entry is delivered from the queue
            row["status"] = "queued"
        if row["status"] == "queued":
            result.queued.append(row["destination"])
        elif only is not None and row["destination"] in only:
            result.not_routed.append(row["destination"])
    if outcome.error is not None:
        result.error = outcome.error.text
    elif outcome.status is OutcomeStatus.FILTERED:
        result.error = str(msg.variables.get("filtered_by", ""))
    event = _reprocess_event(orig, msg.id, stored, user, msg.received_at)
    batch.insert(audit_events, event.row(services.ids.next()))
    return batch, result


def _check_targets(
    app: AppConfig, found: dict[int, dict[str, Any]], targets: tuple[str, ...]
) -> dict[str, ChannelConfig]:
    """The channels of the messages, each in the configuration and enabled, knowing every --to name."""
    configs = {c.id: c for c in app.channels}
    chosen: dict[str, ChannelConfig] = {}
    problems: list[str] = []
    for cid in sorted({o["channel_id"] for o in found.values()}):
        cfg = configs.get(cid)
        if cfg is None:
            problems.append(f"channel {cid} is not in the configuration ({app.path})")
            continue
        if not cfg.enabled:
            problems.append(f"channel {cid} is disabled: no engine would deliver its messages")
            continue
        known = [d.id for d in cfg.destinations]
        unknown = [t for t in targets if t not in known]
        if unknown:
            problems.append(f"channel {cid} has no destination {', '.join(unknown)}; "
                            f"its destinations: {', '.join(known) or 'none'}")
        chosen[cid] = cfg
    if problems:
        raise click.ClickException("\n".join(problems))
    return chosen


@messages.command()
@click.argument("ids", metavar="ID...", nargs=-1, type=int)
@click.option("--to", "targets", multiple=True, metavar="DEST",
              help="queue only for this destination (repeatable); default: each one the routes choose")
@click.option("--all-matching", is_flag=True, help="reprocess every message matching the filters below")
@search_filters
@click.option("--yes", "-y", is_flag=True, help="do not ask for confirmation")
@config_option
def reprocess(ids: tuple[int, ...], targets: tuple[str, ...], all_matching: bool, yes: bool,
              config_path: Path | None, **kw: Any) -> None:
    """Run stored messages through their channel again, as new messages; the originals stay as they are.

    The new messages (reprocessed_from = the original) are queued without an owner: a running engine
    takes them over within about 10 s, a stopped one when it starts. Give IDs, or --all-matching with
    search filters (a count is shown and confirmation asked unless --yes).
    """
    app = load_or_exit(config_path)
    user = audit.cli_user()
    s = _search_from(kw, limit=None, before=None)
    if all_matching and ids:
        raise click.UsageError("give message IDs or --all-matching with filters, not both")
    if not all_matching and not ids:
        raise click.UsageError("give message IDs, or --all-matching with search filters")
    if not all_matching and not s.is_empty():
        raise click.UsageError("search filters need --all-matching")
    if all_matching and s.is_empty():
        raise click.UsageError("--all-matching needs at least one filter (e.g. --since 30d)")
    with open_store(app) as db:
        wanted = matching_ids(db, s) if all_matching else sorted(set(ids))
        if not wanted:
            click.echo("no messages match")
            return
        found = originals(db, wanted, with_raw=False)
        missing = [i for i in wanted if i not in found]
        if missing:  # only possible with explicit ids
            raise click.ClickException(f"no message with id {', '.join(map(str, missing))}")
        pruned = [i for i in wanted if not found[i]["has_raw"]]
        if pruned and not all_matching:
            raise click.ClickException(
                f"the raw bytes were pruned by retention: {', '.join(map(str, pruned))}")
        channels = _check_targets(app, found, targets)
        todo = [i for i in wanted if found[i]["has_raw"]]
        if all_matching:
            click.echo(f"{len(wanted)} message(s) match" + (f"; {len(pruned)} pruned by retention are skipped"
                                                              if pruned else ""))
            if not todo:
                return
            if not yes:
                click.confirm(f"reprocess {len(todo)} message(s)?", abort=True)
        del found
        results = _run_reprocess(app, db, channels, todo, set(targets) or None, user)
    _report(results)


def _run_reprocess(app: AppConfig, db: Engine, channels: dict[str, ChannelConfig], todo: list[int],
                   only: set[str] | None, user: str) -> list[_Result]:
    from engine.channel import Channel  # pulls in every connector; only reprocess needs it

    results: list[_Result] = []
    with cli_services(app, db) as services:
        built = {cid: Channel(cfg, services) for cid, cfg in channels.items()}
        chunks = [todo[i:i + CHUNK] for i in range(0, len(todo), CHUNK)]
        with click.progressbar(length=len(todo), label="reprocessing", file=sys.stderr,
                               hidden=len(todo) < 50) as bar:
            for chunk in chunks:
                found = originals(db, chunk)
                prepared = [_prepare(built[found[i]["channel_id"]], found[i], only, user, services)
                            for i in chunk if i in found and found[i]["raw"] is not None]
                for (_, result), exc in zip(prepared, _write_all(services.writer, [b for b, _ in prepared]),
                                            strict=True):
                    if exc is not None:
                        result.new_id, result.error, result.status = None, f"not stored: {exc}", "failed"
                    results.append(result)
                bar.update(len(chunk))
    return results


def _report(results: list[_Result]) -> None:
    from engine.runtime import HEARTBEAT_SECONDS  # how often a running engine takes over orphaned entries

    stored = [r for r in results if r.new_id is not None]
    for r in results:
        if r.new_id is None:
            click.echo(f"{r.original}: {r.error}", err=True)
            continue
        if r.queued:
            what = f"queued for {', '.join(r.queued)}"
        elif r.status == "received":
            what = "no destination chosen"
        else:
            what = r.status + (f": {r.error}" if r.error else "")
        click.echo(f"{r.original} -> {r.new_id} {what}")
        if r.not_routed:
            click.echo(f"  not queued for {', '.join(r.not_routed)}: the channel's routes do not send "
                       "it there", err=True)
    queued = sum(1 for r in stored if r.queued)
    click.echo(f"{len(stored)} new message(s), {queued} with queued deliveries: a running engine picks "
               f"them up within ~{HEARTBEAT_SECONDS:g} s, a stopped one when it starts")
    if len(stored) < len(results):
        raise click.ClickException(f"{len(results) - len(stored)} message(s) could not be reprocessed")
