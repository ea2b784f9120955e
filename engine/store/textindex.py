"""Free-text search in message content: a trigram index, filled in the background.

The message hot path is untouched: a message is stored as before (the store writer's group commit,
which its ACK waits for), and a job (``TEXT_INDEX``: every ``INTERVAL_SECONDS``, in the first worker
only) reads the messages past its mark in id order, decodes the raw bytes in the message's charset
(and takes the transformed content when one is stored), and adds the text to ``message_text``:

* SQLite: an FTS5 virtual table with the trigram tokenizer (SQLite 3.34 or newer), rowid = message
  id. It keeps its own copy of the text: a contentless table cannot forget a row before SQLite 3.43,
  and pruned content must stop being searchable.
* PostgreSQL: a table ``message_text(message_id, body)`` with a GIN index of pg_trgm trigrams; the
  body in lower case, searched with LIKE (ILIKE would fold the case of every row it checks).

Both find a substring anywhere in the text, ignoring case, through the trigrams of the string
searched for: one of fewer than ``MIN_CHARS`` characters has none and would read every row, so it
is refused (``TextSearchError``, a ``ValueError``: a 400 for the API, a usage error for the CLI).

What is indexed of a message: its raw bytes decoded (a byte that does not decode becomes U+FFFD) and
its transformed content, at most ``MAX_BYTES`` bytes and ``MAX_CHARS`` characters of each; control
characters become spaces, and runs of base64 of ``BASE64_RUN`` characters or more (a PDF in OBX-5)
are left out: nobody searches them, and they would make most of the index.

The mark. Ids are made when a message arrives and the message commits a few milliseconds later, so
a message with a smaller id may commit after one with a larger id. The indexer reads only messages
whose id (the time it holds) is ``SETTLE_SECONDS`` old, by then committed, and keeps the highest id
read in ``text_index_state``: a message is searchable ``SETTLE_SECONDS`` to ``SETTLE_SECONDS +
INTERVAL_SECONDS`` after it arrived, and a restart goes on from the mark. Each transaction moves the
mark from the value the indexer read to the new one (compare and set), and on PostgreSQL first takes
a transaction advisory lock (or gives up this round): two engines sharing one database never index a
message twice, and retention (``forget``, which waits for that lock) never misses a row the indexer
is writing.

Writing. Each chunk of the index is one transaction, sized to take about ``CHUNK_SECONDS``
(``BUSY_CHUNK_SECONDS`` while messages are being stored), and paced: while messages are being
stored, the chunks take at most a share of the time (a backlog then waits for a quieter moment),
at full speed otherwise. SQLite has one writer: the chunks are transactions of the store's writer
thread, a message's commit may wait behind one, and they take at most ``BUSY_SHARE`` of it.
PostgreSQL takes concurrent writers: the indexer writes on a connection of its own and the store's
writer never waits for it, but a chunk still holds a core (the trigram index's upkeep, the text
made from the raw bytes): at most ``PG_BUSY_SHARE`` of the time. Unpaced, a run indexed two
seconds of messages in one burst of about 0.3 s, and the EMPI benchmark's slowest answers came in
those bursts, every two seconds. A run stops after ``RUN_SHARE`` of the interval (a backlog, after
an upgrade of a store full of messages, is worked through run after run): runs never overlap.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    Connection,
    Engine,
    LargeBinary,
    Text,
    bindparam,
    column,
    delete,
    func,
    select,
    table,
    text,
    update,
)
from sqlalchemy.exc import CompileError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.operators import OperatorType

from engine.hl7v2.charset import codec_for
from engine.ids import IdGenerator
from engine.plugins import Job
from engine.store.db import savepoint
from engine.store.schema import messages, text_index_state
from engine.store.writer import Batch

if TYPE_CHECKING:
    from engine.config import AppConfig
    from engine.services import Services

__all__ = [
    "MIN_CHARS",
    "TEXT_INDEX",
    "Stopped",
    "TextSearchError",
    "available",
    "check",
    "forget",
    "index_pending",
    "mark",
    "matches",
    "message_text",
    "unindexed",
]

log = logging.getLogger(__name__)

MIN_CHARS = 3  # a trigram index finds nothing shorter without reading every row
INTERVAL_SECONDS = 2.0  # between two runs of the job
RUN_SHARE = 0.75  # of the interval a run may work (then the next run goes on): runs never overlap
SETTLE_SECONDS = 5.0  # a message is read once its id is this old: committed by then
READ_BATCH = 1000  # messages read past the mark at once
MAX_BYTES = 65_536  # of the raw bytes indexed (and characters of the transformed content)
MAX_CHARS = MAX_BYTES
BASE64_RUN = 256  # a run of base64 at least this long is an embedded document: not indexed
CHUNK_SECONDS = 0.025  # the time a chunk should take (on SQLite: hold the store's writer)
BUSY_CHUNK_SECONDS = 0.01  # the same while messages are being stored
FIRST_CHUNK = 100  # messages in the first chunk of a run; then sized to CHUNK_SECONDS
CHUNK_LIMITS = (10, 1000)
BUSY_SHARE = 0.1  # SQLite: of the writer's time the index takes at most while messages are stored
PG_BUSY_SHARE = 0.3  # PostgreSQL: of the time the index takes at most while messages are stored

_NAME = "messages"  # the row of text_index_state this index keeps its mark in
_LOCK_KEY = 0x6869655F747874  # "hie_txt": PostgreSQL advisory lock of the index's writers
_TOP = 2**63 - 1
_EPOCH_MS = IdGenerator.timestamp_ms(0)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffd]+")
_BASE64 = re.compile(r"[A-Za-z0-9+/]{%d,}={0,2}" % BASE64_RUN)  # noqa: UP031 (a regex's braces)

# the index, as each dialect has it (created by the migration 0003_text_index)
_FTS = table("message_text", column("rowid", BigInteger), column("body", Text))
_PG = table("message_text", column("message_id", BigInteger), column("body", Text))

_T = TypeVar("_T")


class TextSearchError(ValueError):
    """The string searched for cannot be searched (too short)."""


class Stopped(RuntimeError):
    """The engine is stopping: the run ends between two transactions (the next start goes on)."""


# -- searching ---------------------------------------------------------------------------------------


def check(wanted: str) -> str:
    """The string to search for, as it is indexed: control characters as spaces, trimmed.

    Raises ``TextSearchError`` when it has fewer than ``MIN_CHARS`` characters.
    """
    cleaned = _CONTROL.sub(" ", wanted).strip()
    if len(cleaned) < MIN_CHARS:
        raise TextSearchError(f"free text needs at least {MIN_CHARS} characters")
    return cleaned


class _Hits(ColumnElement[bool]):
    """``<id column> IN (ids of the messages whose indexed text holds the string)``, written in
    each dialect's own way: FTS5 MATCH of a phrase on SQLite, LIKE through pg_trgm on PostgreSQL."""

    inherit_cache = False  # its SQL depends on the dialect; statements holding it are not cached
    type = Boolean()

    def __init__(self, ident: ColumnElement[Any], wanted: str, below: int) -> None:
        self.ident = ident
        self.wanted = wanted
        self.below = below

    def self_group(self, against: OperatorType | None = None) -> ColumnElement[Any]:
        # a predicate already (as ``x IN (...)`` is): in an AND, not "(... ) = 1" on SQLite, which
        # keeps SQLite from looking the ids up through the index and has it scan every message
        return self


@compiles(_Hits, "sqlite")
def _hits_sqlite(element: _Hits, compiler: SQLCompiler, **kw: Any) -> str:
    ident = compiler.process(element.ident, **kw)
    # a phrase: every character literal (* ^ : ( and the operators), double quotes doubled
    phrase = '"' + element.wanted.replace('"', '""') + '"'
    wanted = compiler.process(bindparam("text_phrase", phrase, unique=True), **kw)
    below = compiler.process(bindparam("text_below", element.below, BigInteger, unique=True), **kw)
    return (
        f"{ident} IN (SELECT rowid FROM message_text WHERE message_text MATCH {wanted} AND rowid < {below})"
    )


@compiles(_Hits, "postgresql")
def _hits_postgresql(element: _Hits, compiler: SQLCompiler, **kw: Any) -> str:
    ident = compiler.process(element.ident, **kw)
    # the body is kept in lower case: LIKE, not ILIKE, which would fold every row it checks (3.5
    # times slower where many rows hold the string's trigrams)
    lowered = element.wanted.lower()
    escaped = lowered.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    wanted = compiler.process(bindparam("text_pattern", f"%{escaped}%", unique=True), **kw)
    below = compiler.process(bindparam("text_below", element.below, BigInteger, unique=True), **kw)
    return (
        f"{ident} IN (SELECT message_id FROM message_text "
        f"WHERE body LIKE {wanted} ESCAPE '\\' AND message_id < {below})"
    )


@compiles(_Hits)
def _hits_other(element: _Hits, compiler: SQLCompiler, **kw: Any) -> str:
    raise CompileError(f"free-text search is on SQLite and PostgreSQL, not {compiler.dialect.name}")


def matches(ident: ColumnElement[Any], wanted: str, *, below: int | None = None) -> ColumnElement[bool]:
    """The condition "the message with id ``ident`` holds ``wanted``" (a substring, any case), for a
    query's WHERE; ``below``: only messages with a smaller id (a page's ``before``), which the
    index itself then skips. Raises ``TextSearchError`` for a string too short."""
    return _Hits(ident, check(wanted), _TOP if below is None else below)


# -- what is indexed ---------------------------------------------------------------------------------


def message_text(charset: str, raw: bytes | None, content: str | None) -> str:
    """The text indexed for a message: its raw bytes decoded in ``charset`` (UTF-8 when none is
    known; a byte that does not decode becomes U+FFFD), then its transformed content if any."""
    parts = []
    if raw:
        parts.append(bytes(raw).decode(codec_for(charset) or "utf-8", "replace"))
    if content:
        parts.append(content)
    return _BASE64.sub(" ", _CONTROL.sub(" ", "\n".join(parts))).strip()


# -- the indexer -------------------------------------------------------------------------------------


def available(conn: Connection) -> bool:
    """Does this store have the index? (Not on an SQLite older than 3.34: no trigram tokenizer.)"""
    if conn.dialect.name != "sqlite":
        return True
    found = conn.exec_driver_sql("SELECT 1 FROM sqlite_master WHERE name = 'message_text'").first()
    return found is not None


def mark(db: Engine) -> int:
    """The highest message id the index has read (every message up to it is indexed)."""
    with db.connect() as conn:
        found = conn.execute(select(text_index_state.c.mark).where(text_index_state.c.name == _NAME))
        value = found.scalar_one_or_none()
    if value is None:
        raise RuntimeError("text_index_state has lost its row: the store's migration 0003 did not run")
    return int(value)


def _horizon(now: float, settle: float) -> int:
    """The smallest id made ``settle`` seconds before ``now``: every message below it has committed."""
    return max(0, int(now * 1000) - int(settle * 1000) - _EPOCH_MS) << 22


def _unread(db: Engine, after: int, before: int) -> list[tuple[int, str]]:
    """(id, text) of the next ``READ_BATCH`` messages after the mark, in id order; a pruned message
    has an empty text (it is passed over, the mark moves past it)."""
    m = messages
    query = (
        select(
            m.c.id,
            m.c.charset,
            func.substr(m.c.raw, 1, MAX_BYTES, type_=LargeBinary),
            func.substr(m.c.content, 1, MAX_CHARS, type_=Text),
        )
        .where(m.c.id > after, m.c.id < before)
        .order_by(m.c.id)
        .limit(READ_BATCH)
    )
    with db.connect() as conn:
        rows = conn.execute(query).all()
    return [(int(i), message_text(charset or "", raw, content)) for i, charset, raw, content in rows]


_INSERT = {
    "sqlite": "INSERT INTO message_text (rowid, body) VALUES (:id, :body)",
    "postgresql": "INSERT INTO message_text (message_id, body) VALUES (:id, :body)",
}


def _write(old: int, new: int, docs: Sequence[tuple[int, str]]) -> Callable[[Connection], int | None]:
    """Move the mark from ``old`` to ``new`` and index ``docs``: how many were indexed, or None
    (nothing written) when the mark is no longer ``old``: another indexer got there first. A message
    pruned since it was read is not indexed: retention has taken its content away meanwhile."""

    def work(conn: Connection) -> int | None:
        state = text_index_state
        moved = conn.execute(
            update(state).where(state.c.name == _NAME, state.c.mark == old).values(mark=new)
        ).rowcount
        if moved != 1:
            return None
        if not docs:
            return 0
            # checked apart, not INSERT ... SELECT ... WHERE EXISTS: into FTS5 that is half as fast
        m = messages
        ids = [i for i, _ in docs]
        live = set(conn.execute(select(m.c.id).where(m.c.id.in_(ids), m.c.raw.is_not(None))).scalars())
        lower = conn.dialect.name == "postgresql"  # see _hits_postgresql
        rows = [{"id": i, "body": body.lower() if lower else body} for i, body in docs if i in live]
        if rows:
            conn.execute(text(_INSERT[conn.dialect.name]), rows)
        return len(rows)

    return work


def index_pending(services: Services, *, settle: float | None = None, budget: float | None = None) -> int:
    """Index the messages past the mark that are old enough (``settle`` seconds, ``SETTLE_SECONDS``
    by default); the number of messages whose text was added. Stops once caught up, or after a
    batch that ends past ``budget`` seconds of work (the next run goes on), or when another indexer
    holds the index; raises ``Stopped`` when the engine is stopping."""
    db = services.db
    with db.connect() as conn:
        if not available(conn):
            _unavailable(db)
            return 0
    wait = SETTLE_SECONDS if settle is None else settle
    deadline = None if budget is None else time.monotonic() + budget
    pace = _Pace(PG_BUSY_SHARE if db.dialect.name == "postgresql" else BUSY_SHARE)
    total = 0
    while deadline is None or time.monotonic() < deadline:
        _check_running(services)
        old = mark(db)
        rows = _unread(db, old, _horizon(time.time(), wait))
        if not rows:
            return total
        docs = [(i, body) for i, body in rows if body]
        done = _store(services, pace, old, rows[-1][0], docs)
        if done is None:
            log.debug("text index: another indexer holds the index; this run stops")
            return total
        total += done
        log.debug("text index: %d message(s) read, %d indexed, up to id %d", len(rows), done, rows[-1][0])
        if len(rows) < READ_BATCH:
            return total
    return total


_told: set[str] = set()


def _unavailable(db: Engine) -> None:
    """Say once per store that it has no index (an SQLite older than 3.34 made it)."""
    if str(db.url) not in _told:
        _told.add(str(db.url))
        log.warning("free-text search is unavailable: the store has no text index (SQLite 3.34 or newer has)")


def unindexed(db: Engine) -> int:
    """How many stored messages the index has not read yet (the newest few seconds' are normal)."""
    query = select(func.count()).select_from(messages).where(messages.c.id > mark(db))
    with db.connect() as conn:
        return int(conn.execute(query).scalar_one())


class _Pace:
    """How many messages the next chunk holds, so that it takes about ``CHUNK_SECONDS``
    (``BUSY_CHUNK_SECONDS`` while messages are being stored) from its submission until its commit,
    and the pause after it, so that while messages are being stored the index takes at most
    ``share`` of the time: on SQLite a message's commit waits behind a chunk; on PostgreSQL a chunk
    holds a core (the trigram index's upkeep) and competes with the requests in flight."""

    def __init__(self, share: float = BUSY_SHARE) -> None:
        self.size = FIRST_CHUNK
        self.share = share
        self.per_message = 0.0  # seconds a message took in the last full chunk

    def took(self, count: int, seconds: float, busy: bool) -> float:
        """Learn from a chunk of ``count`` messages that took ``seconds``; the pause due after it."""
        if count >= self.size:  # a short last chunk says little
            self.per_message = seconds / max(count, 1)
        if self.per_message:
            wanted = int((BUSY_CHUNK_SECONDS if busy else CHUNK_SECONDS) / max(self.per_message, 1e-6))
            low, high = CHUNK_LIMITS
            self.size = max(low, min(high, wanted, self.size * 2))
        return min(0.5, seconds * (1 / self.share - 1)) if busy else 0.0


def _store(services: Services, pace: _Pace, old: int, last: int, docs: list[tuple[int, str]]) -> int | None:
    """Index ``docs`` in chunks, each moving the mark to its last id (the final one to ``last``);
    None when another indexer moved the mark first."""
    postgres = services.db.dialect.name == "postgresql"
    start = 0
    done = 0
    while True:
        chunk = docs[start : start + pace.size]
        start += len(chunk)
        final = start >= len(docs)
        new = last if final else chunk[-1][0]
        _check_running(services)
        written = services.writer.rows_written
        began = time.monotonic()
        if postgres:
            wrote = _on_own_connection(services, _write(old, new, chunk))
        else:
            wrote = _on_writer(services, _write(old, new, chunk))
        # busy: messages were stored meanwhile (on SQLite this chunk counts one row)
        busy = services.writer.rows_written - written > (0 if postgres else 1)
        time.sleep(pace.took(len(chunk), time.monotonic() - began, busy))
        if wrote is None:
            return None
        done += wrote
        old = new
        if final:
            return done


def _check_running(services: Services) -> None:
    if not services.writer.running:
        raise Stopped("the store's writer has stopped (the engine is stopping)")


def _on_writer(services: Services, work: Callable[[Connection], _T]) -> _T:
    """``work(conn)`` in a transaction of the store's writer (SQLite's one writer); its result once
    committed. In a savepoint: a failure of the index must not fail the messages committed with it
    (the writer would commit them again one by one). Raises ``Stopped`` when the writer stops
    before taking it."""
    writer = services.writer
    finished = threading.Event()
    result: list[_T] = []
    errors: list[BaseException] = []

    def apply(conn: Connection) -> None:
        result.clear()
        errors.clear()
        try:
            with savepoint(conn):
                result.append(work(conn))
        except Exception as exc:
            errors.append(exc)

    def done(exc: BaseException | None) -> None:
        if exc is not None:
            errors.append(exc)
        finished.set()

    batch = Batch()
    batch.then(apply)
    writer.submit(batch, done)
    while not finished.wait(0.5):
        if not writer.running:
            raise Stopped("the store's writer stopped before it wrote the index")
    if errors:
        raise errors[-1]
    return result[0]


def _on_own_connection(services: Services, work: Callable[[Connection], int | None]) -> int | None:
    """PostgreSQL: ``work(conn)`` in a transaction of the indexer's own connection, once it holds
    the index's advisory lock (None, nothing done, if another indexer or retention holds it)."""
    _check_running(services)
    with services.db.begin() as conn:
        locked = conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": _LOCK_KEY}).scalar_one()
        if not locked:
            return None
        return work(conn)


def forget(conn: Connection, ids: Sequence[int]) -> None:
    """Take these messages out of the index, in the caller's transaction: retention, which prunes
    their content or deletes them. On PostgreSQL it first waits for an indexer's transaction in
    progress, whose rows it then sees."""
    if not ids:
        return
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
        conn.execute(delete(_PG).where(_PG.c.message_id.in_(list(ids))))
    elif available(conn):
        conn.execute(delete(_FTS).where(_FTS.c.rowid.in_(list(ids))))


def _run(services: Services, app: AppConfig) -> int:
    try:
        return index_pending(services, budget=INTERVAL_SECONDS * RUN_SHARE)
    except Stopped:
        log.info("text index: stopped with the engine; the next start goes on from its mark")
        return 0


def _schedule(app: AppConfig) -> tuple[str, dict[str, Any]]:
    return "interval", {"seconds": INTERVAL_SECONDS}


TEXT_INDEX = Job("text-index", _run, _schedule)
"""The indexer, scheduled by the runtime in its first worker (engine-level, not a plugin's)."""
