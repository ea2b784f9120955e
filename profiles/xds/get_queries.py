"""The Get… stored queries that look objects up by id (ITI TF-2 §3.18.4.1.2.3.7.5-.13): GetDocuments,
GetFolders, GetAssociations, GetDocumentsAndAssociations, GetSubmissionSets, GetFoldersForDocument
and GetRelatedDocuments.

By uniqueId a query may find several objects (the versions of one entry, TF-3 §4.1.4). A LeafClass
answer about more than one patient is refused with XDSResultNotSinglePatient and no metadata
(§3.18.4.1.2.3.8; NIST test 12368): a consumer asking by ids must not receive another patient's
documents. ObjectRef answers carry no metadata and are not refused.
"""

from __future__ import annotations

from sqlalchemy import Connection, select

from ihe._ebxml import HAS_MEMBER, STABLE
from ihe.iti18 import StoredQuery
from profiles.xds.lookups import (
    Answer,
    NotSinglePatient,
    chunks,
    objects,
    objects_in,
    single_patient,
    touching,
)
from profiles.xds.schema import associations, documents, folders, submission_sets

__all__ = [
    "Answer",
    "NotSinglePatient",
    "document_uuids",
    "get_associations",
    "get_documents",
    "get_documents_and_associations",
    "get_folders",
    "get_folders_for_document",
    "get_related_documents",
    "get_submission_sets",
]

_DE = "$XDSDocumentEntry"
_IHE = "urn:ihe:iti:2007:AssociationType:"
_RIM = "urn:oasis:names:tc:ebxml-regrep:AssociationType:"


def _leaf(query: StoredQuery) -> bool:
    return query.return_type == "LeafClass"


def get_documents(conn: Connection, query: StoredQuery) -> Answer:
    """GetDocuments: by entryUUIDs or by uniqueIds."""
    d = documents
    by_uuid = query.values(f"{_DE}EntryUUID")
    condition = d.c.entry_uuid.in_(by_uuid) if by_uuid else d.c.unique_id.in_(query.values(f"{_DE}UniqueId"))
    return single_patient(objects(conn, d, condition, leaf=_leaf(query)), leaf=_leaf(query))


def document_uuids(conn: Connection, query: StoredQuery) -> list[str]:
    """The entryUUIDs a query's $XDSDocumentEntryEntryUUID or $XDSDocumentEntryUniqueId names, if
    registered."""
    return get_documents(conn, StoredQuery(query.id, query.name, "ObjectRef", query.params)).uuids


def get_folders(conn: Connection, query: StoredQuery) -> Answer:
    """GetFolders: by entryUUIDs or by uniqueIds."""
    f = folders
    by_uuid = query.values("$XDSFolderEntryUUID")
    condition = (
        f.c.entry_uuid.in_(by_uuid) if by_uuid else f.c.unique_id.in_(query.values("$XDSFolderUniqueId"))
    )
    return single_patient(objects(conn, f, condition, leaf=_leaf(query)), leaf=_leaf(query))


def get_associations(conn: Connection, uuids: list[str], *, leaf: bool) -> Answer:
    """GetAssociations: every Association with one of ``uuids`` as its source or target."""
    return touching(conn, uuids, leaf=leaf)


def get_documents_and_associations(conn: Connection, query: StoredQuery) -> Answer:
    found = get_documents(conn, query)
    return found + get_associations(conn, found.uuids, leaf=_leaf(query)) if found.uuids else found


def get_submission_sets(conn: Connection, query: StoredQuery) -> Answer:
    """GetSubmissionSets: the SubmissionSets that hold (HasMember) any of the DocumentEntries or
    Folders in $uuid, and those HasMember associations."""
    a, ss = associations, submission_sets
    held = [
        (r.entry_uuid, r.source_uuid)
        for batch in chunks(query.values("$uuid"))
        for r in conn.execute(
            select(a.c.entry_uuid, a.c.source_uuid)
            .join(ss, ss.c.entry_uuid == a.c.source_uuid)
            .where(a.c.type == HAS_MEMBER, a.c.target_uuid.in_(batch))
            .order_by(a.c.id)
        )
    ]
    leaf = _leaf(query)
    sets = objects_in(conn, ss, dict.fromkeys(s for _, s in held), leaf=leaf)
    return single_patient(sets, leaf=leaf) + objects_in(conn, a, [u for u, _ in held], leaf=leaf)


def get_folders_for_document(conn: Connection, query: StoredQuery) -> Answer:
    """GetFoldersForDocument: the Folders that hold the DocumentEntry (each entry of its uniqueId)."""
    a, f = associations, folders
    targets = document_uuids(conn, query)
    holders = [
        r.source_uuid
        for batch in chunks(targets)
        for r in conn.execute(
            select(a.c.source_uuid)
            .join(f, f.c.entry_uuid == a.c.source_uuid)
            .where(a.c.type == HAS_MEMBER, a.c.target_uuid.in_(batch))
        )
    ]
    return single_patient(objects_in(conn, f, dict.fromkeys(holders), leaf=_leaf(query)), leaf=_leaf(query))


def _association_type(value: str) -> str:
    """An $AssociationTypes value as stored (the full URN); a bare ``RPLC`` is read as IHE's."""
    if value.startswith("urn:"):
        return value
    return (_RIM if value == "HasMember" else _IHE) + value


def get_related_documents(conn: Connection, query: StoredQuery) -> Answer:
    """GetRelatedDocuments: the associations of $AssociationTypes between the DocumentEntry and other
    DocumentEntries (of $XDSDocumentEntryType, stable by default), those entries, and the entry
    itself; nothing at all when it has no such relation."""
    a, d = associations, documents
    start = document_uuids(conn, query)
    types = [_association_type(t) for t in query.values("$AssociationTypes")]
    related: list[tuple[str, str]] = []  # (association, other end)
    for batch in chunks(start):
        for r in conn.execute(
            select(a.c.entry_uuid, a.c.source_uuid, a.c.target_uuid)
            .where(a.c.type.in_(types), a.c.source_uuid.in_(batch) | a.c.target_uuid.in_(batch))
            .order_by(a.c.id)
        ):
            related.append((r.entry_uuid, r.target_uuid if r.source_uuid in start else r.source_uuid))
    wanted = query.values(f"{_DE}Type") or [STABLE]
    others = {
        r.entry_uuid
        for batch in chunks({o for _, o in related})
        for r in conn.execute(
            select(d.c.entry_uuid).where(d.c.entry_uuid.in_(batch), d.c.object_type.in_(wanted))
        )
    }
    kept = [(u, o) for u, o in related if o in others]
    if not kept:
        return Answer()
    leaf = _leaf(query)
    entries = objects_in(conn, d, dict.fromkeys([*start, *(o for _, o in kept)]), leaf=leaf)
    return single_patient(entries, leaf=leaf) + objects_in(conn, a, [u for u, _ in kept], leaf=leaf)
