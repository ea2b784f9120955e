"""Tables of the EMPI, in the engine's database (an Alembic branch of their own: ``migrations/``).

``empi_persons`` are the people; ``empi_records`` the local identities that institutions feed (one
per domain and identifier), each linked to one person. The searchable demographics of a record are
columns (indexed for blocking and PDQ); all of it is also kept as the canonical ``Patient`` JSON.
``empi_events`` is the history: every create, update, link, unlink, merge and review decision, with
the message that caused it, so a link can be explained and undone. Ids come from the engine's id
maker (time-ordered, unique across nodes), so several engine processes can share PostgreSQL.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    Float,
    Index,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

from engine.store.schema import UtcDateTime

__all__ = ["continuations", "events", "metadata", "notifications", "persons", "records", "reviews"]

metadata = MetaData()

persons = Table(
    "empi_persons",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    # the enterprise key: a valid GB 11643 number; one person per number
    Column("national_id", String(18), nullable=True, unique=True),
    Column("status", String(10), nullable=False),  # active | merged
    Column("merged_into", BigInteger, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

records = Table(
    "empi_records",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("domain", String(64), nullable=False),  # Domain.id of config.yaml
    Column("value", String(100), nullable=False),  # CX-1
    Column("person_id", BigInteger, nullable=False),
    Column("status", String(10), nullable=False),  # active | merged (subsumed by an A40)
    Column("merged_into", BigInteger, nullable=True),  # the surviving record
    Column("national_id", String(18), nullable=True),  # as fed, valid or not
    Column("national_id_valid", String(1), nullable=False),  # Y | N | "" (none)
    Column("name", String(100), nullable=True),  # the whole name as written (张三, ZHANG SAN)
    Column("name_key", String(100), nullable=True),  # upper case, no spaces: for search and blocking
    Column("name_pinyin", String(200), nullable=True),  # toneless pinyin key: ZHANGWEI
    Column("family", String(50), nullable=True),
    Column("given", String(50), nullable=True),
    Column("family_pinyin", String(100), nullable=True),  # ZHANG (PDQ by family name in pinyin)
    Column("given_pinyin", String(100), nullable=True),
    Column("birth_date", Date, nullable=True),
    Column("sex", String(2), nullable=True),  # GB/T 2261.1 code
    Column("phone", String(40), nullable=True),  # digits only
    Column("city", String(50), nullable=True),  # XAD-3 of the first address
    Column("address", String(200), nullable=True),  # the first address as one line, as written
    # the other parts of the first address (PDQ @PID.11.1/.4/.5/.6), added by empi_0002
    Column("street", String(100), nullable=True),  # XAD-1
    Column("province", String(50), nullable=True),  # XAD-4
    Column("postal_code", String(20), nullable=True),  # XAD-5
    Column("country", String(10), nullable=True),  # XAD-6
    Column("account_number", String(100), nullable=True),  # PID-18.1
    Column("account_namespace", String(64), nullable=True),  # PID-18.4.1
    Column("account_oid", String(64), nullable=True),  # PID-18.4.2
    Column("mother_key", String(100), nullable=True),  # PID-6, upper case, no spaces (like name_key)
    Column("mother_pinyin", String(200), nullable=True),  # PID-6 in toneless pinyin
    Column("demographics", Text, nullable=False),  # the canonical Patient, JSON
    Column("message_id", BigInteger, nullable=True),  # the feed that last wrote it
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("domain", "value", name="uq_empi_records_domain_value"),
    Index("ix_empi_records_person", "person_id"),
    Index("ix_empi_records_national_id", "national_id"),
    Index("ix_empi_records_birth_sex", "birth_date", "sex"),
    Index("ix_empi_records_name_key", "name_key"),
    Index("ix_empi_records_name_pinyin", "name_pinyin"),
    Index("ix_empi_records_family", "family"),
    Index("ix_empi_records_family_pinyin", "family_pinyin"),
    Index("ix_empi_records_phone", "phone"),
    # partial: most records have no account number or mother's maiden name, and an index entry per
    # NULL would slow every load and feed for nothing ("x = ?" implies "x IS NOT NULL" to both planners)
    *(
        Index(
            f"ix_empi_records_{name}",
            column,
            sqlite_where=text(f"{column} IS NOT NULL"),
            postgresql_where=text(f"{column} IS NOT NULL"),
        )
        for name, column in (
            ("account", "account_number"),
            ("mother_key", "mother_key"),
            ("mother_pinyin", "mother_pinyin"),
        )
    ),
)

events = Table(
    "empi_events",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("at", UtcDateTime, nullable=False),
    # create | update | link | unlink | merge | unmerge | review-opened | review-linked | review-rejected
    Column("kind", String(20), nullable=False),
    Column("record_id", BigInteger, nullable=True),
    Column("person_id", BigInteger, nullable=True),
    Column("other_id", BigInteger, nullable=True),  # the person (or record) it moved from / merged with
    Column("score", Float, nullable=True),
    Column("detail", Text, nullable=True),  # why, for a person: rule, scores, the previous values
    Column("message_id", BigInteger, nullable=True),
    Column("actor", String(100), nullable=False),  # the feeding source, or the reviewer
    Index("ix_empi_events_record", "record_id"),
    Index("ix_empi_events_person", "person_id"),
)

reviews = Table(
    "empi_reviews",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("record_id", BigInteger, nullable=False),
    Column("candidate_person_id", BigInteger, nullable=False),
    Column("score", Float, nullable=False),
    Column("detail", Text, nullable=True),
    Column("status", String(10), nullable=False),  # open | linked | rejected
    Column("created_at", UtcDateTime, nullable=False),
    Column("resolved_at", UtcDateTime, nullable=True),
    Column("resolved_by", String(100), nullable=True),
    Index("ix_empi_reviews_status", "status"),
    Index("ix_empi_reviews_record", "record_id"),
)

# PDQ (ITI-21) incremental responses: the persons of a query not sent yet, behind a DSC pointer.
# Any node may serve the continuation; it is bound to the requester and the query (TF-2 §3.21.4.2.2.7).
continuations = Table(
    "empi_continuations",
    metadata,
    Column("pointer", String(40), primary_key=True),
    Column("requester", String(200), nullable=False),  # MSH-3^MSH-4 of the query
    Column("query_tag", String(64), nullable=False),  # QPD-2 (QCN^J01 cancels by it)
    Column("query_hash", String(64), nullable=False),  # the QPD parameters it answers
    Column("remaining", Text, nullable=False),  # JSON list of person ids still to send
    Column("total", BigInteger, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Index("ix_empi_continuations_tag", "requester", "query_tag"),
)

# ITI-10 outbox: persons whose cross-references changed, one row per notification channel, written
# in the feed's transaction; the channel's pix-iti10 source turns each into an ADT^A31 (stored and
# queued like any message) and deletes the row. A row claimed by a node that died is taken over.
notifications = Table(
    "empi_notifications",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("channel_id", String(100), nullable=False),
    Column("person_id", BigInteger, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("claimed_by", BigInteger, nullable=True),  # engine node id
    Index("ix_empi_notifications_channel", "channel_id", "id"),
)
