"""The store plumbing the ``hie`` commands share: opening the store, the CLI's own services, group commit."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import click
from sqlalchemy import Engine, delete
from sqlalchemy.exc import SQLAlchemyError

from engine.cli.output import redact
from engine.config import AppConfig
from engine.ids import IdGenerator
from engine.services import Services
from engine.store.db import migrate, open_engine, register_node
from engine.store.schema import nodes
from engine.store.writer import Batch, BatchWriter

__all__ = ["cli_services", "open_store", "write_all"]


@contextmanager
def open_store(app: AppConfig) -> Iterator[Engine]:
    """The configured store, migrated to the current schema; a database error becomes a CLI error."""
    try:
        db = open_engine(app.store_url, synchronous=app.store.synchronous, pool_size=app.store.pool_size)
        migrate(db, app.migrations)
    except SQLAlchemyError as exc:
        raise click.ClickException(f"cannot open the store {redact(app.store_url)}: {exc}") from exc
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


def write_all(writer: BatchWriter, batches: Sequence[Batch]) -> list[BaseException | None]:
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
