"""The Get… stored queries that look objects up by id: GetDocuments, GetAssociations and
GetDocumentsAndAssociations (ITI TF-2 §3.18.4.1.2.3.7.5, .7, .8).

A LeafClass answer about more than one patient is refused with XDSResultNotSinglePatient and no
metadata (§3.18.4.1.2.3.8; NIST test 12368): a consumer asking by ids must not receive another
patient's documents. ObjectRef answers carry no metadata and are not refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Connection, or_, select

from ihe.iti18 import StoredQuery
from profiles.xds.schema import associations, documents

__all__ = ["Answer", "NotSinglePatient", "get_associations", "get_documents"]

_DE = "$XDSDocumentEntry"


class NotSinglePatient(Exception):
    def __init__(self, patients: int) -> None:
        super().__init__(f"the objects asked for belong to {patients} patients")
        self.patients = patients


@dataclass
class Answer:
    """entryUUIDs in answer order, and each one's stored metadata (empty for ObjectRef)."""

    uuids: list[str] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)  # each object's status now


def get_documents(conn: Connection, query: StoredQuery) -> Answer:
    """GetDocuments: by entryUUIDs or by uniqueIds (several entries may share one: versions)."""
    d = documents
    by_uuid = query.values(f"{_DE}EntryUUID")
    condition = d.c.entry_uuid.in_(by_uuid) if by_uuid else d.c.unique_id.in_(query.values(f"{_DE}UniqueId"))
    rows = conn.execute(
        select(d.c.entry_uuid, d.c.patient_id, d.c.metadata, d.c.status).where(condition).order_by(d.c.id)
    ).all()
    leaf = query.return_type == "LeafClass"
    if leaf and len({r.patient_id for r in rows}) > 1:
        raise NotSinglePatient(len({r.patient_id for r in rows}))
    return Answer(
        [r.entry_uuid for r in rows],
        {r.entry_uuid: r.metadata for r in rows} if leaf else {},
        {r.entry_uuid: r.status for r in rows},
    )


def get_associations(conn: Connection, uuids: list[str], *, leaf: bool) -> Answer:
    """GetAssociations: every Association with one of ``uuids`` as its source or target."""
    a = associations
    rows = conn.execute(
        select(a.c.entry_uuid, a.c.metadata, a.c.status)
        .where(or_(a.c.source_uuid.in_(uuids), a.c.target_uuid.in_(uuids)))
        .order_by(a.c.id)
    ).all()
    return Answer(
        [r.entry_uuid for r in rows],
        {r.entry_uuid: r.metadata for r in rows} if leaf else {},
        {r.entry_uuid: r.status for r in rows},
    )
