"""Tables of console accounts: users, API tokens, sessions (Alembic revision 0002_console).

Only a SHA-256 of a token or session id is stored: a copy of the database does not let anyone in.
They are on the engine's ``metadata`` because the console is part of the engine, not a plugin.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Index, Integer, String, Table

from engine.store.schema import UtcDateTime, metadata

__all__ = ["sessions", "tokens", "users"]

users = Table(
    "console_users",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(100), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("role", String(16), nullable=False),  # admin | integrator | auditor | viewer
    Column("disabled", Boolean, nullable=False, default=False),
    Column("failed_attempts", Integer, nullable=False, default=0),
    Column("locked_until", UtcDateTime(), nullable=True),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("last_login_at", UtcDateTime(), nullable=True),
)

tokens = Table(
    "console_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), nullable=False, unique=True),  # hex SHA-256 of the token
    Column("name", String(100), nullable=False, default=""),
    Column("user_id", Integer, nullable=False),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=True),
    Column("last_used_at", UtcDateTime(), nullable=True),
    Column("revoked", Boolean, nullable=False, default=False),
    Index("ix_console_tokens_user", "user_id"),
)

sessions = Table(
    "console_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),  # hex SHA-256 of the cookie's value
    Column("user_id", Integer, nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("client", String(200), nullable=False, default=""),
    Column("created_at", UtcDateTime(), nullable=False),
    Column("expires_at", UtcDateTime(), nullable=False),
    Index("ix_console_sessions_expires", "expires_at"),
)
