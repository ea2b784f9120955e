"""EMPI tables: persons, records, events, reviews, PDQ continuations, ITI-10 outbox

Revision ID: empi_0001
Revises:
Create Date: 2026-12-03

The EMPI's own Alembic branch (label ``empi``); it needs the engine's first revision.
"""

import sqlalchemy as sa
from alembic import op

revision = "empi_0001"
down_revision = None
branch_labels = ("empi",)
depends_on = "0001"


def upgrade() -> None:
    op.create_table(
        "empi_continuations",
        sa.Column("pointer", sa.String(length=40), nullable=False),
        sa.Column("requester", sa.String(length=200), nullable=False),
        sa.Column("query_tag", sa.String(length=64), nullable=False),
        sa.Column("query_hash", sa.String(length=64), nullable=False),
        sa.Column("remaining", sa.Text(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("pointer"),
    )
    op.create_index(
        "ix_empi_continuations_tag", "empi_continuations", ["requester", "query_tag"], unique=False
    )
    op.create_table(
        "empi_events",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("record_id", sa.BigInteger(), nullable=True),
        sa.Column("person_id", sa.BigInteger(), nullable=True),
        sa.Column("other_id", sa.BigInteger(), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_empi_events_person", "empi_events", ["person_id"], unique=False)
    op.create_index("ix_empi_events_record", "empi_events", ["record_id"], unique=False)
    op.create_table(
        "empi_notifications",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("channel_id", sa.String(length=100), nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_by", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_empi_notifications_channel", "empi_notifications", ["channel_id", "id"], unique=False)
    op.create_table(
        "empi_persons",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("national_id", sa.String(length=18), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("merged_into", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("national_id"),
    )
    op.create_table(
        "empi_records",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("domain", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=100), nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("merged_into", sa.BigInteger(), nullable=True),
        sa.Column("national_id", sa.String(length=18), nullable=True),
        sa.Column("national_id_valid", sa.String(length=1), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=True),
        sa.Column("name_key", sa.String(length=100), nullable=True),
        sa.Column("name_pinyin", sa.String(length=200), nullable=True),
        sa.Column("family", sa.String(length=50), nullable=True),
        sa.Column("given", sa.String(length=50), nullable=True),
        sa.Column("family_pinyin", sa.String(length=100), nullable=True),
        sa.Column("given_pinyin", sa.String(length=100), nullable=True),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("sex", sa.String(length=2), nullable=True),
        sa.Column("phone", sa.String(length=40), nullable=True),
        sa.Column("city", sa.String(length=50), nullable=True),
        sa.Column("address", sa.String(length=200), nullable=True),
        sa.Column("demographics", sa.Text(), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("domain", "value", name="uq_empi_records_domain_value"),
    )
    op.create_index("ix_empi_records_birth_sex", "empi_records", ["birth_date", "sex"], unique=False)
    op.create_index("ix_empi_records_family", "empi_records", ["family"], unique=False)
    op.create_index("ix_empi_records_family_pinyin", "empi_records", ["family_pinyin"], unique=False)
    op.create_index("ix_empi_records_name_key", "empi_records", ["name_key"], unique=False)
    op.create_index("ix_empi_records_name_pinyin", "empi_records", ["name_pinyin"], unique=False)
    op.create_index("ix_empi_records_national_id", "empi_records", ["national_id"], unique=False)
    op.create_index("ix_empi_records_person", "empi_records", ["person_id"], unique=False)
    op.create_index("ix_empi_records_phone", "empi_records", ["phone"], unique=False)
    op.create_table(
        "empi_reviews",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("record_id", sa.BigInteger(), nullable=False),
        sa.Column("candidate_person_id", sa.BigInteger(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.String(length=100), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_empi_reviews_record", "empi_reviews", ["record_id"], unique=False)
    op.create_index("ix_empi_reviews_status", "empi_reviews", ["status"], unique=False)


def downgrade() -> None:

    op.drop_index("ix_empi_reviews_status", table_name="empi_reviews")
    op.drop_index("ix_empi_reviews_record", table_name="empi_reviews")
    op.drop_table("empi_reviews")
    op.drop_index("ix_empi_records_phone", table_name="empi_records")
    op.drop_index("ix_empi_records_person", table_name="empi_records")
    op.drop_index("ix_empi_records_national_id", table_name="empi_records")
    op.drop_index("ix_empi_records_name_pinyin", table_name="empi_records")
    op.drop_index("ix_empi_records_name_key", table_name="empi_records")
    op.drop_index("ix_empi_records_family_pinyin", table_name="empi_records")
    op.drop_index("ix_empi_records_family", table_name="empi_records")
    op.drop_index("ix_empi_records_birth_sex", table_name="empi_records")
    op.drop_table("empi_records")
    op.drop_table("empi_persons")
    op.drop_index("ix_empi_notifications_channel", table_name="empi_notifications")
    op.drop_table("empi_notifications")
    op.drop_index("ix_empi_events_record", table_name="empi_events")
    op.drop_index("ix_empi_events_person", table_name="empi_events")
    op.drop_table("empi_events")
    op.drop_index("ix_empi_continuations_tag", table_name="empi_continuations")
    op.drop_table("empi_continuations")
