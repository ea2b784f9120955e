"""ITI-18 at the registry: a parsed stored query run against the registry's tables, as objects to answer.

LeafClass answers are the stored ebRIM elements with their status as it is now (an entry an RPLC
deprecated says Deprecated); ObjectRef answers are ``rim:ObjectRef`` elements. The patient of a
FindDocuments must be known to the EMPI (XDSUnknownPatientId, TF-2 §3.18.4.1.3, as policy); a
result longer than the configured limit is XDSTooManyResults; a LeafClass answer by ids about more
than one patient is XDSResultNotSinglePatient. The queries not listed in ``_RUNNERS`` are answered
with XDSRegistryError naming the query, never with an empty success.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lxml import etree
from sqlalchemy import Connection

from ihe._ebxml import STATUS_TYPE, RegistryError
from ihe.iti18 import QueryError, StoredQuery, object_ref
from profiles.xds.find_documents import TooManyResults, find_documents
from profiles.xds.get_queries import Answer, NotSinglePatient, get_associations, get_documents

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


def _find(conn: Connection, query: StoredQuery, actor: XdsActor) -> QueryAnswer:
    patient = query.value(f"{_DE}PatientId") or ""
    person = actor.patients.person_of(conn, patient)
    if person is None:
        raise QueryError("XDSUnknownPatientId", f"patient id {patient} is not known to the registry", patient)
    found = find_documents(conn, query, limit=actor.config.max_leaf_class, person=person)
    leaf = query.return_type == "LeafClass"
    objects = [_leaf(f.metadata, f.status) if leaf else object_ref(f.entry_uuid) for f in found]
    return QueryAnswer(objects, patients=[patient])


def _get_documents(conn: Connection, query: StoredQuery, actor: XdsActor) -> QueryAnswer:
    answer = get_documents(conn, query)
    return QueryAnswer(_objects(answer, query.return_type == "LeafClass"))


def _get_associations(conn: Connection, query: StoredQuery, actor: XdsActor) -> QueryAnswer:
    leaf = query.return_type == "LeafClass"
    return QueryAnswer(_objects(get_associations(conn, query.values("$uuid"), leaf=leaf), leaf))


def _get_documents_and_associations(conn: Connection, query: StoredQuery, actor: XdsActor) -> QueryAnswer:
    leaf = query.return_type == "LeafClass"
    documents = get_documents(conn, query)
    associations = get_associations(conn, documents.uuids, leaf=leaf) if documents.uuids else Answer()
    return QueryAnswer(_objects(documents, leaf) + _objects(associations, leaf))


_RUNNERS: dict[str, Callable[[Connection, StoredQuery, XdsActor], QueryAnswer]] = {
    "FindDocuments": _find,
    "FindDocumentsByReferenceId": _find,
    "GetDocuments": _get_documents,
    "GetAssociations": _get_associations,
    "GetDocumentsAndAssociations": _get_documents_and_associations,
}


def run_query(conn: Connection, query: StoredQuery, actor: XdsActor) -> QueryAnswer:
    runner = _RUNNERS.get(query.name)
    if runner is None:
        raise QueryError(
            "XDSRegistryError", f"stored query {query.name} is not served by this registry yet", query.id
        )
    try:
        return runner(conn, query, actor)
    except TooManyResults as exc:
        raise QueryError("XDSTooManyResults", str(exc)) from exc
    except NotSinglePatient as exc:
        raise QueryError("XDSResultNotSinglePatient", str(exc)) from exc
