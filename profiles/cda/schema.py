"""Tables of the CDA upload service (an Alembic branch of their own: ``migrations/``).

``cda_uploads``: one row per document a hospital uploaded, accepted or rejected, with the report
the validator wrote: the auditors' record of what arrived, and what the upload statistics count
(per institution and day: documents, their types, rejections by rule). ``institution`` is the
document's custodian (its 组织机构代码 under ``2.16.156.10011.1.5``), the hospital whose upload it
is; the message it came in is ``message_id`` in the message store.

``cda_upload_records``: one row per data-set record a hospital sent through the national interface
that is not a document (a patient registered, updated or merged: 个人信息注册/更新/合并), accepted
or refused, with the service and the reason: the bulletin's "records received / stored".

``cda_upload_days``, ``cda_upload_rejections`` and ``cda_record_days``: the daily roll-up of those
rows (``stats``), per institution, day (the platform's local date) and document type, per
institution, day and rule that rejected documents, and per institution, day and service of the
records: what the monthly report reads.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table, Text

from engine.store.schema import UtcDateTime

__all__ = ["metadata", "record_days", "records", "rollups", "upload_days", "upload_rejections", "uploads"]

metadata = MetaData()

uploads = Table(
    "cda_uploads",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("message_id", BigInteger, nullable=True),
    Column("received_at", UtcDateTime, nullable=False),
    Column("institution", String(64), nullable=False),  # custodian org code ("" when the document has none)
    Column("institution_name", String(200), nullable=False),
    Column("document_code", String(8), nullable=False),  # C00NN ("" when not a WS/T 500 type)
    Column("document_id", String(64), nullable=False),  # the 文档流水号
    Column("status", String(12), nullable=False),  # accepted | rejected
    Column("errors", Integer, nullable=False),
    Column("warnings", Integer, nullable=False),
    Column("rules", Text, nullable=True),  # the error rule ids, comma-separated: rejections by rule
    Column("report", Text, nullable=False),  # the validator's report (JSON)
    Column("xds_unique_id", String(128), nullable=True),  # the registered DocumentEntry's uniqueId
    Index("ix_cda_uploads_institution", "institution", "received_at"),
    Index("ix_cda_uploads_received", "received_at"),
)

upload_days = Table(
    "cda_upload_days",
    metadata,
    Column("day", String(10), primary_key=True),  # YYYY-MM-DD, the platform's local date
    Column("institution", String(64), primary_key=True),
    Column("document_code", String(8), primary_key=True),
    Column("institution_name", String(200), nullable=False),
    Column("received", Integer, nullable=False),
    Column("accepted", Integer, nullable=False),
    Column("rejected", Integer, nullable=False),
    Column("rolled_up_at", UtcDateTime, nullable=False),
)

upload_rejections = Table(
    "cda_upload_rejections",
    metadata,
    Column("day", String(10), primary_key=True),
    Column("institution", String(64), primary_key=True),
    Column("rule", String(100), primary_key=True),
    Column("documents", Integer, nullable=False),  # rejected documents this rule was among the reasons of
)

rollups = Table(
    "cda_rollups",
    metadata,
    Column("day", String(10), primary_key=True),  # a day rolled up (days without uploads too)
    Column("uploads", Integer, nullable=False),
    Column("rolled_up_at", UtcDateTime, nullable=False),
)

records = Table(
    "cda_upload_records",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("message_id", BigInteger, nullable=True),
    Column("received_at", UtcDateTime, nullable=False),
    Column("institution", String(64), nullable=False),  # the sender's 组织机构代码 ("" when unknown)
    Column("service", String(64), nullable=False),  # e.g. PatientInfoRegister
    Column("status", String(12), nullable=False),  # accepted | rejected
    Column("reason", Text, nullable=True),  # why it was refused
    Index("ix_cda_upload_records_received", "received_at"),
)

record_days = Table(
    "cda_record_days",
    metadata,
    Column("day", String(10), primary_key=True),
    Column("institution", String(64), primary_key=True),
    Column("service", String(64), primary_key=True),
    Column("received", Integer, nullable=False),
    Column("accepted", Integer, nullable=False),
    Column("rejected", Integer, nullable=False),
)
