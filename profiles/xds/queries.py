"""ITI-18 at the registry: a parsed stored query run against the registry's tables, as objects to answer.

LeafClass answers are the stored ebRIM elements with their status as it is now (an entry an RPLC
deprecated says Deprecated); ObjectRef answers are ``rim:ObjectRef`` elements. The patient of a
Find… or GetAll must be known to the EMPI (XDSUnknownPatientId, TF-2 §3.18.4.1.3, as policy) and
is found by its person, whichever of its ids its objects were registered under; a result longer
than the configured limit is XDSTooManyResults; a LeafClass answer by ids about more than one
patient is XDSResultNotSinglePatient. All fourteen queries of ``ihe.iti18.QUERIES`` are served.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lxml import etree
from sqlalchemy import Connection

from ihe._ebxml import STATUS_TYPE, RegistryError
from ihe.iti18 import QueryError, StoredQuery, object_ref
from profiles.xds.contents import get_all, get_folder_and_contents, get_submission_set_and_contents
from profiles.xds.find_documents import TooManyResults, find_documents
from profiles.xds.find_packages import find_folders, find_submission_sets
from profiles.xds.get_queries import (
    Answer,
    NotSinglePatient,
    get_associations,
    get_documents,
    get_documents_and_associations,
    get_folders,
    get_folders_for_document,
    get_related_documents,
    get_submission_sets,
)

if TYPE_CHECKING:
    from profiles.xds.actor import XdsActor

__all__ = ["QueryAnswer", "run_query"]

_DE = "$XDSDocumentEntry"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True)  # our own stored metadata


@dataclass
class QueryAnswer:
    objects: list[etree._Element] = field(default_factory=list)
    errors: list[RegistryError] = field(default_factory=list)
    patients: list[str] = field(default_factory=list)  # for the ATNA record


def _leaf(metadata: str, status: str) -> etree._Element:
    element = etree.fromstring(metadata, _PARSER)
    element.set("status", STATUS_TYPE + status)
    return element


def _objects(answer: Answer, leaf: bool) -> list[etree._Element]:
    if not leaf:
        return [object_ref(u) for u in answer.uuids]
    return [_leaf(answer.metadata[u], answer.status[u]) for u in answer.uuids]


def _person(conn: Connection, query: StoredQuery, actor: XdsActor, parameter: str) -> tuple[str, int]:
    patient = query.value(parameter) or ""
    person = actor.patients.person_of(conn, patient)
    if person is None:
        raise QueryError("XDSUnknownPatientId", f"patient id {patient} is not known to the registry", patient)
    return patient, person


def _find(conn: Connection, query: StoredQuery, actor: XdsActor) -> QueryAnswer:
    patient, person = _person(conn, query, actor, f"{_DE}PatientId")
    found = find_documents(conn, query, limit=actor.config.max_leaf_class, person=person)
    leaf = query.return_type == "LeafClass"
    objects = [_leaf(f.metadata, f.status) if leaf else object_ref(f.entry_uuid) for f in found]
    return QueryAnswer(objects, patients=[patient])


def _find_packages(conn: Connection, query: StoredQuery, actor: XdsActor) -> QueryAnswer:
    submission_sets = query.name == "FindSubmissionSets"
    parameter = "$XDSSubmissionSetPatientId" if submission_sets else "$XDSFolderPatientId"
    patient, person = _person(conn, query, actor, parameter)
    find = find_submission_sets if submission_sets else find_folders
    answer = find(conn, query, person, limit=actor.config.max_leaf_class)
    return QueryAnswer(_objects(answer, query.return_type == "LeafClass"), patients=[patient])


def _get_all(conn: Connection, query: StoredQuery, actor: XdsActor) -> QueryAnswer:
    patient, person = _person(conn, query, actor, "$patientId")
    answer = get_all(conn, query, person, actor.config.max_leaf_class)
    return QueryAnswer(_objects(answer, query.return_type == "LeafClass"), patients=[patient])


def _by_ids(run: Callable[[Connection, StoredQuery], Answer]) -> Runner:
    def runner(conn: Connection, query: StoredQuery, actor: XdsActor) -> QueryAnswer:
        answer = run(conn, query)
        return QueryAnswer(
            _objects(answer, query.return_type == "LeafClass"), patients=sorted(answer.patients)
        )

    return runner


def _contents(run: Callable[[Connection, StoredQuery, int], Answer]) -> Runner:
    def runner(conn: Connection, query: StoredQuery, actor: XdsActor) -> QueryAnswer:
        answer = run(conn, query, actor.config.max_leaf_class)
        return QueryAnswer(
            _objects(answer, query.return_type == "LeafClass"), patients=sorted(answer.patients)
        )

    return runner


def _get_associations(conn: Connection, query: StoredQuery) -> Answer:
    return get_associations(conn, query.values("$uuid"), leaf=query.return_type == "LeafClass")


Runner = Callable[[Connection, StoredQuery, "XdsActor"], QueryAnswer]
_RUNNERS: dict[str, Runner] = {
    "FindDocuments": _find,
    "FindDocumentsByReferenceId": _find,
    "FindSubmissionSets": _find_packages,
    "FindFolders": _find_packages,
    "GetAll": _get_all,
    "GetDocuments": _by_ids(get_documents),
    "GetFolders": _by_ids(get_folders),
    "GetAssociations": _by_ids(_get_associations),
    "GetDocumentsAndAssociations": _by_ids(get_documents_and_associations),
    "GetSubmissionSets": _by_ids(get_submission_sets),
    "GetSubmissionSetAndContents": _contents(get_submission_set_and_contents),
    "GetFolderAndContents": _contents(get_folder_and_contents),
    "GetFoldersForDocument": _by_ids(get_folders_for_document),
    "GetRelatedDocuments": _by_ids(get_related_documents),
}


def run_query(conn: Connection, query: StoredQuery, actor: XdsActor) -> QueryAnswer:
    runner = _RUNNERS[query.name]
    try:
        return runner(conn, query, actor)
    except TooManyResults as exc:
        raise QueryError("XDSTooManyResults", str(exc)) from exc
    except NotSinglePatient as exc:
        raise QueryError("XDSResultNotSinglePatient", str(exc)) from exc
