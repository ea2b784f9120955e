"""Tables of the XDS.b registry, in the engine's database (an Alembic branch of their own: ``migrations/``).

Designed for many millions of DocumentEntries: every stored-query parameter that selects is a
column or a row of a code table, indexed, so a query never parses metadata; the metadata itself is
kept once, as the ebRIM element the registry answers LeafClass queries with (``metadata``, ids
resolved to UUIDs). Multi-valued attributes (eventCodeList, confidentialityCode, referenceIdList,
a Folder's codeList) are rows of their own so that "any of these" and "all of these" are joins.

* Codes are stored as ``code^^scheme`` (CE components 1 and 3), the form stored queries send.
* Times are DTM strings padded to 14 digits (``2004`` -> ``20040000000000``): compared as text,
  ``From <= t < To`` holds for every precision (ITI TF-2 §3.18.4.1.2.3.4).
* ``patient_id`` is the affinity-domain id (``ID^^^&OID&ISO``) as registered; ``person_id`` the
  EMPI's person it belonged to, so that a merge (ITI-8 A40) moves a patient's entries in one
  indexed UPDATE.
* Ids come from the engine's id maker; ``entry_uuid`` is the object's ``urn:uuid:`` id.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table, Text

from engine.store.schema import UtcDateTime

__all__ = [
    "associations",
    "document_codes",
    "documents",
    "folder_codes",
    "folders",
    "metadata",
    "reference_ids",
    "repository_documents",
    "submission_sets",
]

metadata = MetaData()

_CODE = 300  # code^^scheme: a code (64) and its scheme's OID or name (<= 200)

documents = Table(
    "xds_documents",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("entry_uuid", String(64), nullable=False, unique=True),
    Column("lid", String(64), nullable=False),  # the logical id: versions of one entry share it
    Column("version", Integer, nullable=False),
    Column("status", String(12), nullable=False),  # Approved | Deprecated
    Column("patient_id", String(256), nullable=False),
    Column("person_id", BigInteger, nullable=True),
    Column("unique_id", String(128), nullable=False),
    Column("object_type", String(64), nullable=False),  # stable | on-demand (their UUIDs)
    Column("mime_type", String(128), nullable=False),
    Column("hash", String(40), nullable=True),  # SHA-1, lower-case hex
    Column("size", BigInteger, nullable=True),
    Column("repository_unique_id", String(64), nullable=True),
    Column("creation_time", String(14), nullable=True),
    Column("service_start_time", String(14), nullable=True),
    Column("service_stop_time", String(14), nullable=True),
    Column("class_code", String(_CODE), nullable=True),
    Column("type_code", String(_CODE), nullable=True),
    Column("format_code", String(_CODE), nullable=True),
    Column("facility_type_code", String(_CODE), nullable=True),
    Column("practice_setting_code", String(_CODE), nullable=True),
    Column("author_persons", Text, nullable=True),  # one per line: $...AuthorPerson is a LIKE
    Column("submission_set_uuid", String(64), nullable=False),
    Column("registered_at", UtcDateTime, nullable=False),
    Column("message_id", BigInteger, nullable=True),  # the ITI-41/42 that registered it
    Column("metadata", Text, nullable=False),  # the ExtrinsicObject, as answered in LeafClass
    # FindDocuments: the patient's entries of a status, newest first; most parameters then filter few rows
    Index("ix_xds_documents_patient", "patient_id", "status", "creation_time"),
    Index("ix_xds_documents_unique_id", "unique_id"),
    Index("ix_xds_documents_lid", "lid"),
    # FindDocuments by the EMPI's person: whichever of its ids the entries were registered under
    Index("ix_xds_documents_person_status", "person_id", "status", "creation_time"),
    Index("ix_xds_documents_submission_set", "submission_set_uuid"),
)

# eventCodeList, confidentialityCode: several per entry, "any of" within a parameter, "all of" across
document_codes = Table(
    "xds_document_codes",
    metadata,
    Column("document_id", BigInteger, primary_key=True, autoincrement=False),
    Column("attribute", String(24), primary_key=True),  # eventCodeList | confidentialityCode
    Column("code", String(_CODE), primary_key=True),
    Index("ix_xds_document_codes_code", "attribute", "code", "document_id"),
)

# urn:ihe:iti:xds:2013:referenceIdList (FindDocumentsByReferenceId; XDS-I.b's accession and study UIDs)
reference_ids = Table(
    "xds_reference_ids",
    metadata,
    Column("document_id", BigInteger, primary_key=True, autoincrement=False),
    Column("value", String(256), primary_key=True),
    Index("ix_xds_reference_ids_value", "value", "document_id"),
)

submission_sets = Table(
    "xds_submission_sets",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("entry_uuid", String(64), nullable=False, unique=True),
    Column("unique_id", String(128), nullable=False, unique=True),
    Column("status", String(12), nullable=False),
    Column("patient_id", String(256), nullable=False),
    Column("person_id", BigInteger, nullable=True),
    Column("source_id", String(64), nullable=False),
    Column("submission_time", String(14), nullable=False),
    Column("content_type_code", String(_CODE), nullable=True),
    Column("author_persons", Text, nullable=True),
    Column("registered_at", UtcDateTime, nullable=False),
    Column("message_id", BigInteger, nullable=True),
    Column("metadata", Text, nullable=False),  # the RegistryPackage
    Index("ix_xds_submission_sets_patient", "patient_id", "status", "submission_time"),
    Index("ix_xds_submission_sets_person", "person_id"),
)

folders = Table(
    "xds_folders",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("entry_uuid", String(64), nullable=False, unique=True),
    Column("lid", String(64), nullable=False),
    Column("version", Integer, nullable=False),
    Column("unique_id", String(128), nullable=False),
    Column("status", String(12), nullable=False),
    Column("patient_id", String(256), nullable=False),
    Column("person_id", BigInteger, nullable=True),
    Column("last_update_time", String(14), nullable=False),  # set by the registry (TF-3 §4.2.3.4)
    Column("registered_at", UtcDateTime, nullable=False),
    Column("message_id", BigInteger, nullable=True),
    Column("metadata", Text, nullable=False),
    Index("ix_xds_folders_patient", "patient_id", "status", "last_update_time"),
    Index("ix_xds_folders_unique_id", "unique_id"),
    Index("ix_xds_folders_person", "person_id"),
)

folder_codes = Table(
    "xds_folder_codes",
    metadata,
    Column("folder_id", BigInteger, primary_key=True, autoincrement=False),
    Column("code", String(_CODE), primary_key=True),
    Index("ix_xds_folder_codes_code", "code", "folder_id"),
)

# HasMember (SubmissionSet -> DocumentEntry/Folder, Folder -> DocumentEntry), RPLC, APND, XFRM,
# XFRM_RPLC, signs: by their ends' entryUUIDs, so GetAssociations and GetRelatedDocuments are lookups
associations = Table(
    "xds_associations",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=False),
    Column("entry_uuid", String(64), nullable=False, unique=True),
    Column("type", String(64), nullable=False),
    Column("source_uuid", String(64), nullable=False),
    Column("target_uuid", String(64), nullable=False),
    Column("status", String(12), nullable=False),
    Column("registered_at", UtcDateTime, nullable=False),
    Column("message_id", BigInteger, nullable=True),
    Column("metadata", Text, nullable=False),
    Index("ix_xds_associations_source", "source_uuid", "type"),
    Index("ix_xds_associations_target", "target_uuid", "type"),
)

# The repository's documents (ITI-41 stores, ITI-43 retrieves): each uniqueId's bytes in the content
# store (``blobs.BlobStore``), by SHA-256; sha1 and size as registered in the metadata.
repository_documents = Table(
    "xds_repository_documents",
    metadata,
    Column("unique_id", String(128), primary_key=True),
    Column("address", String(64), nullable=False),  # SHA-256: the file in the content store
    Column("hash", String(40), nullable=False),  # SHA-1, lower-case hex
    Column("size", BigInteger, nullable=False),
    Column("mime_type", String(128), nullable=False),
    Column("stored_at", UtcDateTime, nullable=False),
    Column("message_id", BigInteger, nullable=True),  # the ITI-41 that provided it
)
