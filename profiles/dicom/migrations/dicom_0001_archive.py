"""Regional image archive: the index of studies, series and instances kept under the archive folder

Revision ID: dicom_0001
Revises:
Create Date: 2026-12-05

The image archive's own Alembic branch (label ``dicom``); it needs the engine's first revision.
"""

import sqlalchemy as sa
from alembic import op

revision = "dicom_0001"
down_revision = None
branch_labels = ("dicom",)
depends_on = "0001"


def upgrade() -> None:
    op.create_table(
        "dicom_instances",
        sa.Column("sop_instance_uid", sa.String(length=64), nullable=False),
        sa.Column("series_uid", sa.String(length=64), nullable=False),
        sa.Column("study_uid", sa.String(length=64), nullable=False),
        sa.Column("sop_class_uid", sa.String(length=64), nullable=False),
        sa.Column("transfer_syntax", sa.String(length=64), nullable=False),
        sa.Column("instance_number", sa.Integer(), nullable=True),
        sa.Column("path", sa.String(length=400), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("source_ae", sa.String(length=16), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sop_instance_uid"),
    )
    op.create_index("ix_dicom_instances_series", "dicom_instances", ["series_uid"], unique=False)
    op.create_index("ix_dicom_instances_study", "dicom_instances", ["study_uid"], unique=False)
    op.create_table(
        "dicom_series",
        sa.Column("series_uid", sa.String(length=64), nullable=False),
        sa.Column("study_uid", sa.String(length=64), nullable=False),
        sa.Column("modality", sa.String(length=16), nullable=False),
        sa.Column("series_number", sa.Integer(), nullable=True),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("body_part", sa.String(length=64), nullable=False),
        sa.Column("instances", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("series_uid"),
    )
    op.create_index("ix_dicom_series_study", "dicom_series", ["study_uid"], unique=False)
    op.create_table(
        "dicom_studies",
        sa.Column("study_uid", sa.String(length=64), nullable=False),
        sa.Column("patient_id", sa.String(length=64), nullable=False),
        sa.Column("issuer", sa.String(length=64), nullable=False),
        sa.Column("domain", sa.String(length=64), nullable=True),
        sa.Column("person_id", sa.BigInteger(), nullable=True),
        sa.Column("patient_status", sa.String(length=12), nullable=False),
        sa.Column("patient_name", sa.String(length=200), nullable=False),
        sa.Column("birth_date", sa.String(length=8), nullable=False),
        sa.Column("sex", sa.String(length=16), nullable=False),
        sa.Column("study_date", sa.String(length=8), nullable=False),
        sa.Column("study_time", sa.String(length=16), nullable=False),
        sa.Column("accession_number", sa.String(length=64), nullable=False),
        sa.Column("study_id", sa.String(length=16), nullable=False),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("referring_physician", sa.String(length=200), nullable=False),
        sa.Column("source_ae", sa.String(length=16), nullable=False),
        sa.Column("instances", sa.Integer(), nullable=False),
        sa.Column("first_received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("manifest_uid", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("study_uid"),
    )
    op.create_index("ix_dicom_studies_accession", "dicom_studies", ["accession_number"], unique=False)
    op.create_index("ix_dicom_studies_date", "dicom_studies", ["study_date"], unique=False)
    op.create_index("ix_dicom_studies_patient", "dicom_studies", ["patient_id", "issuer"], unique=False)
    op.create_index("ix_dicom_studies_person", "dicom_studies", ["person_id"], unique=False)
    op.create_index("ix_dicom_studies_received", "dicom_studies", ["last_received_at"], unique=False)
    op.create_index("ix_dicom_studies_status", "dicom_studies", ["patient_status"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_dicom_studies_status", table_name="dicom_studies")
    op.drop_index("ix_dicom_studies_received", table_name="dicom_studies")
    op.drop_index("ix_dicom_studies_person", table_name="dicom_studies")
    op.drop_index("ix_dicom_studies_patient", table_name="dicom_studies")
    op.drop_index("ix_dicom_studies_date", table_name="dicom_studies")
    op.drop_index("ix_dicom_studies_accession", table_name="dicom_studies")
    op.drop_table("dicom_studies")
    op.drop_index("ix_dicom_series_study", table_name="dicom_series")
    op.drop_table("dicom_series")
    op.drop_index("ix_dicom_instances_study", table_name="dicom_instances")
    op.drop_index("ix_dicom_instances_series", table_name="dicom_instances")
    op.drop_table("dicom_instances")
