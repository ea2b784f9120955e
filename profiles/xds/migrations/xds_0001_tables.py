"""XDS.b registry tables: DocumentEntries and their codes and reference ids, SubmissionSets, Folders
and their codes, Associations

Revision ID: xds_0001
Revises:
Create Date: 2026-12-03

The XDS registry's own Alembic branch (label ``xds``); it needs the engine's first revision.
"""

import sqlalchemy as sa
from alembic import op

revision = "xds_0001"
down_revision = None
branch_labels = ("xds",)
depends_on = "0001"


def upgrade() -> None:
    op.create_table(
        "xds_associations",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("entry_uuid", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("source_uuid", sa.String(length=64), nullable=False),
        sa.Column("target_uuid", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("metadata", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("entry_uuid"),
    )
    op.create_index("ix_xds_associations_source", "xds_associations", ["source_uuid", "type"], unique=False)
    op.create_index("ix_xds_associations_target", "xds_associations", ["target_uuid", "type"], unique=False)
    op.create_table(
        "xds_document_codes",
        sa.Column("document_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("attribute", sa.String(length=24), nullable=False),
        sa.Column("code", sa.String(length=300), nullable=False),
        sa.PrimaryKeyConstraint("document_id", "attribute", "code"),
    )
    op.create_index(
        "ix_xds_document_codes_code", "xds_document_codes", ["attribute", "code", "document_id"], unique=False
    )
    op.create_table(
        "xds_documents",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("entry_uuid", sa.String(length=64), nullable=False),
        sa.Column("lid", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("patient_id", sa.String(length=256), nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=True),
        sa.Column("unique_id", sa.String(length=128), nullable=False),
        sa.Column("object_type", sa.String(length=64), nullable=False),
        sa.Column("mime_type", sa.String(length=128), nullable=False),
        sa.Column("hash", sa.String(length=40), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("repository_unique_id", sa.String(length=64), nullable=True),
        sa.Column("creation_time", sa.String(length=14), nullable=True),
        sa.Column("service_start_time", sa.String(length=14), nullable=True),
        sa.Column("service_stop_time", sa.String(length=14), nullable=True),
        sa.Column("class_code", sa.String(length=300), nullable=True),
        sa.Column("type_code", sa.String(length=300), nullable=True),
        sa.Column("format_code", sa.String(length=300), nullable=True),
        sa.Column("facility_type_code", sa.String(length=300), nullable=True),
        sa.Column("practice_setting_code", sa.String(length=300), nullable=True),
        sa.Column("author_persons", sa.Text(), nullable=True),
        sa.Column("submission_set_uuid", sa.String(length=64), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("metadata", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("entry_uuid"),
    )
    op.create_index("ix_xds_documents_lid", "xds_documents", ["lid"], unique=False)
    op.create_index(
        "ix_xds_documents_patient", "xds_documents", ["patient_id", "status", "creation_time"], unique=False
    )
    op.create_index("ix_xds_documents_person", "xds_documents", ["person_id"], unique=False)
    op.create_index("ix_xds_documents_submission_set", "xds_documents", ["submission_set_uuid"], unique=False)
    op.create_index("ix_xds_documents_unique_id", "xds_documents", ["unique_id"], unique=False)
    op.create_table(
        "xds_folder_codes",
        sa.Column("folder_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("code", sa.String(length=300), nullable=False),
        sa.PrimaryKeyConstraint("folder_id", "code"),
    )
    op.create_index("ix_xds_folder_codes_code", "xds_folder_codes", ["code", "folder_id"], unique=False)
    op.create_table(
        "xds_folders",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("entry_uuid", sa.String(length=64), nullable=False),
        sa.Column("lid", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("unique_id", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("patient_id", sa.String(length=256), nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=True),
        sa.Column("last_update_time", sa.String(length=14), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("metadata", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("entry_uuid"),
    )
    op.create_index(
        "ix_xds_folders_patient", "xds_folders", ["patient_id", "status", "last_update_time"], unique=False
    )
    op.create_index("ix_xds_folders_person", "xds_folders", ["person_id"], unique=False)
    op.create_index("ix_xds_folders_unique_id", "xds_folders", ["unique_id"], unique=False)
    op.create_table(
        "xds_reference_ids",
        sa.Column("document_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("value", sa.String(length=256), nullable=False),
        sa.PrimaryKeyConstraint("document_id", "value"),
    )
    op.create_index("ix_xds_reference_ids_value", "xds_reference_ids", ["value", "document_id"], unique=False)
    op.create_table(
        "xds_submission_sets",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("entry_uuid", sa.String(length=64), nullable=False),
        sa.Column("unique_id", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("patient_id", sa.String(length=256), nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=True),
        sa.Column("source_id", sa.String(length=64), nullable=False),
        sa.Column("submission_time", sa.String(length=14), nullable=False),
        sa.Column("content_type_code", sa.String(length=300), nullable=True),
        sa.Column("author_persons", sa.Text(), nullable=True),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("metadata", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("entry_uuid"),
        sa.UniqueConstraint("unique_id"),
    )
    op.create_index(
        "ix_xds_submission_sets_patient",
        "xds_submission_sets",
        ["patient_id", "status", "submission_time"],
        unique=False,
    )
    op.create_index("ix_xds_submission_sets_person", "xds_submission_sets", ["person_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_xds_submission_sets_person", table_name="xds_submission_sets")
    op.drop_index("ix_xds_submission_sets_patient", table_name="xds_submission_sets")
    op.drop_table("xds_submission_sets")
    op.drop_index("ix_xds_reference_ids_value", table_name="xds_reference_ids")
    op.drop_table("xds_reference_ids")
    op.drop_index("ix_xds_folders_unique_id", table_name="xds_folders")
    op.drop_index("ix_xds_folders_person", table_name="xds_folders")
    op.drop_index("ix_xds_folders_patient", table_name="xds_folders")
    op.drop_table("xds_folders")
    op.drop_index("ix_xds_folder_codes_code", table_name="xds_folder_codes")
    op.drop_table("xds_folder_codes")
    op.drop_index("ix_xds_documents_unique_id", table_name="xds_documents")
    op.drop_index("ix_xds_documents_submission_set", table_name="xds_documents")
    op.drop_index("ix_xds_documents_person", table_name="xds_documents")
    op.drop_index("ix_xds_documents_patient", table_name="xds_documents")
    op.drop_index("ix_xds_documents_lid", table_name="xds_documents")
    op.drop_table("xds_documents")
    op.drop_index("ix_xds_document_codes_code", table_name="xds_document_codes")
    op.drop_table("xds_document_codes")
    op.drop_index("ix_xds_associations_target", table_name="xds_associations")
    op.drop_index("ix_xds_associations_source", table_name="xds_associations")
    op.drop_table("xds_associations")
