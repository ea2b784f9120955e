"""Retention: message content pruned by age, metadata deleted later, every stage archived first.

The database that grows without bound is one of Mirth Connect users' top complaints (ARCHITECTURE.md,
"Lessons"); this job is the answer. Per channel (``retention`` in config.yaml, which a channel's own
``retention:`` overrides), once a day (``retention.prune_at``) in the first worker, or now with
``hie prune``:

* a message received more than ``content_days`` ago whose content is still stored is first written
  with every stage (the message row with its raw bytes, its identifiers, each delivery with the bytes
  sent and the answer, each attempt) as one JSON line to
  ``<data_dir>/archive/<channel>/<YYYY-MM-DD>.jsonl.gz`` (the day of the run). Only when that file is
  on disk (written under a temporary name, fsynced, renamed, its folder fsynced) is the store changed:
  ``messages.raw`` and ``content``, ``deliveries.sent`` and ``response``, ``delivery_attempts.response``
  become NULL, and the message leaves the free-text index (``engine.store.textindex``). A NULL
  ``raw`` is what "pruned by retention" means to ``hie messages show`` and ``hie messages
  reprocess``; the metadata (header fields, identifiers, statuses, errors) stays.
* a message received more than ``metadata_days`` ago is deleted with its deliveries, attempts and
  identifiers, once archived (pruned, in this run or an earlier one).
* a message one of whose deliveries is still queued or pending is never touched, however old: its
  destination queue reads the stored bytes to send them.
* ``audit_events`` are never deleted here. The ATNA trail is kept as long as the auditors require,
  which is not this job's call; a deleted message's Import and Export records still name it and its
  patients, and the archive holds the rest.

The store is changed in transactions of ``BATCH`` messages, each run on the store's writer thread
(``Batch.then``): a large backlog holds no long transaction, and SQLite keeps its single writer.
Every run writes one audit record (DICOM 110110 "Patient Record", action D: stored patient data
deleted; DICOM PS3.15 A.5.3, PS3.16 CID 400) summarising per channel how many messages were pruned and
deleted and the archive file, not each patient: the archive and the messages' own records name them.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import gzip
import json
import logging
import os
import re
import shutil
import socket
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Connection, Engine, delete, exists, func, select, text, update

from engine import audit
from engine.config import AppConfig
from engine.connectors.file import make_directories, sync_directory
from engine.plugins import Job
from engine.services import Services
from engine.store import textindex
from engine.store.db import utcnow
from engine.store.schema import attempts, audit_events, deliveries, identifiers, messages
from engine.store.writer import Batch

__all__ = [
    "PRUNE",
    "ChannelPruned",
    "Interrupted",
    "Pruned",
    "archive_path",
    "plan",
    "policy",
    "prune",
    "read_archive",
]

log = logging.getLogger(__name__)

BATCH = 1000  # messages changed per transaction
ARCHIVE_CHUNK = 200  # messages read at once to be archived (their bytes are held in memory)
WAITING = ("queued", "pending")  # delivery states that still need the message's bytes
_BYTES = ("raw", "sent", "response")  # columns archived as base64 text
_LOCK_KEY = 0x6869655F70726E  # "hie_prn": PostgreSQL advisory lock, one prune at a time per database


class Interrupted(RuntimeError):
    """The engine is stopping: the run ends between two transactions (the next run goes on)."""


@dataclass
class ChannelPruned:
    """What one run did (or, dry, would do) to one channel's messages."""

    channel: str
    content_days: int
    metadata_days: int
    pruned: int = 0  # messages archived and their content removed
    deleted: int = 0  # messages deleted with their deliveries, attempts and identifiers
    held: int = 0  # old enough, but a delivery is still queued or pending: left alone
    archive: Path | None = None  # the file this run archived to


@dataclass
class Pruned:
    at: datetime
    dry_run: bool = False
    channels: list[ChannelPruned] = field(default_factory=list)
    locked_out: bool = False  # another prune (process or machine) was running: nothing done

    @property
    def pruned(self) -> int:
        return sum(c.pruned for c in self.channels)

    @property
    def deleted(self) -> int:
        return sum(c.deleted for c in self.channels)


def policy(app: AppConfig, channel_id: str) -> tuple[int, int]:
    """(content_days, metadata_days) of a channel: its own ``retention``, else config.yaml's (also for
    messages of a channel no longer configured)."""
    base = app.retention
    own = next((c.retention for c in app.channels if c.id == channel_id), None)
    if own is None:
        return base.content_days, base.metadata_days
    return own.content_days or base.content_days, own.metadata_days or base.metadata_days


def archive_path(app: AppConfig, channel_id: str, day: date) -> Path:
    # channel ids are kebab-case in configuration; an odd one from an old store must not leave the folder
    folder = re.sub(r"[^A-Za-z0-9_-]", "_", channel_id) or "_"
    return app.data_dir / "archive" / folder / f"{day.isoformat()}.jsonl.gz"


def _zone(app: AppConfig) -> tzinfo | None:
    return ZoneInfo(app.retention.timezone) if app.retention.timezone else None


def _local_day(app: AppConfig, now: datetime) -> date:
    zone = _zone(app)
    return (now.astimezone(zone) if zone is not None else now.astimezone()).date()


# -- choosing the messages --------------------------------------------------------------------------


def _waiting() -> ColumnElement[bool]:
    """The message has a delivery its queue has yet to send (it reads the stored bytes then)."""
    d = deliveries
    return exists().where(d.c.message_id == messages.c.id, d.c.status.in_(WAITING))


def _old(channel_id: str, days: int, now: datetime) -> list[ColumnElement[bool]]:
    m = messages
    return [m.c.channel_id == channel_id, m.c.received_at < now - timedelta(days=days)]


def _ids(db: Engine, conds: Sequence[ColumnElement[bool]]) -> array[int]:
    """Ids in id (arrival) order, 8 bytes each: a first run over years of backlog stays small."""
    out = array("q")
    with db.connect() as conn:
        for chunk in conn.execute(select(messages.c.id).where(*conds).order_by(messages.c.id)).partitions(
            10_000
        ):
            out.extend(int(r[0]) for r in chunk)
    return out


def _count(db: Engine, conds: Sequence[ColumnElement[bool]]) -> int:
    with db.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(messages).where(*conds)).scalar_one())


def _store_channels(db: Engine) -> list[str]:
    with db.connect() as conn:
        return sorted(str(c) for c in conn.execute(select(messages.c.channel_id).distinct()).scalars())


def plan(db: Engine, app: AppConfig, now: datetime) -> Pruned:
    """What ``prune`` would do at ``now``, counted only (``hie prune --dry-run``): nothing is written."""
    out = Pruned(at=now, dry_run=True)
    for channel_id in _store_channels(db):
        content_days, metadata_days = policy(app, channel_id)
        content_old = _old(channel_id, content_days, now)
        result = ChannelPruned(channel_id, content_days, metadata_days)
        result.pruned = _count(db, [*content_old, messages.c.raw.is_not(None), ~_waiting()])
        result.deleted = _count(db, [*_old(channel_id, metadata_days, now), ~_waiting()])
        result.held = _count(db, [*content_old, _waiting()])
        out.channels.append(result)
    return out


# -- the archive ------------------------------------------------------------------------------------


def _chunks(ids: Sequence[int], size: int) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


def _records(db: Engine, ids: list[int]) -> list[dict[str, Any]]:
    """Every stage of each message, as ``hie messages show --json`` groups them."""
    with db.connect() as conn:
        found: dict[int, dict[str, Any]] = {
            int(r.id): {"message": dict(r._mapping), "identifiers": [], "deliveries": []}
            for r in conn.execute(select(messages).where(messages.c.id.in_(ids)).order_by(messages.c.id))
        }
        for r in conn.execute(select(identifiers).where(identifiers.c.message_id.in_(ids))):
            row = dict(r._mapping)
            found[row.pop("message_id")]["identifiers"].append(row)
        by_id: dict[int, dict[str, Any]] = {}
        query = select(deliveries).where(deliveries.c.message_id.in_(ids)).order_by(deliveries.c.id)
        for r in conn.execute(query):
            row = {**r._mapping, "attempt_log": []}
            by_id[row["id"]] = row
            found[row["message_id"]]["deliveries"].append(row)
        for chunk in _chunks(list(by_id), 500):
            query = (
                select(attempts)
                .where(attempts.c.delivery_id.in_(chunk))
                .order_by(attempts.c.delivery_id, attempts.c.attempt)
            )
            for r in conn.execute(query):
                by_id[r.delivery_id]["attempt_log"].append(dict(r._mapping))
    return [found[i] for i in ids if i in found]


def _json_value(value: object) -> object:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot archive a {type(value).__name__}")


def _archive(services: Services, ids: Sequence[int], path: Path) -> None:
    """Write every stage of ``ids`` to ``path`` durably before the caller changes the store.

    An earlier run of the same day wrote ``path`` already: its bytes are copied first and this run's
    lines follow as another gzip member (a gzip file may hold several; readers see one stream), so a
    crash at any point leaves the old file whole and the store unchanged.
    """
    make_directories(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as out:
            if path.exists():
                with open(path, "rb") as earlier:
                    shutil.copyfileobj(earlier, out)
            with gzip.GzipFile(filename=path.name, mode="wb", fileobj=out) as gz:
                for chunk in _chunks(ids, ARCHIVE_CHUNK):
                    _check_running(services)
                    for record in _records(services.db, chunk):
                        gz.write(json.dumps(record, default=_json_value, ensure_ascii=False).encode())
                        gz.write(b"\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    sync_directory(path.parent)


def read_archive(path: Path) -> Iterator[dict[str, Any]]:
    """The records of an archive file, bytes decoded again (``raw``, ``sent``, ``response``); times
    stay ISO 8601 text (UTC)."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            record: dict[str, Any] = json.loads(line)
            _decode(record["message"])
            for d in record["deliveries"]:
                _decode(d)
                for a in d["attempt_log"]:
                    _decode(a)
            yield record


def _decode(row: dict[str, Any]) -> None:
    for key in _BYTES:
        if isinstance(row.get(key), str):
            row[key] = base64.b64decode(row[key])


# -- changing the store -----------------------------------------------------------------------------


def _check_running(services: Services) -> None:
    if not services.writer.running:
        raise Interrupted("the store's writer has stopped (the engine is stopping)")


def _on_writer(services: Services, work: Callable[[Connection], int]) -> int:
    """``work(conn)`` in a transaction of the store's writer thread; its result once committed.

    The writer may run it twice (a group it shared failed and is committed again batch by batch):
    the result kept is that of the run that committed.
    """
    _check_running(services)
    box = [0]

    def apply(conn: Connection) -> None:
        box[0] = work(conn)

    batch = Batch()
    batch.then(apply)
    services.writer.write_sync(batch)
    return box[0]


def _of_messages(ids: Iterable[int]) -> Any:
    return select(deliveries.c.id).where(deliveries.c.message_id.in_(list(ids)))


def _strip(ids: list[int]) -> Callable[[Connection], int]:
    """Remove the content of those of ``ids`` still holding it and waiting for no delivery."""

    def work(conn: Connection) -> int:
        m = messages
        query = select(m.c.id).where(m.c.id.in_(ids), m.c.raw.is_not(None), ~_waiting())
        chosen = [int(i) for i in conn.execute(query).scalars()]
        if chosen:
            conn.execute(update(m).where(m.c.id.in_(chosen)).values(raw=None, content=None))
            conn.execute(
                update(deliveries).where(deliveries.c.message_id.in_(chosen)).values(sent=None, response=None)
            )
            conn.execute(
                update(attempts).where(attempts.c.delivery_id.in_(_of_messages(chosen))).values(response=None)
            )
            textindex.forget(conn, chosen)  # pruned content is no longer searchable
        return len(chosen)

    return work


def _remove(ids: list[int]) -> Callable[[Connection], int]:
    """Delete those of ``ids`` already pruned (so archived) and waiting for no delivery."""

    def work(conn: Connection) -> int:
        m = messages
        query = select(m.c.id).where(m.c.id.in_(ids), m.c.raw.is_(None), ~_waiting())
        chosen = [int(i) for i in conn.execute(query).scalars()]
        if chosen:
            conn.execute(delete(attempts).where(attempts.c.delivery_id.in_(_of_messages(chosen))))
            conn.execute(delete(deliveries).where(deliveries.c.message_id.in_(chosen)))
            conn.execute(delete(identifiers).where(identifiers.c.message_id.in_(chosen)))
            textindex.forget(conn, chosen)
            conn.execute(delete(m).where(m.c.id.in_(chosen)))
        return len(chosen)

    return work


def _prune_channel(services: Services, app: AppConfig, channel_id: str, now: datetime) -> ChannelPruned:
    db = services.db
    content_days, metadata_days = policy(app, channel_id)
    result = ChannelPruned(channel_id, content_days, metadata_days)
    content_old = _old(channel_id, content_days, now)
    result.held = _count(db, [*content_old, _waiting()])
    # metadata_days >= content_days (hie check): whatever is to be deleted and still holds its
    # content is among these, so it is archived before it goes
    ids = _ids(db, [*content_old, messages.c.raw.is_not(None), ~_waiting()])
    if ids:
        result.archive = archive_path(app, channel_id, _local_day(app, now))
        _archive(services, ids, result.archive)
        for chunk in _chunks(ids, BATCH):
            result.pruned += _on_writer(services, _strip(chunk))
    doomed = _ids(db, [*_old(channel_id, metadata_days, now), messages.c.raw.is_(None), ~_waiting()])
    for chunk in _chunks(doomed, BATCH):
        result.deleted += _on_writer(services, _remove(chunk))
    if result.pruned or result.deleted or result.held:
        log.info(
            "retention: channel %s: %d message(s) archived and pruned%s, %d deleted, %d held (queued)",
            channel_id,
            result.pruned,
            f" to {result.archive}" if result.archive else "",
            result.deleted,
            result.held,
        )
    return result


@contextlib.contextmanager
def _alone(app: AppConfig, db: Engine) -> Iterator[bool]:
    """True while this is the only prune: on this machine (a lock file beside the archives: the
    engine's nightly run and ``hie prune`` write the same day's files) and, on PostgreSQL, of every
    machine sharing the database (an advisory lock)."""
    folder = app.data_dir / "archive"
    make_directories(folder)
    with open(folder / ".prune.lock", "a+b") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        if db.dialect.name != "postgresql":
            yield True
            return
        with db.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _LOCK_KEY}).scalar_one())
            try:
                yield got
            finally:
                if got:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK_KEY})


def prune(services: Services, app: AppConfig, now: datetime, *, user: str | None = None) -> Pruned:
    """Archive and prune, then delete, every channel's old messages as of ``now``; one audit record.

    ``user``: the person who asked (``hie prune``); None for the engine's nightly run.
    """
    out = Pruned(at=now)
    with _alone(app, services.db) as alone:
        if not alone:
            log.warning("retention: another prune is running; this one does nothing")
            out.locked_out = True
            return out
        try:
            for channel_id in _store_channels(services.db):
                out.channels.append(_prune_channel(services, app, channel_id, now))
        except Exception as exc:
            _audit(services, out, user, f"failed: {type(exc).__name__}")
            raise
        _audit(services, out, user, None)
    return out


def _audit(services: Services, result: Pruned, user: str | None, failure: str | None) -> None:
    """DICOM 110110 "Patient Record" with action D: the run deleted stored patient data (content,
    and whole messages). Not 110106 Export: the archive stays in the engine's custody on its disk;
    not 110100 Application Activity, which is an application's start or stop."""
    application = f"hie-retention@{socket.gethostname()}"
    participants = [audit.participant(application, requestor=user is None, role="110150")]
    if user is not None:
        participants.insert(0, audit.participant(user, requestor=True))
    objects = [
        {
            # type 2 system object, role 3 report: the channel's messages, counted
            "type": 2,
            "role": 3,
            "id_type": "channel",
            "id": c.channel,
            "detail": {
                "content_days": str(c.content_days),
                "metadata_days": str(c.metadata_days),
                "pruned": str(c.pruned),
                "deleted": str(c.deleted),
                "archive": str(c.archive or ""),
            },
        }
        for c in result.channels
        if c.pruned or c.deleted
    ]
    summary = f"{result.pruned} message(s) archived and pruned, {result.deleted} deleted"
    event = audit.AuditEvent(
        event_id=audit.PATIENT_RECORD,
        action="D",
        outcome=audit.Outcome.SERIOUS_FAILURE if failure else audit.Outcome.SUCCESS,
        event_time=result.at,
        event_type="retention^prune",
        outcome_description=f"{summary}; {failure}" if failure else summary,
        participants=participants,
        objects=objects,
        user_id=user or application,
    )
    if services.writer.running:
        batch = Batch()
        batch.insert(audit_events, event.row(services.ids.next()))
        services.writer.write_sync(batch)
    else:  # interrupted by the engine's stop: the record is still due
        with services.db.begin() as conn:
            conn.execute(audit_events.insert().values(event.row(services.ids.next())))


def _run(services: Services, app: AppConfig) -> Pruned:
    return prune(services, app, utcnow())


def _schedule(app: AppConfig) -> tuple[str, dict[str, Any]]:
    hour, minute = (int(p) for p in app.retention.prune_at.split(":"))
    args: dict[str, Any] = {"hour": hour, "minute": minute}
    zone = _zone(app)
    if zone is not None:  # else APScheduler's default: the machine's local time
        args["timezone"] = zone
    return "cron", args


PRUNE = Job("retention-prune", _run, _schedule)
"""The nightly run, scheduled by the runtime in its first worker (engine-level, not a plugin's)."""
