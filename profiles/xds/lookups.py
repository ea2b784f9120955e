"""Registry objects looked up for stored-query answers: the rows of one table that meet a condition, as
an ``Answer`` (entryUUIDs in order, metadata for LeafClass, status now, the patients they are about).

Shared by the Get… queries (``get_queries``), the …AndContents and GetAll queries (``contents``) and
the Find… queries of packages (``find_packages``). A Folder's ``lastUpdateTime`` is the registry's
column, written into its metadata as it is answered (TF-3 §4.2.3.4.4: the registry keeps it as
documents are added). Lists of ids are asked in chunks, so a long ObjectRef answer never builds one
statement with more parameters than a database takes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from lxml import etree
from sqlalchemy import Connection, Table, and_, exists, literal, or_, select

from ihe._ebxml import HAS_MEMBER, STABLE, put_slot
from ihe.iti18 import StoredQuery
from profiles.xds.schema import associations, document_codes, documents, folders

__all__ = [
    "Answer",
    "NotSinglePatient",
    "between",
    "chunks",
    "content_conditions",
    "members",
    "objects",
    "objects_in",
    "single_patient",
    "touching",
]

_DE = "$XDSDocumentEntry"
_CHUNK = 500
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True)  # our own stored metadata


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
    patients: set[str] = field(default_factory=set)  # of its DocumentEntries, SubmissionSets, Folders

    def __add__(self, other: Answer) -> Answer:
        seen = set(self.uuids)
        return Answer(
            self.uuids + [u for u in other.uuids if u not in seen],
            self.metadata | other.metadata,
            self.status | other.status,
            self.patients | other.patients,
        )


def chunks(values: Iterable[str]) -> Iterator[list[str]]:
    batch: list[str] = []
    for value in values:
        batch.append(value)
        if len(batch) == _CHUNK:
            yield batch
            batch = []
    if batch:
        yield batch


def _folder_metadata(metadata: str, last_update_time: str) -> str:
    element = etree.fromstring(metadata, _PARSER)
    put_slot(element, "lastUpdateTime", last_update_time)
    return str(etree.tostring(element, encoding="unicode"))


def objects(
    conn: Connection,
    table: Table,
    condition: Any,
    *,
    leaf: bool,
    order: Any = None,
    limit: int | None = None,
) -> Answer:
    """The rows of ``table`` (documents, submission_sets, folders or associations) meeting ``condition``,
    in ``order`` (by default, the order they were registered), at most ``limit``."""
    c = table.c
    columns = [
        c.entry_uuid,
        c.status,
        c.metadata if leaf else literal("").label("metadata"),
        c.patient_id if "patient_id" in c else literal("").label("patient_id"),
        c.last_update_time if table is folders else literal("").label("last_update_time"),
    ]
    answer = Answer()
    statement = select(*columns).where(condition).order_by(*([] if order is None else [order]), c.id)
    for row in conn.execute(statement if limit is None else statement.limit(limit)):
        answer.uuids.append(row.entry_uuid)
        answer.status[row.entry_uuid] = row.status
        if leaf:
            answer.metadata[row.entry_uuid] = (
                _folder_metadata(row.metadata, row.last_update_time) if table is folders else row.metadata
            )
        if row.patient_id:
            answer.patients.add(row.patient_id)
    return answer


def objects_in(conn: Connection, table: Table, uuids: Iterable[str], *, leaf: bool) -> Answer:
    answer = Answer()
    for batch in chunks(uuids):
        answer = answer + objects(conn, table, table.c.entry_uuid.in_(batch), leaf=leaf)
    return answer


def single_patient(answer: Answer, *, leaf: bool) -> Answer:
    """A LeafClass answer about more than one patient is refused (TF-2 §3.18.4.1.2.3.8)."""
    if leaf and len(answer.patients) > 1:
        raise NotSinglePatient(len(answer.patients))
    return answer


def members(conn: Connection, holders: list[str]) -> list[tuple[str, str, str]]:
    """The HasMember associations from ``holders`` (SubmissionSets, Folders): (association, source,
    target) entryUUIDs."""
    a = associations
    found: list[tuple[str, str, str]] = []
    for batch in chunks(holders):
        found += [
            (r.entry_uuid, r.source_uuid, r.target_uuid)
            for r in conn.execute(
                select(a.c.entry_uuid, a.c.source_uuid, a.c.target_uuid)
                .where(a.c.source_uuid.in_(batch), a.c.type == HAS_MEMBER)
                .order_by(a.c.id)
            )
        ]
    return found


def touching(conn: Connection, uuids: list[str], *, leaf: bool) -> Answer:
    """The associations with either end among ``uuids`` (they may point outside them)."""
    a = associations
    answer = Answer()
    for batch in chunks(uuids):
        condition = or_(a.c.source_uuid.in_(batch), a.c.target_uuid.in_(batch))
        answer = answer + objects(conn, a, condition, leaf=leaf)
    return answer


def between(conn: Connection, uuids: list[str], *, leaf: bool) -> Answer:
    """The associations with both ends among ``uuids``, and those from one of ``uuids`` to one of
    those (a SubmissionSet's HasMember of a Folder's HasMember it carried)."""
    a = associations
    inside = set(uuids)
    rows = [
        r
        for batch in chunks(uuids)
        for r in conn.execute(
            select(a.c.id, a.c.entry_uuid, a.c.target_uuid).where(a.c.source_uuid.in_(batch))
        )
    ]
    first = {r.entry_uuid for r in rows if r.target_uuid in inside}
    chosen = sorted(
        (r for r in rows if r.target_uuid in inside or r.target_uuid in first), key=lambda r: r.id
    )
    return objects_in(conn, a, [r.entry_uuid for r in chosen], leaf=leaf)


def content_conditions(query: StoredQuery) -> list[Any]:
    """The conditions on DocumentEntries of GetAll and the …AndContents queries: formatCode (any of),
    confidentialityCode (any of each repetition, all repetitions), objectType (stable by default)."""
    d = documents
    conditions: list[Any] = [d.c.object_type.in_(query.values(f"{_DE}Type") or [STABLE])]
    if f"{_DE}FormatCode" in query.params:
        conditions.append(d.c.format_code.in_(query.values(f"{_DE}FormatCode")))
    for alternatives in query.params.get(f"{_DE}ConfidentialityCode", []):
        conditions.append(
            exists().where(
                document_codes.c.document_id == d.c.id,
                document_codes.c.attribute == "confidentialityCode",
                document_codes.c.code.in_(alternatives),
            )
        )
    return [and_(*conditions)]
