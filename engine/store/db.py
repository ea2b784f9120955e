"""Opening the database: SQLite pragmas, Alembic migrations, and this node's registration."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Connection, Engine, create_engine, delete, event, insert, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError

from engine.store.schema import nodes

__all__ = [
    "heartbeat",
    "live_nodes",
    "migrate",
    "open_engine",
    "open_reader",
    "raced",
    "read_retrying",
    "register_node",
    "savepoint",
    "savepoint_retrying",
    "utcnow",
]

log = logging.getLogger(__name__)
_T = TypeVar("_T")

MIGRATIONS = Path(__file__).parent / "migrations"


def utcnow() -> datetime:
    return datetime.now(UTC)


def open_engine(url: str, *, synchronous: str = "full", pool_size: int = 5) -> Engine:
    """An SQLAlchemy engine; for SQLite: WAL, the chosen fsync policy, a busy timeout."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        eng = create_engine(url, pool_size=pool_size, max_overflow=10, connect_args={"timeout": 30})

        @event.listens_for(eng, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            # FULL: a commit is on disk before the ACK goes out, even across a power cut.
            cur.execute(f"PRAGMA synchronous={synchronous.upper()}")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return eng
    return create_engine(url, pool_size=pool_size, max_overflow=10, pool_pre_ping=True)


def open_reader(url: str, db: Engine, *, pool_size: int = 5) -> Engine:
    """The engine for queries that only read and can be asked again (PIX, PDQ): on PostgreSQL, in
    autocommit (no BEGIN, no ROLLBACK when the connection goes back to the pool) and without the
    pre-ping of each checkout: three round trips fewer per query. A connection the server dropped
    fails its query, is invalidated, and the query is asked once more (``read_retrying``). SQLite
    reads in-process: ``db`` itself."""
    if make_url(url).get_backend_name() == "sqlite":
        return db
    return create_engine(
        url, pool_size=pool_size, max_overflow=10, pool_pre_ping=False, isolation_level="AUTOCOMMIT"
    )


def read_retrying(fn: Callable[[], _T]) -> _T:
    """``fn()``, once more if it failed on a connection the database had dropped (which the pool
    has invalidated by then): how a reader without pre-ping survives a database restart."""
    try:
        return fn()
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        log.warning("a database connection was lost; asking again: %s", exc.orig)
        return fn()


@contextlib.contextmanager
def savepoint(conn: Connection) -> Iterator[None]:
    """What runs inside is rolled back alone if it raises; the transaction goes on.

    Plain SQL rather than ``Connection.begin_nested()``, which compiles its SAVEPOINT statements on
    every call: a fifth of an EMPI feed's time on the writer thread. Same-named savepoints nest.
    """
    driver = conn.connection.dbapi_connection
    if conn.dialect.name == "sqlite" and not getattr(driver, "in_transaction", True):
        # pysqlite opens its transaction at the first write: a SAVEPOINT before it would open one
        # of its own, and its RELEASE would commit everything so far
        conn.exec_driver_sql("BEGIN")
    conn.exec_driver_sql("SAVEPOINT hie_work")
    try:
        yield
    except BaseException:
        conn.exec_driver_sql("ROLLBACK TO SAVEPOINT hie_work")
        conn.exec_driver_sql("RELEASE SAVEPOINT hie_work")
        raise
    conn.exec_driver_sql("RELEASE SAVEPOINT hie_work")


def raced(exc: BaseException) -> bool:
    """Did a statement fail only because another transaction got there first: a unique key it had
    just taken (the INSERT waited for it to commit), or a deadlock or serialisation failure
    PostgreSQL resolved by failing this one? Then the same work succeeds when done again."""
    if isinstance(exc, IntegrityError):
        return True
    orig = getattr(exc, "orig", None)
    return type(orig).__name__ in ("DeadlockDetected", "SerializationFailure")


def savepoint_retrying(conn: Connection, fn: Callable[[], _T]) -> _T:
    """``fn()`` in a savepoint (rolled back alone if it fails); once more if it ``raced`` another
    transaction, since several engine processes may share one PostgreSQL."""
    try:
        with savepoint(conn):
            return fn()
    except DBAPIError as exc:
        if not raced(exc):
            raise
        log.info("raced another transaction (%s); doing it once more", type(exc.orig).__name__)
    with savepoint(conn):
        return fn()


def migrate(eng: Engine, plugin_migrations: Sequence[Path] = (), *, revision: str = "heads") -> None:
    """Bring the schema to the newest Alembic revision of every branch (idempotent), or to
    ``revision`` (tests of a migration start from the one before it).

    The engine's revisions are one branch; each plugin's tables another (``Plugin.migrations``),
    whose first revision ``depends_on`` the engine's, so one ``upgrade heads`` creates them all.
    """
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    locations = [MIGRATIONS / "versions", *plugin_migrations]
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", os.pathsep.join(str(p) for p in locations))
    with eng.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def register_node(eng: Engine) -> int:
    """A row in ``engine_nodes`` for this process, whose id bits differ from every live node's.

    Ids carry only ``node % 1024`` (``engine.ids``): after 1024 registrations a new node could share a
    live node's bits, and both could then make the same id in the same millisecond.
    """
    taken = {n % 1024 for n in live_nodes(eng)}
    skipped: list[int] = []
    node_id = _insert_node(eng)
    while node_id % 1024 in taken and len(skipped) < 1024:
        skipped.append(node_id)
        node_id = _insert_node(eng)
    if skipped:
        with eng.begin() as conn:
            conn.execute(delete(nodes).where(nodes.c.id.in_(skipped)))
    return node_id


def _insert_node(eng: Engine) -> int:
    now = utcnow()
    with eng.begin() as conn:
        result = conn.execute(
            insert(nodes).values(
                hostname=socket.gethostname(), pid=os.getpid(), started_at=now, heartbeat_at=now
            )
        )
        pk = result.inserted_primary_key
        assert pk is not None
        return int(pk[0])


def heartbeat(eng: Engine, node_id: int) -> None:
    with eng.begin() as conn:
        conn.execute(update(nodes).where(nodes.c.id == node_id).values(heartbeat_at=utcnow()))


def live_nodes(eng: Engine, *, stale_after: float = 30.0) -> set[int]:
    """Nodes that beat recently; queue entries owned by any other node are orphans to take over.

    A node on this host whose process is gone is dead at once, without waiting for its heartbeat to
    go stale: that is the restart after ``kill -9``.
    """
    since = utcnow() - timedelta(seconds=stale_after)
    host = socket.gethostname()
    alive = set()
    with eng.connect() as conn:
        rows = conn.execute(
            select(nodes.c.id, nodes.c.hostname, nodes.c.pid).where(nodes.c.heartbeat_at >= since)
        )
        for ident, hostname, pid in rows:
            if hostname == host and pid != os.getpid() and not _process_exists(pid):
                continue
            alive.add(ident)
    return alive


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
