"""Upload statistics: the data-set records (patient registrations, updates, merges) hospitals send
through the national interface, and their daily roll-up

Revision ID: cda_0002
Revises: cda_0001
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "cda_0002"
down_revision = "cda_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cda_upload_records",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("institution", sa.String(length=64), nullable=False),
        sa.Column("service", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_cda_upload_records_received", "cda_upload_records", ["received_at"], unique=False)
    op.create_table(
        "cda_record_days",
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("institution", sa.String(length=64), nullable=False),
        sa.Column("service", sa.String(length=64), nullable=False),
        sa.Column("received", sa.Integer(), nullable=False),
        sa.Column("accepted", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "institution", "service"),
    )


def downgrade() -> None:
    op.drop_table("cda_record_days")
    op.drop_index("ix_cda_upload_records_received", table_name="cda_upload_records")
    op.drop_table("cda_upload_records")
