"""Audit Record Repository: what only a received audit record has, and the forwarder's marks

Revision ID: atna_0001
Revises:
Create Date: 2026-12-06

The Audit Record Repository's own Alembic branch (label ``atna``); it needs the engine's first
revision (received records are rows of its ``audit_events``).
"""

import sqlalchemy as sa
from alembic import op

revision = "atna_0001"
down_revision = None
branch_labels = ("atna",)
depends_on = "0001"


def upgrade() -> None:
    op.create_table(
        "atna_received",
        sa.Column("audit_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("peer", sa.String(length=200), nullable=False),
        sa.Column("hostname", sa.String(length=255), nullable=False),
        sa.Column("app_name", sa.String(length=48), nullable=False),
        sa.Column("procid", sa.String(length=128), nullable=False),
        sa.Column("msgid", sa.String(length=32), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("enterprise_site", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("audit_id"),
    )
    op.create_index("ix_atna_received_message", "atna_received", ["message_id"], unique=False)
    op.create_index("ix_atna_received_at", "atna_received", ["received_at"], unique=False)
    op.create_table(
        "atna_forward_marks",
        sa.Column("target", sa.String(length=300), nullable=False),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("target"),
    )


def downgrade() -> None:
    op.drop_table("atna_forward_marks")
    op.drop_index("ix_atna_received_at", table_name="atna_received")
    op.drop_index("ix_atna_received_message", table_name="atna_received")
    op.drop_table("atna_received")
