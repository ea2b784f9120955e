"""What every channel shares: the configuration, the database, the group-commit writer, the id maker."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from engine.config import AppConfig
from engine.ids import IdGenerator
from engine.store.db import migrate, open_engine, open_reader, register_node
from engine.store.writer import BatchWriter
from engine.telemetry import Telemetry

__all__ = ["Services"]


@dataclass
class Services:
    app: AppConfig
    db: Engine
    writer: BatchWriter
    ids: IdGenerator
    node_id: int
    # for queries that only read (in-process actors' PIX/PDQ answers): ``open_reader``
    reader: Engine | None = None
    # state shared by the destinations of one plugin actor (one EMPI for every PIX channel), by name
    actors: dict[str, Any] = field(default_factory=dict)
    # this process's meters (answers, latency) and what it runs, for metrics:// and alert rules
    telemetry: Telemetry = field(default_factory=Telemetry)

    @classmethod
    def open(cls, app: AppConfig) -> Services:
        db = open_engine(app.store_url, synchronous=app.store.synchronous, pool_size=app.store.pool_size)
        migrate(db, app.migrations)
        node_id = register_node(db)
        writer = BatchWriter(db, batch_max=app.store.batch_max)
        writer.start()
        reader = open_reader(app.store_url, db, pool_size=app.store.pool_size)
        return cls(app=app, db=db, writer=writer, ids=IdGenerator(node_id), node_id=node_id, reader=reader)

    @property
    def reads(self) -> Engine:
        """The engine for read-only queries (the store's own where there is no reader)."""
        return self.reader if self.reader is not None else self.db

    def close(self) -> None:
        self.writer.stop()
        if self.reader is not None and self.reader is not self.db:
            self.reader.dispose()
        self.db.dispose()
