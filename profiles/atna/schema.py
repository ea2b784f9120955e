"""Tables of the Audit Record Repository (an Alembic branch of their own: ``migrations/``).

Audit messages received from other systems are rows of the engine's own ``audit_events`` (so one
search finds both kinds), with ``source_id`` the sender's AuditSourceID, ``channel_id`` the syslog
channel and ``message_id`` the stored syslog message. The engine's table is the engine's: a plugin
does not add columns to it (its declared schema and its migrations would no longer agree), so what
only a received record has is kept beside it here:

* ``atna_received``: one row per received record, keyed by its ``audit_events`` id: who sent it
  (the peer's address, and certificate subject over TLS) and the syslog HEADER (HOSTNAME, APP-NAME,
  PROCID, MSGID, TIMESTAMP). Its presence is the mark "came from outside": the forwarder skips it.
* ``atna_forward_marks``: how far the forwarder has sent the engine's own records to each external
  repository (the highest ``audit_events`` id sent), advanced only after a send succeeded.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, MetaData, String, Table

from engine.store.schema import UtcDateTime

__all__ = ["forward_marks", "metadata", "received"]

metadata = MetaData()

received = Table(
    "atna_received",
    metadata,
    Column("audit_id", BigInteger, primary_key=True, autoincrement=False),  # audit_events.id
    Column("message_id", BigInteger, nullable=False),  # the stored syslog message
    Column("received_at", UtcDateTime(), nullable=False),
    Column("peer", String(200), nullable=False),
    # RFC 5424 §6.2 HEADER fields, as sent ("" for NILVALUE); lengths are the RFC's maxima
    Column("hostname", String(255), nullable=False),
    Column("app_name", String(48), nullable=False),
    Column("procid", String(128), nullable=False),
    Column("msgid", String(32), nullable=False),
    Column("sent_at", UtcDateTime(), nullable=True),  # the syslog TIMESTAMP
    Column("enterprise_site", String(100), nullable=False),  # AuditEnterpriseSiteID
    Index("ix_atna_received_message", "message_id"),
    Index("ix_atna_received_at", "received_at"),
)

forward_marks = Table(
    "atna_forward_marks",
    metadata,
    Column("target", String(300), primary_key=True),  # the forward_to URL
    Column("last_id", BigInteger, nullable=False),  # every own record up to this id was sent
    Column("updated_at", UtcDateTime(), nullable=False),
)
