"""FindSubmissionSets and FindFolders over the registry tables (ITI TF-2 §3.18.4.1.2.3.7.2, .3).

As FindDocuments: one SELECT by the EMPI's person and status (their indexes), each other parameter
a condition. FindSubmissionSets: sourceId and contentTypeCode as ``IN``, submissionTime as
``From <= t < To``, authors as LIKE on each stored author line. FindFolders: lastUpdateTime as a
range (the registry's own time, TF-3 §4.2.3.4.4), codeList as one ``EXISTS`` per repetition (OR
within, AND across). Newest first; a LeafClass answer longer than the limit is XDSTooManyResults.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, and_, exists, or_

from ihe.iti18 import StoredQuery
from profiles.xds.find_documents import TooManyResults, author_line, statuses
from profiles.xds.lookups import Answer, objects
from profiles.xds.registry import dtm14
from profiles.xds.schema import folder_codes, folders, submission_sets

__all__ = ["find_folders", "find_submission_sets"]

_SS = "$XDSSubmissionSet"


def _range(conditions: list[Any], column: Any, start: str | None, stop: str | None) -> None:
    if start:
        conditions.append(column >= dtm14(start))
    if stop:
        conditions.append(column < dtm14(stop))


def _bounded(
    conn: Connection, query: StoredQuery, table: Any, conditions: list[Any], newest: Any, limit: int
) -> Answer:
    """The rows, newest first, at most the limit (ten times it for ObjectRef)."""
    cap = limit if query.return_type == "LeafClass" else limit * 10
    leaf = query.return_type == "LeafClass"
    answer = objects(conn, table, and_(*conditions), leaf=leaf, order=newest.desc(), limit=cap + 1)
    if len(answer.uuids) > cap:
        raise TooManyResults(cap)
    return answer


def find_submission_sets(conn: Connection, query: StoredQuery, person: int, *, limit: int = 1000) -> Answer:
    ss = submission_sets
    conditions: list[Any] = [ss.c.person_id == person, ss.c.status.in_(statuses(query, f"{_SS}Status"))]
    if f"{_SS}SourceId" in query.params:
        conditions.append(ss.c.source_id.in_(query.values(f"{_SS}SourceId")))
    if f"{_SS}ContentType" in query.params:
        conditions.append(ss.c.content_type_code.in_(query.values(f"{_SS}ContentType")))
    _range(
        conditions,
        ss.c.submission_time,
        query.value(f"{_SS}SubmissionTimeFrom"),
        query.value(f"{_SS}SubmissionTimeTo"),
    )
    authors = query.values(f"{_SS}AuthorPerson")
    if authors:
        conditions.append(or_(*(author_line(ss.c.author_persons, a) for a in authors)))
    return _bounded(conn, query, ss, conditions, ss.c.submission_time, limit)


def find_folders(conn: Connection, query: StoredQuery, person: int, *, limit: int = 1000) -> Answer:
    f = folders
    conditions: list[Any] = [f.c.person_id == person, f.c.status.in_(statuses(query, "$XDSFolderStatus"))]
    _range(
        conditions,
        f.c.last_update_time,
        query.value("$XDSFolderLastUpdateTimeFrom"),
        query.value("$XDSFolderLastUpdateTimeTo"),
    )
    for alternatives in query.params.get("$XDSFolderCodeList", []):  # each repetition: AND
        conditions.append(
            exists().where(folder_codes.c.folder_id == f.c.id, folder_codes.c.code.in_(alternatives))
        )
    return _bounded(conn, query, f, conditions, f.c.last_update_time, limit)
