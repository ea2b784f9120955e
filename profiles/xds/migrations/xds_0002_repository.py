"""XDS.b repository: the documents it stores (uniqueId -> content-store address, hash, size); the
registry's FindDocuments index by person, status and creation time

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
    op.drop_index("ix_xds_documents_person", table_name="xds_documents")
    op.create_index(
        "ix_xds_documents_person_status",
        "xds_documents",
        ["person_id", "status", "creation_time"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_xds_documents_person_status", table_name="xds_documents")
    op.create_index("ix_xds_documents_person", "xds_documents", ["person_id"], unique=False)
    op.drop_table("xds_repository_documents")
