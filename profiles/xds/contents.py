"""The stored queries that answer a package with what it holds (ITI TF-2 §3.18.4.1.2.3.7.4, .10, .11):
GetAll (everything about a patient), GetSubmissionSetAndContents and GetFolderAndContents.

* GetAll: the patient's SubmissionSets, DocumentEntries and Folders of the statuses asked, and every
  association touching one of them (it may point outside the answer: an RPLC to an entry of a
  status not asked for).
* …AndContents: the package (by entryUUID or uniqueId), the DocumentEntries it holds that pass
  $XDSDocumentEntryFormatCode / ConfidentialityCode / Type (stable by default), for a SubmissionSet
  the Folders it holds, and only the associations whose both ends are in the answer.

DocumentEntries are filtered in SQL (``lookups.content_conditions``); the answer is bounded like
FindDocuments' (``TooManyResults``: ask for ObjectRef).
"""

from __future__ import annotations

from sqlalchemy import Connection, Table, and_

from ihe.iti18 import StoredQuery
from profiles.xds.find_documents import TooManyResults, statuses
from profiles.xds.lookups import (
    Answer,
    between,
    chunks,
    content_conditions,
    members,
    objects,
    objects_in,
    single_patient,
    touching,
)
from profiles.xds.schema import documents, folders, submission_sets

__all__ = ["get_all", "get_folder_and_contents", "get_submission_set_and_contents"]

_DE = "$XDSDocumentEntry"


def _bounded(answer: Answer, query: StoredQuery, limit: int) -> Answer:
    cap = limit if query.return_type == "LeafClass" else limit * 10
    if len(answer.uuids) > cap:
        raise TooManyResults(cap)
    return answer


def _documents(conn: Connection, query: StoredQuery, uuids: list[str]) -> Answer:
    d, leaf = documents, query.return_type == "LeafClass"
    answer = Answer()
    for batch in chunks(uuids):
        answer = answer + objects(
            conn, d, and_(d.c.entry_uuid.in_(batch), *content_conditions(query)), leaf=leaf
        )
    return answer


def _package_and_contents(
    conn: Connection, query: StoredQuery, table: Table, prefix: str, limit: int
) -> Answer:
    leaf = query.return_type == "LeafClass"
    by_uuid = query.values(f"{prefix}EntryUUID")
    condition = (
        table.c.entry_uuid.in_(by_uuid)
        if by_uuid
        else table.c.unique_id.in_(query.values(f"{prefix}UniqueId"))
    )
    package = objects(conn, table, condition, leaf=leaf)
    if not package.uuids:
        return package
    held = [target for _, _, target in members(conn, package.uuids)]
    answer = package + _documents(conn, query, held)
    if table is submission_sets:
        answer = answer + objects_in(conn, folders, held, leaf=leaf)
    answer = single_patient(answer, leaf=leaf)
    return _bounded(answer + between(conn, answer.uuids, leaf=leaf), query, limit)


def get_submission_set_and_contents(conn: Connection, query: StoredQuery, limit: int) -> Answer:
    return _package_and_contents(conn, query, submission_sets, "$XDSSubmissionSet", limit)


def get_folder_and_contents(conn: Connection, query: StoredQuery, limit: int) -> Answer:
    return _package_and_contents(conn, query, folders, "$XDSFolder", limit)


def get_all(conn: Connection, query: StoredQuery, person: int, limit: int) -> Answer:
    """GetAll for the EMPI's person of $patientId (whichever of its ids its objects were registered
    under)."""
    leaf = query.return_type == "LeafClass"
    d, ss, f = documents, submission_sets, folders
    answer = objects(
        conn,
        ss,
        and_(ss.c.person_id == person, ss.c.status.in_(statuses(query, "$XDSSubmissionSetStatus"))),
        leaf=leaf,
    )
    answer = answer + objects(
        conn,
        d,
        and_(
            d.c.person_id == person,
            d.c.status.in_(statuses(query, f"{_DE}Status")),
            *content_conditions(query),
        ),
        leaf=leaf,
    )
    answer = answer + objects(
        conn, f, and_(f.c.person_id == person, f.c.status.in_(statuses(query, "$XDSFolderStatus"))), leaf=leaf
    )
    _bounded(answer, query, limit)
    return _bounded(answer + touching(conn, answer.uuids, leaf=leaf), query, limit)
