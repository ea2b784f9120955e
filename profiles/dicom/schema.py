"""Tables of the regional image archive (an Alembic branch of their own: ``migrations/``).

The archive keeps each instance as a file (``profiles.dicom.archive``); these tables are its index,
the three levels of the DICOM information model (PS3.4 C.6.2: patient, study, series, instance),
with the patient's attributes on the study as the sending PACS wrote them:

* ``dicom_studies``: one row per study, the patient as the PACS named him (PatientID and its
  issuer) and as the platform knows him (``person_id``, the EMPI's person; ``patient_status``
  ``unknown`` while the EMPI does not know the id: the review list of ``hie dicom unreconciled``);
  ``last_received_at`` drives the XDS-I.b publication of a quiet study.
* ``dicom_series`` and ``dicom_instances``: what C-FIND matches at the lower levels and what
  C-MOVE, C-GET, RAD-69 and WADO-RS send; ``instances`` counts are kept on study and series.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table

from engine.store.schema import UtcDateTime

__all__ = ["instances", "metadata", "series", "studies"]

metadata = MetaData()

UID = 64  # PS3.5 §9.1: a UID is at most 64 characters

studies = Table(
    "dicom_studies",
    metadata,
    Column("study_uid", String(UID), primary_key=True),
    Column("patient_id", String(64), nullable=False),  # (0010,0020) as sent
    Column("issuer", String(64), nullable=False),  # (0010,0021), "" when not sent
    Column("domain", String(64), nullable=True),  # the EMPI identity domain it resolved to
    Column("person_id", BigInteger, nullable=True),  # the EMPI's person, once known
    Column("patient_status", String(12), nullable=False),  # known | unknown
    Column("patient_name", String(200), nullable=False),
    Column("birth_date", String(8), nullable=False),
    Column("sex", String(16), nullable=False),
    Column("study_date", String(8), nullable=False),
    Column("study_time", String(16), nullable=False),
    Column("accession_number", String(64), nullable=False),
    Column("study_id", String(16), nullable=False),
    Column("description", String(200), nullable=False),
    Column("referring_physician", String(200), nullable=False),
    Column("source_ae", String(16), nullable=False),
    Column("instances", Integer, nullable=False),
    Column("first_received_at", UtcDateTime, nullable=False),
    Column("last_received_at", UtcDateTime, nullable=False),
    Column("published_at", UtcDateTime, nullable=True),  # XDS-I.b: the manifest registered last
    Column("manifest_uid", String(UID), nullable=True),  # that manifest's SOP Instance UID
    Index("ix_dicom_studies_patient", "patient_id", "issuer"),
    Index("ix_dicom_studies_person", "person_id"),
    Index("ix_dicom_studies_date", "study_date"),
    Index("ix_dicom_studies_accession", "accession_number"),
    Index("ix_dicom_studies_status", "patient_status"),
    Index("ix_dicom_studies_received", "last_received_at"),
)

series = Table(
    "dicom_series",
    metadata,
    Column("series_uid", String(UID), primary_key=True),
    Column("study_uid", String(UID), nullable=False),
    Column("modality", String(16), nullable=False),
    Column("series_number", Integer, nullable=True),
    Column("description", String(200), nullable=False),
    Column("body_part", String(64), nullable=False),
    Column("instances", Integer, nullable=False),
    Index("ix_dicom_series_study", "study_uid"),
)

instances = Table(
    "dicom_instances",
    metadata,
    Column("sop_instance_uid", String(UID), primary_key=True),
    Column("series_uid", String(UID), nullable=False),
    Column("study_uid", String(UID), nullable=False),
    Column("sop_class_uid", String(UID), nullable=False),
    Column("transfer_syntax", String(UID), nullable=False),
    Column("instance_number", Integer, nullable=True),
    Column("path", String(400), nullable=False),  # relative to the archive folder
    Column("size", BigInteger, nullable=False),
    Column("message_id", BigInteger, nullable=True),  # the C-STORE in the message store
    Column("source_ae", String(16), nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Index("ix_dicom_instances_series", "series_uid"),
    Index("ix_dicom_instances_study", "study_uid"),
)
