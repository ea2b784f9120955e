"""Group commit: many messages share a transaction, one bad write fails only its own caller."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import Connection, func, insert, inspect, select
from sqlalchemy.exc import DBAPIError, IntegrityError

from engine.store.db import migrate, open_engine, savepoint
from engine.store.schema import messages
from engine.store.writer import Batch, BatchWriter


def row(ident: int) -> dict[str, object]:
    now = datetime.now(UTC)
    return {
        "id": ident,
        "channel_id": "c",
        "received_at": now,
        "updated_at": now,
        "status": "received",
        "content_type": "hl7v2",
        "charset": "utf-8",
        "control_id": f"C{ident}",
        "message_type": "ADT^A01",
        "sending_application": "",
        "sending_facility": "",
        "receiving_application": "",
        "receiving_facility": "",
        "peer": "",
        "raw": b"MSH|",
        "content": None,
        "error": None,
        "error_detail": None,
        "warnings": None,
        "reprocessed_from": None,
    }


async def test_concurrent_writes_are_grouped_and_all_durable(store_url: str) -> None:
    db = open_engine(store_url)
    migrate(db)
    writer = BatchWriter(db, batch_max=512)
    writer.start()
    try:

        async def one(i: int) -> None:
            b = Batch()
            b.insert(messages, row(i))
            await writer.write(b)

        await asyncio.gather(*(one(i) for i in range(1, 1001)))
        with db.connect() as conn:
            assert conn.execute(select(func.count()).select_from(messages)).scalar_one() == 1000
        assert writer.commits < 1000  # grouped, not one transaction per message
    finally:
        writer.stop()
        db.dispose()


async def test_a_failing_batch_fails_alone(store_url: str) -> None:
    db = open_engine(store_url)
    migrate(db)
    writer = BatchWriter(db)
    writer.start()
    try:
        first = Batch()
        first.insert(messages, row(1))
        await writer.write(first)

        async def write(ident: int) -> None:
            b = Batch()
            b.insert(messages, row(ident))
            await writer.write(b)

        results = await asyncio.gather(write(2), write(1), write(3), return_exceptions=True)
        assert results[0] is None and results[2] is None
        assert isinstance(results[1], IntegrityError)  # duplicate primary key
        with db.connect() as conn:
            ids = sorted(conn.execute(select(messages.c.id)).scalars())
        assert ids == [1, 2, 3]
    finally:
        writer.stop()
        db.dispose()


def test_migrations_are_idempotent_and_create_every_table(store_url: str) -> None:
    db = open_engine(store_url)
    try:
        migrate(db)
        migrate(db)
        names = set(inspect(db).get_table_names())
        assert {
            "messages",
            "message_identifiers",
            "deliveries",
            "delivery_attempts",
            "audit_events",
            "engine_nodes",
            "alembic_version",
        } <= names
    finally:
        db.dispose()


def test_sqlite_runs_in_wal_mode_with_full_sync(tmp_path: pytest.TempPathFactory) -> None:
    db = open_engine(f"sqlite:///{tmp_path}/x.db", synchronous="full")
    with db.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    db.dispose()


async def test_work_commits_with_its_batch_and_a_failing_work_fails_only_its_batch(store_url: str) -> None:
    """``Batch.then``: the work's rows commit with the batch; a work that raises takes nothing of its
    batch with it into the database, and the other batches of its group still commit."""
    db = open_engine(store_url)
    migrate(db)
    writer = BatchWriter(db)
    writer.start()
    try:

        def more(ident: int) -> Callable[[Connection], Batch]:
            def work(conn: Connection) -> Batch:
                # the batch's own row is already there, in the same transaction
                assert conn.execute(select(messages.c.id).where(messages.c.id == ident)).scalar_one()
                extra = Batch()
                extra.insert(messages, row(ident + 1000))
                return extra

            return work

        def broken(conn: Connection) -> None:
            conn.execute(insert(messages).values(row(9999)))
            raise RuntimeError("the work failed")

        async def write(ident: int, work: Callable[[Connection], Batch | None]) -> None:
            b = Batch()
            b.insert(messages, row(ident))
            b.then(work)
            await writer.write(b)

        results = await asyncio.gather(
            write(1, more(1)), write(2, broken), write(3, more(3)), return_exceptions=True
        )
        assert results[0] is None and results[2] is None
        assert isinstance(results[1], RuntimeError)
        with db.connect() as conn:
            ids = sorted(conn.execute(select(messages.c.id)).scalars())
        assert ids == [1, 3, 1001, 1003]  # neither message 2 nor what its work wrote

        assert (
            await writer.run(
                lambda conn: conn.execute(select(func.count()).select_from(messages)).scalar_one()
            )
            == 4
        )
    finally:
        writer.stop()
        db.dispose()


async def test_a_savepoint_rolls_back_alone_and_never_commits_its_transaction_early(store_url: str) -> None:
    db = open_engine(store_url)
    migrate(db)
    writer = BatchWriter(db)
    writer.start()
    try:

        def work(conn: Connection) -> None:
            with savepoint(conn):  # the transaction's first statement
                conn.execute(insert(messages).values(row(1)))
            with pytest.raises(RuntimeError), savepoint(conn):
                conn.execute(insert(messages).values(row(2)))
                raise RuntimeError("rolled back alone")
            conn.execute(insert(messages).values(row(3)))
            raise LookupError("and then the whole transaction fails")

        with pytest.raises(LookupError):
            await writer.run(work)
        with db.connect() as conn:
            assert conn.execute(select(func.count()).select_from(messages)).scalar_one() == 0

        def good(conn: Connection) -> list[int]:
            with savepoint(conn):
                conn.execute(insert(messages).values(row(1)))
            with pytest.raises(RuntimeError), savepoint(conn):
                conn.execute(insert(messages).values(row(2)))
                raise RuntimeError("rolled back alone")
            return list(conn.execute(select(messages.c.id)).scalars())

        assert await writer.run(good) == [1]
        with db.connect() as conn:
            assert list(conn.execute(select(messages.c.id)).scalars()) == [1]
    finally:
        writer.stop()
        db.dispose()


@pytest.mark.postgres
async def test_a_connection_lost_in_an_insert_fails_its_batch_as_sqlalchemy_says(pg_url: str) -> None:
    """The multi-row INSERT runs on psycopg directly: its errors must still be SQLAlchemy's (the
    callers catch those), the batch must not be half written, and the next write must succeed."""
    db = open_engine(pg_url, pool_size=1)
    admin = open_engine(pg_url)
    migrate(db)
    writer = BatchWriter(db)
    writer.start()

    def drop_my_connection(conn: Connection) -> Batch:
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        with admin.connect() as other:
            other.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})")
        more = Batch()
        more.insert(messages, row(2))  # inserted after the work, on the connection just lost
        return more

    try:
        lost = Batch()
        lost.insert(messages, row(1))
        lost.then(drop_my_connection)
        with pytest.raises(DBAPIError) as raised:
            await writer.write(lost)
        assert "terminat" in str(raised.value).lower() or "closed" in str(raised.value).lower()
        after = Batch()
        after.insert(messages, row(3))
        await writer.write(after)
        with db.connect() as conn:
            assert sorted(conn.execute(select(messages.c.id)).scalars()) == [3]
    finally:
        writer.stop()
        db.dispose()
        admin.dispose()
