"""What every channel shares: the configuration, the database, the group-commit writer, the id maker."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from engine.config import AppConfig
from engine.ids import IdGenerator
from engine.store.db import migrate, open_engine, register_node
from engine.store.writer import BatchWriter

__all__ = ["Services"]


@dataclass
class Services:
    app: AppConfig
    db: Engine
    writer: BatchWriter
    ids: IdGenerator
    node_id: int
    # state shared by the destinations of one plugin actor (one EMPI for every PIX channel), by name
    actors: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def open(cls, app: AppConfig) -> Services:
        db = open_engine(app.store_url, synchronous=app.store.synchronous, pool_size=app.store.pool_size)
        migrate(db, app.migrations)
        node_id = register_node(db)
        writer = BatchWriter(db, batch_max=app.store.batch_max)
        writer.start()
        return cls(app=app, db=db, writer=writer, ids=IdGenerator(node_id), node_id=node_id)

    def close(self) -> None:
        self.writer.stop()
        self.db.dispose()
