"""Tables of the message store. Changes here need an Alembic revision in ``migrations/versions``.

Ids of messages, deliveries and audit events are 63-bit, time-ordered and made by the node that
writes them (``engine.ids``), so a batch can be inserted without a round trip per row and several
engine processes can share one PostgreSQL database.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)

__all__ = [
    "attempts",
    "audit_events",
    "deliveries",
    "identifiers",
    "messages",
    "metadata",
    "nodes",
    "text_index_state",
]

metadata = MetaData()


class UtcDateTime(TypeDecorator[datetime]):
    """Timestamps are UTC and timezone-aware on the way out, whatever the database keeps.

    SQLite has no time zones and hands back naive values; PostgreSQL keeps ``timestamptz``.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(UTC)
            if dialect.name == "sqlite":
                value = value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


nodes = Table(
    "engine_nodes",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("hostname", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("heartbeat_at", UtcDateTime(), nullable=False),
)

messages = Table(
    "messages",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("channel_id", String(100), nullable=False),
    Column("received_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    # received | filtered | errored | queued (deliveries pending) | sent (every delivery done)
    Column("status", String(16), nullable=False),
    Column("content_type", String(16), nullable=False),
    Column("charset", String(32), nullable=False, default=""),
    Column("control_id", String(64), nullable=False, default=""),
    Column("message_type", String(32), nullable=False, default=""),
    Column("sending_application", String(100), nullable=False, default=""),
    Column("sending_facility", String(100), nullable=False, default=""),
    Column("receiving_application", String(100), nullable=False, default=""),
    Column("receiving_facility", String(100), nullable=False, default=""),
    Column("peer", String(200), nullable=False, default=""),
    Column("raw", LargeBinary, nullable=True),  # exactly the bytes received (pruned by retention)
    Column("content", Text, nullable=True),  # transformed content; NULL = the decoded raw message
    Column("error", Text, nullable=True),
    Column("error_detail", Text, nullable=True),  # traceback summary, for the integrator
    Column("warnings", Text, nullable=True),
    Column("reprocessed_from", BigInteger, nullable=True),
    Index("ix_messages_channel_received", "channel_id", "received_at"),
    Index("ix_messages_control_id", "control_id"),
    Index("ix_messages_status_received", "status", "received_at"),
    Index("ix_messages_type", "message_type"),
    Index("ix_messages_facility", "sending_facility"),
)

identifiers = Table(
    "message_identifiers",
    metadata,
    Column("message_id", BigInteger, nullable=False),
    Column("value", String(100), nullable=False),
    Column("authority", String(100), nullable=False, default=""),
    Column("id_type", String(20), nullable=False, default=""),
    Column("field", String(10), nullable=False, default=""),
    Index("ix_identifiers_value", "value"),
    Index("ix_identifiers_message", "message_id"),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("message_id", BigInteger, nullable=False),
    Column("channel_id", String(100), nullable=False),
    Column("destination", String(100), nullable=False),
    Column("lane", Integer, nullable=False, default=0),
    Column("order_key", String(200), nullable=False, default=""),
    # queued | sent | filtered | errored (dead letter: retries spent or refused for good)
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UtcDateTime(), nullable=True),
    Column("owner_node", Integer, nullable=True),  # node serving this queue entry
    Column("created_at", UtcDateTime(), nullable=False),
    Column("updated_at", UtcDateTime(), nullable=False),
    Column("sent_at", UtcDateTime(), nullable=True),
    Column("sent", LargeBinary, nullable=True),  # the bytes sent (last attempt)
    Column("response", LargeBinary, nullable=True),  # the destination's answer (last attempt)
    Column("last_error", Text, nullable=True),
    Index("ix_deliveries_queue", "channel_id", "destination", "status", "lane", "id"),
    Index("ix_deliveries_message", "message_id"),
)

attempts = Table(
    "delivery_attempts",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("delivery_id", BigInteger, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("at", UtcDateTime(), nullable=False),
    Column("outcome", String(16), nullable=False),  # sent | failed | refused
    Column("duration_ms", Float, nullable=False, default=0.0),
    Column("response", LargeBinary, nullable=True),
    Column("error", Text, nullable=True),
    Index("ix_attempts_delivery", "delivery_id"),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("event_time", UtcDateTime(), nullable=False),
    # DICOM PS3.15 A.5: EventID (code^display^system), EventActionCode, EventOutcomeIndicator
    Column("event_id", String(64), nullable=False),
    Column("event_type", String(128), nullable=False, default=""),
    Column("action", String(1), nullable=False),
    Column("outcome", Integer, nullable=False),
    Column("outcome_description", Text, nullable=True),
    Column("source_id", String(100), nullable=False),
    Column("user_id", String(200), nullable=False, default=""),  # the requestor, for searches
    Column("channel_id", String(100), nullable=True),
    Column("message_id", BigInteger, nullable=True),
    Column("patient_ids", Text, nullable=True),  # space-separated, for "who saw this patient"
    Column("participants", Text, nullable=False),  # JSON: ActiveParticipant list
    Column("objects", Text, nullable=False),  # JSON: ParticipantObjectIdentification list
    Index("ix_audit_time", "event_time"),
    Index("ix_audit_message", "message_id"),
)

# How far the free-text index (``engine.store.textindex``) has read the messages: one row per index,
# ``mark`` the highest message id it has read. The index itself, ``message_text``, is not described
# here: it is an FTS5 virtual table on SQLite and a plain table with a pg_trgm GIN index on
# PostgreSQL, created by the migration 0003_text_index.
text_index_state = Table(
    "text_index_state",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("mark", BigInteger, nullable=False, default=0),
)
