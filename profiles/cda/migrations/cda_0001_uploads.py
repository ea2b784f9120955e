"""CDA upload service: every uploaded document with its validation report, and their daily roll-up

Revision ID: cda_0001
Revises:
Create Date: 2026-12-04

The CDA upload service's own Alembic branch (label ``cda``); it needs the engine's first revision.
"""

import sqlalchemy as sa
from alembic import op

revision = "cda_0001"
down_revision = None
branch_labels = ("cda",)
depends_on = "0001"


def upgrade() -> None:
    op.create_table(
        "cda_uploads",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("institution", sa.String(length=64), nullable=False),
        sa.Column("institution_name", sa.String(length=200), nullable=False),
        sa.Column("document_code", sa.String(length=8), nullable=False),
        sa.Column("document_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("warnings", sa.Integer(), nullable=False),
        sa.Column("rules", sa.Text(), nullable=True),
        sa.Column("report", sa.Text(), nullable=False),
        sa.Column("xds_unique_id", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_cda_uploads_institution", "cda_uploads", ["institution", "received_at"], unique=False)
    op.create_index("ix_cda_uploads_received", "cda_uploads", ["received_at"], unique=False)
    op.create_table(
        "cda_upload_days",
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("institution", sa.String(length=64), nullable=False),
        sa.Column("document_code", sa.String(length=8), nullable=False),
        sa.Column("institution_name", sa.String(length=200), nullable=False),
        sa.Column("received", sa.Integer(), nullable=False),
        sa.Column("accepted", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.Column("rolled_up_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("day", "institution", "document_code"),
    )
    op.create_table(
        "cda_rollups",
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("uploads", sa.Integer(), nullable=False),
        sa.Column("rolled_up_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("day"),
    )
    op.create_table(
        "cda_upload_rejections",
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("institution", sa.String(length=64), nullable=False),
        sa.Column("rule", sa.String(length=100), nullable=False),
        sa.Column("documents", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("day", "institution", "rule"),
    )


def downgrade() -> None:
    op.drop_table("cda_upload_rejections")
    op.drop_table("cda_rollups")
    op.drop_table("cda_upload_days")
    op.drop_index("ix_cda_uploads_received", table_name="cda_uploads")
    op.drop_index("ix_cda_uploads_institution", table_name="cda_uploads")
    op.drop_table("cda_uploads")
