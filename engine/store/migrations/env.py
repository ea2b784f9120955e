"""Alembic environment: the engine passes its own connection in ``config.attributes``."""

from alembic import context

from engine.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only when alembic is run by hand
    raise SystemExit("run migrations through `hie` (engine.store.db.migrate), which passes the connection")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
