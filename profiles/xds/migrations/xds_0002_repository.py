"""XDS.b repository: the documents it stores (uniqueId -> content-store address, hash, size)

Revision ID: xds_0002
Revises: xds_0001
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "xds_0002"
down_revision = "xds_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "xds_repository_documents",
        sa.Column("unique_id", sa.String(length=128), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=40), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("mime_type", sa.String(length=128), nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("unique_id"),
    )


def downgrade() -> None:
    op.drop_table("xds_repository_documents")
