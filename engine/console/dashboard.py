"""What the console's dashboard shows: the configured channels (their source, whether it listens, their
destinations), per channel counts over a window of hours with an hourly series, the current queue
depth per destination, and the messages that errored in the last hour.

Fast on a big store (the target: under 500 ms with 5,000,000 stored messages). Every query is
bounded by the window and answered from an index; counting and bucketing are done by the database,
never by loading rows:

* received per channel and hour: one range count per channel and hour on
  ``ix_messages_channel_received`` (channel_id, received_at), the hours a small ``VALUES`` table
  (index, start, end): from the index alone, nothing sorted, no date function, same on both databases;
* filtered and errored messages: ``ix_messages_status_received`` (status, received_at), reading only
  the rows of those two statuses (for their channel), grouped by their hour (``_HourOf``:
  ``strftime('%s')`` on SQLite, ``extract(epoch)`` on PostgreSQL);
* deliveries (sent, dead-lettered, waiting): ``ix_deliveries_queue`` (channel_id, destination,
  status, lane, id), one index range per configured destination, status and lane. Ids are
  time-ordered (``engine.ids``), so "created since" is "id at least the first id of that
  millisecond", a range on the index's last column, and a dead letter's hour is integer arithmetic
  on its id: no table read;
* the last hour's errors: the errored messages of ``ix_messages_status_received`` and the deliveries
  created in the hour (a range of their primary key), each joined to its message.

Measured on a synthetic store of 5,000,000 messages over 60 days (20 channels, one destination
each, 2-core VM): 24 hours in 60 ms on SQLite and 90 ms on PostgreSQL 15; 168 hours in about 400 ms
on both.

The window is the last ``hours`` whole UTC hours, the current one included, so the series' buckets
add up to the channel counts. Only configured channels and destinations are counted: they are what
the dashboard lists, and naming them keeps every read on an index.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from sqlalchemy import (
    CTE,
    BigInteger,
    ColumnElement,
    Connection,
    Engine,
    Integer,
    Select,
    String,
    column,
    func,
    literal_column,
    select,
    true,
    union_all,
    values,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from engine.connectors.base import Source
from engine.ids import IdGenerator
from engine.store.queries import as_utc
from engine.store.schema import UtcDateTime, deliveries, messages

if TYPE_CHECKING:
    from engine.config import AppConfig
    from engine.telemetry import Telemetry

__all__ = [
    "BUCKET_SECONDS",
    "COUNTS",
    "Window",
    "channel_list",
    "dashboard",
    "listening",
    "public_url",
    "queue_pairs",
    "store_counts",
]

BUCKET_SECONDS = 3600
COUNTS = ("received", "filtered", "queued", "sent", "errored")
RECENT_ERRORS = 20
_ERROR_TEXT = 300  # characters of an error text shown on the dashboard
_LANES = tuple(range(64))  # every lane a destination can have (DestinationConfig.lanes <= 64)
_WAITING = ("queued", "pending")


_Query = Select[*tuple[Any, ...]]  # a SELECT of any columns
_ID_SHIFT = 22  # an id is its millisecond (since engine.ids' epoch) shifted left this much


def _first_id(when: datetime) -> int:
    """The smallest id any node makes at ``when`` or later (ids start with their millisecond)."""
    ms = int(as_utc(when).timestamp() * 1000) - IdGenerator.timestamp_ms(0)
    return max(ms, 0) << _ID_SHIFT


@dataclass(frozen=True)
class Window:
    """``buckets`` whole hours, the last one holding ``now``."""

    start: datetime  # the first bucket's start
    now: datetime
    buckets: int

    @classmethod
    def last(cls, hours: int, now: datetime) -> Window:
        now = as_utc(now)
        current = now.replace(minute=0, second=0, microsecond=0)
        return cls(current - timedelta(hours=hours - 1), now, hours)


# -- the configured channels ----------------------------------------------------------------------
def public_url(url: str) -> tuple[str, str]:
    """(scheme, ``host:port/path``) of a connector URL: no user, password, query or fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    return parts.scheme, host + (f":{port}" if port is not None else "") + parts.path


def listening(telemetry: Telemetry, channel_id: str) -> bool | None:
    """Is the channel's source taking messages now, as ``hie_source_up`` tells it? None when this
    process does not run it (disabled, or another worker's poller) or the source cannot tell.
    Call on the event loop: sources are touched there only."""
    source = telemetry.sources.get(channel_id)
    if source is None or type(source).up is Source.up:
        return None
    return bool(source.up())


def channel_list(app: AppConfig, telemetry: Telemetry) -> list[dict[str, Any]]:
    """Every configured channel, as ``GET /api/v1/channels`` gives it."""
    out = []
    for cfg in app.channels:
        scheme, where = public_url(cfg.source.url)
        dests = []
        for d in cfg.destinations:
            dest_scheme, target = public_url(d.url)
            dests.append({"id": d.id, "scheme": dest_scheme, "target": target})
        out.append(
            {
                "id": cfg.id,
                "description": cfg.description,
                "enabled": cfg.enabled,
                "source": f"{scheme}://{where}",
                "scheme": scheme,
                "listening": listening(telemetry, cfg.id),
                "destinations": dests,
            }
        )
    return out


# -- the store's counts -----------------------------------------------------------------------------
@dataclass
class StoreCounts:
    """What the store says of the window; channels outside the configuration are left out."""

    totals: dict[str, dict[str, int]]  # channel -> COUNTS
    received: dict[str, list[int]]  # channel -> per bucket
    errored: dict[str, list[int]]
    queues: list[dict[str, Any]]
    errors_count: int
    recent: list[dict[str, Any]]


class _HourOf(FunctionElement[int]):
    """Whole hours since the Unix epoch of a stored UTC timestamp (per dialect, see below)."""

    type = BigInteger()
    inherit_cache = True
    name = "hour_of"


@compiles(_HourOf, "sqlite")
def _hour_sqlite(element: _HourOf, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite keeps UTC as text "YYYY-MM-DD HH:MM:SS.ffffff"; strftime('%s') reads it as UTC, exactly
    return f"(CAST(strftime('%s', {compiler.process(element.clauses, **kw)}) AS INTEGER) / {BUCKET_SECONDS})"


@compiles(_HourOf, "postgresql")
def _hour_postgresql(element: _HourOf, compiler: SQLCompiler, **kw: Any) -> str:
    # the epoch of a timestamptz does not depend on the session's TimeZone
    column_sql = compiler.process(element.clauses, **kw)
    return f"CAST(floor(extract(epoch FROM {column_sql}) / {BUCKET_SECONDS}) AS BIGINT)"


def _int(value: int) -> ColumnElement[int]:
    """An integer we computed, written into the SQL itself: a GROUP BY repeats the expression it
    groups by, and PostgreSQL tells two bound parameters apart even when their values are equal."""
    return literal_column(str(int(value)), BigInteger())


def _buckets(window: Window) -> CTE:
    """The window's hours as a table: index, start and end."""
    rows = []
    for i in range(window.buckets):
        start = window.start + timedelta(seconds=i * BUCKET_SECONDS)
        rows.append((i, start, start + timedelta(seconds=BUCKET_SECONDS)))
    columns = (column("i", Integer), column("start", UtcDateTime()), column("end", UtcDateTime()))
    return values(*columns, name="buckets").data(rows).cte("buckets")


def _received(conn: Connection, window: Window, channels: Sequence[str]) -> list[tuple[int, str, int]]:
    """(bucket, channel, messages received): one range count per channel and hour on
    ``ix_messages_channel_received``, from the index alone, nothing sorted or grouped."""
    m, b = messages, _buckets(window)
    wanted = values(column("channel_id", String), name="wanted").data([(c,) for c in channels]).cte("wanted")
    per_hour = (
        select(func.count())
        .where(m.c.channel_id == wanted.c.channel_id, m.c.received_at >= b.c.start, m.c.received_at < b.c.end)
        .scalar_subquery()
    )
    query = select(b.c.i, wanted.c.channel_id, per_hour).select_from(b.join(wanted, true()))
    return [(int(i), str(ch), int(n)) for i, ch, n in conn.execute(query)]


def _filtered_errored(conn: Connection, window: Window) -> list[tuple[int, str, str, int]]:
    """(bucket, channel, status, messages) for the statuses filtered and errored, read through
    ``ix_messages_status_received`` (no channel condition, so that is the index the planner takes)."""
    m = messages
    hour = _HourOf(m.c.received_at)
    first = int(window.start.timestamp()) // BUCKET_SECONDS
    query = (
        select(m.c.channel_id, m.c.status, hour, func.count())
        .where(m.c.status.in_(("filtered", "errored")), m.c.received_at >= window.start)
        .group_by(m.c.channel_id, m.c.status, hour)
    )
    return [(int(h) - first, str(ch), str(st), int(n)) for ch, st, h, n in conn.execute(query)]


def _pair(channel: str, destination: str) -> list[ColumnElement[bool]]:
    d = deliveries
    return [d.c.channel_id == channel, d.c.destination == destination]


def _created_since(status: str, first_id: int) -> list[ColumnElement[bool]]:
    """A destination's entries of ``status`` created since the time ``first_id`` stands for: one
    range of ``ix_deliveries_queue`` per lane, on its last column."""
    d = deliveries
    return [d.c.status == status, d.c.lane.in_(_LANES), d.c.id >= first_id]


def _per_pair(
    conn: Connection, pairs: Sequence[tuple[str, str]], make: Callable[[int, str, str], _Query]
) -> list[Any]:
    """``make(index, channel, destination)`` for each pair, asked as one UNION ALL per 100 pairs:
    each part an equality on (channel_id, destination), which both planners turn into index ranges
    (``IN`` lists of both, or a row-value ``IN``, make PostgreSQL and SQLite scan instead)."""
    rows: list[Any] = []
    for start in range(0, len(pairs), 100):
        parts = [make(start + i, c, d) for i, (c, d) in enumerate(pairs[start : start + 100])]
        query = union_all(*parts) if len(parts) > 1 else parts[0]
        rows += conn.execute(query).all()
    return rows


def _deliveries(
    conn: Connection, window: Window, pairs: Sequence[tuple[str, str]]
) -> tuple[list[Any], list[Any], list[Any]]:
    """Per pair: sent since the window's start; dead-lettered per hour; waiting now (count, oldest id).

    A dead letter's hour comes from its id: ids are milliseconds shifted left 22 bits, so
    ``(id - first id of the window) / (3,600,000 << 22)`` is its bucket, in integers on both databases.
    """
    d = deliveries
    first_id = _first_id(window.start)
    hour = (d.c.id - _int(first_id)) // _int(BUCKET_SECONDS * 1000 << _ID_SHIFT)

    def sent(i: int, c: str, dest: str) -> _Query:
        return select(_int(i), func.count()).where(*_pair(c, dest), *_created_since("sent", first_id))

    def dead(i: int, c: str, dest: str) -> _Query:
        return (
            select(_int(i), hour, func.count())
            .where(*_pair(c, dest), *_created_since("errored", first_id))
            .group_by(hour)
        )

    def waiting(i: int, c: str, dest: str) -> _Query:
        return select(_int(i), func.count(), func.min(d.c.id)).where(
            *_pair(c, dest), d.c.status.in_(_WAITING)
        )

    return _per_pair(conn, pairs, sent), _per_pair(conn, pairs, dead), _per_pair(conn, pairs, waiting)


def store_counts(
    db: Engine, window: Window, channels: Sequence[str], pairs: Sequence[tuple[str, str]]
) -> StoreCounts:
    """Counts per configured channel over ``window``; ``pairs``: the (channel, destination) queues.

    ``db``: the store's own engine, not the autocommit reader: on PostgreSQL the queries run in a
    transaction with JIT compilation and parallel workers off. Its planner prices the many small
    index counts high enough to spend longer compiling them, or starting workers, than counting."""
    totals = {c: dict.fromkeys(COUNTS, 0) for c in channels}
    received = {c: [0] * window.buckets for c in channels}
    errored = {c: [0] * window.buckets for c in channels}
    with db.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET LOCAL jit = off")
            conn.exec_driver_sql("SET LOCAL max_parallel_workers_per_gather = 0")
        for i, ch, n in _received(conn, window, channels) if channels else []:
            received[ch][i] += n
            totals[ch]["received"] += n
        for i, ch, status, n in _filtered_errored(conn, window):
            if ch in totals and 0 <= i < window.buckets:
                totals[ch][status] += n
                if status == "errored":
                    errored[ch][i] += n
        sent, dead, waiting = _deliveries(conn, window, pairs) if pairs else ([], [], [])
        for i, n in sent:
            totals[pairs[i][0]]["sent"] += n
        for i, bucket, n in dead:
            if 0 <= bucket < window.buckets:
                errored[pairs[i][0]][bucket] += n
                totals[pairs[i][0]]["errored"] += n
        queues = _queues(conn, pairs, waiting)
        for q in queues:
            totals[q["channel_id"]]["queued"] += q["queued"]
        count, recent = _recent_errors(conn, window.now - timedelta(hours=1))
        conn.rollback()  # nothing was written; ends the transaction (and SET LOCAL) at once
    return StoreCounts(totals, received, errored, queues, count, recent)


def _queues(
    conn: Connection, pairs: Sequence[tuple[str, str]], waiting: Sequence[Any]
) -> list[dict[str, Any]]:
    """Deliveries waiting (queued or pending) per destination, and when the oldest was created.
    The smallest id is the oldest entry (ids are time-ordered): one row read per queue, not all."""
    d = deliveries
    found = [(int(i), int(n), int(first)) for i, n, first in waiting if n]
    created: dict[int, datetime] = {}
    if found:
        ids = [first for *_, first in found]
        created = {
            int(ident): as_utc(at)
            for ident, at in conn.execute(select(d.c.id, d.c.created_at).where(d.c.id.in_(ids)))
        }
    out = [
        {"channel_id": pairs[i][0], "destination": pairs[i][1], "queued": n, "oldest_at": created.get(first)}
        for i, n, first in found
    ]
    out.sort(key=lambda q: (q["channel_id"], q["destination"]))
    return out


def _recent_errors(conn: Connection, since: datetime) -> tuple[int, list[dict[str, Any]]]:
    """Messages received since ``since`` that errored: stored as errored, or with a dead-lettered
    delivery (as the alert rules count them). Their number, and the newest ``RECENT_ERRORS``.

    The first from ``ix_messages_status_received``; the second from the deliveries created since
    (a range of their primary key, the ids being time-ordered), each joined to its message."""
    m, d = messages, deliveries
    stored_errored = [m.c.status == "errored", m.c.received_at >= since]
    count = int(conn.execute(select(func.count()).select_from(m).where(*stored_errored)).scalar_one())
    summary = (m.c.id, m.c.channel_id, m.c.received_at, m.c.message_type)
    rows = [
        dict(r._mapping)
        for r in conn.execute(
            select(*summary, m.c.error)
            .where(*stored_errored)
            .order_by(m.c.received_at.desc())
            .limit(RECENT_ERRORS)
        )
    ]
    dead = [
        d.c.id >= _first_id(since),
        d.c.status == "errored",
        m.c.id == d.c.message_id,
        m.c.status != "errored",  # counted above already
        m.c.received_at >= since,
    ]
    count += int(conn.execute(select(func.count(func.distinct(d.c.message_id))).where(*dead)).scalar_one())
    rows += [
        dict(r._mapping)
        for r in conn.execute(
            select(*summary, d.c.last_error.label("error"))
            .where(*dead)
            .order_by(d.c.id.desc())
            .limit(RECENT_ERRORS)
        )
    ]
    newest: dict[int, dict[str, Any]] = {}
    for row in sorted(rows, key=lambda r: (as_utc(r["received_at"]), r["id"]), reverse=True):
        if row["id"] in newest:
            continue
        error = row["error"] or ""
        row["error"] = error[:_ERROR_TEXT] + ("…" if len(error) > _ERROR_TEXT else "")
        row["received_at"] = as_utc(row["received_at"])
        newest[row["id"]] = row
    return count, list(newest.values())[:RECENT_ERRORS]


# -- the whole answer -------------------------------------------------------------------------------
def dashboard(
    app: AppConfig, counts: StoreCounts, window: Window, up: Mapping[str, bool | None]
) -> dict[str, Any]:
    """``GET /api/v1/dashboard``'s answer from the store's counts and which sources listen."""
    ids = [c.id for c in app.channels]
    rows = [{"id": c, "listening": up.get(c), **counts.totals[c]} for c in ids]
    return {
        "generated_at": window.now,
        "hours": window.buckets,
        "bucket_seconds": BUCKET_SECONDS,
        "channels": rows,
        "total": {k: sum(r[k] for r in rows) for k in COUNTS},
        "series": {
            "start": window.start,
            "buckets": window.buckets,
            "channels": {c: {"received": counts.received[c], "errored": counts.errored[c]} for c in ids},
        },
        "queues": counts.queues,
        "errors_last_hour": {"count": counts.errors_count, "recent": counts.recent},
    }


def queue_pairs(app: AppConfig) -> list[tuple[str, str]]:
    """Every (channel, destination) of the configuration."""
    return [(c.id, d.id) for c in app.channels for d in c.destinations]
