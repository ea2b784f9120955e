"""The web console's documents section (engine.console.sections): a patient's XDS documents.

* ``GET /api/v1/documents?patient_id=&domain=``: the patient's DocumentEntries, newest first, paged
  (``limit``, ``before`` = the ``next_before`` of the page before). The patient is found as ITI-18
  FindDocuments finds it: through the EMPI's person, so the entries registered under any of its ids
  (and those of persons merged into it) come back; a patient id the EMPI does not know finds the
  entries registered under exactly that id. Audited first: DICOM 110112 Query, the patient as
  participant object, the query as the query object.
* ``GET /api/v1/documents/domains``: the EMPI's identity domains, for the patient form (no PHI).
* ``GET /api/v1/documents/{entry_uuid}``: one entry's metadata and its associations (replaced by,
  replaces, transforms, appendix...); audited as 110110 Patient Record, action R.
* ``GET /api/v1/documents/{entry_uuid}/content``: the document from the repository here (as ITI-43
  reads it: verified against its hashes), as JSON with its text when it is text (CDA: XML decoded
  per its declaration) and its base64; audited as 110106 Export, the document and the patient as
  participant objects. 404 when the repository here does not hold it.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response

from engine.audit import EXPORT, PATIENT_RECORD, AuditEvent, EventId
from engine.console import events, params
from engine.console.accounts import Principal
from engine.console.sections import (
    ConsoleSection,
    SectionRoute,
    SectionTools,
    client_address,
    error,
    json_response,
)
from engine.store.db import read_retrying
from ihe._ebxml import PATIENT_CX
from ihe.iti43 import DocumentRequest
from profiles.empi.domains import NATIONAL, Domains
from profiles.xds.actor import XdsActor
from profiles.xds.browse import (
    STATUSES,
    Filters,
    decode_text,
    dtm14,
    entry_detail,
    find_entries,
    held_document,
    is_text,
    parse_cursor,
)

__all__ = ["SECTION"]

MAX_SHOWN = 16 * 2**20  # a document larger than this is not sent to a browser (base64 in JSON)

_T = TypeVar("_T")
_OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")
_UUID = re.compile(
    r"^(urn:uuid:)?([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})$"
)
_MAX_LIMIT = 200
_LIST_QUERY = (
    ("patient_id", "the patient's id in the domain; or the whole affinity-domain id ID^^^&OID&ISO"),
    ("domain", "the id's EMPI domain (its id, e.g. hospital-a, or its OID); default: the national ID card"),
    ("status", "approved, deprecated or all (default)"),
    ("class_code", "classCode: a code, or code^^scheme"),
    ("type_code", "typeCode: a code, or code^^scheme"),
    ("since", "creationTime at or after (2026-11-22, 2026-11-22T08:30+08:00, 7d)"),
    ("until", "creationTime before"),
    ("limit", f"entries per page, 1-{_MAX_LIMIT} (default 50)"),
    ("before", "the next_before of the page before"),
)


# -- the request's parameters -----------------------------------------------------------------------
def _oid_of(domain: str, domains: Domains) -> str:
    known = domains.by_id.get(domain)
    if known is not None:
        return known.oid
    if _OID.match(domain):
        return domain
    raise params.BadParameter(
        f"domain: an EMPI domain ({', '.join(sorted(domains.by_id))}) or an assigning authority OID"
    )


def patient_cx(q: QueryParams, domains: Domains) -> str:
    """The affinity-domain patient id (ID^^^&OID&ISO) the query asks about."""
    given = params.text(q, "patient_id")
    if given is None:
        raise params.BadParameter("patient_id: required (an id with its domain, or ID^^^&OID&ISO)")
    given = given.strip()
    domain = params.text(q, "domain")
    whole = PATIENT_CX.match(given)
    if whole is not None:
        if domain is not None and _oid_of(domain, domains) != whole["oid"]:
            raise params.BadParameter(f"domain: {domain} is not the domain of {given}")
        return given
    if not given or len(given) > 100 or any(c in given for c in "^&~|\\"):
        raise params.BadParameter("patient_id: an id (up to 100 characters, no ^ & ~ | \\) or ID^^^&OID&ISO")
    return f"{given}^^^&{_oid_of(domain or NATIONAL, domains)}&ISO"


def filters_of(q: QueryParams) -> Filters:
    status = (params.text(q, "status") or "all").lower()
    if status not in STATUSES:
        raise params.BadParameter("status: approved, deprecated or all")
    since, until = params.when(q, "since"), params.when(q, "until")
    limit = params.integer(q, "limit", low=1, high=_MAX_LIMIT, default=50)
    before_text = params.text(q, "before")
    before = parse_cursor(before_text) if before_text is not None else None
    if before_text is not None and before is None:
        raise params.BadParameter("before: the next_before of an earlier answer")
    return Filters(
        statuses=STATUSES[status],
        class_code=params.text(q, "class_code"),
        type_code=params.text(q, "type_code"),
        since=dtm14(since) if since is not None else None,
        until=dtm14(until) if until is not None else None,
        limit=limit or 50,
        before=before,
    )


def entry_uuid_of(request: Request) -> str:
    m = _UUID.match(request.path_params["entry_uuid"])
    if m is None:
        raise params.BadParameter("entry_uuid: a DocumentEntry's entryUUID, urn:uuid:8-4-4-4-12")
    return f"urn:uuid:{m[2].lower()}"


# -- audit records ------------------------------------------------------------------------------------
def _document(unique_id: str, repository: str | None) -> dict[str, Any]:
    # type 2 system object, role 3 report, id type 9 report number (as ITI-43's record, TF-2 §3.43.5.1)
    return {
        "type": 2,
        "role": 3,
        "id_type": "9",
        "id": unique_id,
        "detail": {"Repository Unique Id": repository or ""},
    }


def _event(
    event_id: EventId, action: str, who: Principal, request: Request, objects: list[dict[str, Any]], text: str
) -> AuditEvent:
    return events.section_event(
        "documents",
        event_id,
        action,
        user=who.username,
        network=client_address(request),
        objects=objects,
        description=text,
    )


def query_event(who: Principal, request: Request, patients: Sequence[str], found: int) -> AuditEvent:
    """110112 Query, action E: the patients asked about (and the ids their entries were registered
    under), and the query itself (the URL's query, base64)."""
    query = events.query_object(request.url.path, request.url.query, QueryEncoding="UTF-8")
    text = f"XDS documents of {patients[0]}: {found} entries shown"
    return _event(events.QUERY, "E", who, request, [*events.patient_objects(patients), query], text)


# -- the routes -----------------------------------------------------------------------------------------
class DocumentsApi:
    def __init__(self, tools: SectionTools) -> None:
        self.tools = tools
        self.services = tools.services

    @property
    def actor(self) -> XdsActor:
        return XdsActor.of(self.services)

    async def _read(self, fn: Callable[..., _T], *args: Any) -> _T:
        """``fn(conn, *args)`` on a read connection, off the event loop."""

        def work() -> _T:
            with self.services.reads.connect() as conn:
                return fn(conn, *args)

        return await run_in_threadpool(read_retrying, work)

    async def domains(self, request: Request, who: Principal) -> Response:
        domains = self.actor.patients.domains
        listed = [
            {
                "id": d.id,
                "namespace": d.namespace,
                "oid": d.oid,
                "description": (
                    domains.config_domains[d.id].description if d.id in domains.config_domains else ""
                ),
            }
            for d in domains.by_id.values()
        ]
        return json_response({"domains": listed, "default": NATIONAL})

    async def list(self, request: Request, who: Principal) -> Response:
        q = request.query_params
        actor = self.actor
        cx = patient_cx(q, actor.patients.domains)
        filters = filters_of(q)

        def find(conn: Any) -> tuple[int | None, list[dict[str, Any]], Any]:
            person = actor.patients.person_of(conn, cx)
            found, following = find_entries(conn, person=person, patient_id=cx, filters=filters)
            return person, found, following

        person, found, following = await self._read(find)
        ids = [cx, *sorted({e["patient_id"] for e in found} - {cx})]
        refused = await self.tools.audited(request, query_event(who, request, ids, len(found)))
        if refused is not None:
            return refused
        return json_response(
            {
                "patient": {"patient_id": cx, "person_id": person, "known": person is not None},
                "documents": found,
                "next_before": f"{following[0]}:{following[1]}" if following is not None else None,
            }
        )

    async def entry(self, request: Request, who: Principal) -> Response:
        entry_uuid = entry_uuid_of(request)
        found = await self._read(entry_detail, entry_uuid)
        if found is None:
            return error(404, f"no DocumentEntry {entry_uuid} in the registry")
        event = _event(
            PATIENT_RECORD,
            "R",
            who,
            request,
            [
                *events.patient_objects([found["patient_id"]]),
                _document(found["unique_id"], found["repository_unique_id"]),
            ],
            f"XDS DocumentEntry {entry_uuid} read",
        )
        refused = await self.tools.audited(request, event)
        if refused is not None:
            return refused
        return json_response(found)

    async def content(self, request: Request, who: Principal) -> Response:
        entry_uuid = entry_uuid_of(request)
        actor = self.actor
        ours = actor.config.repository_unique_id
        looked = await self._read(held_document, entry_uuid)
        if looked is None:
            return error(404, f"no DocumentEntry {entry_uuid} in the registry")
        row, held = looked
        if held is None:
            where = row.repository_unique_id or "(none)"
            return error(
                404,
                f"the repository here ({ours}) does not hold document {row.unique_id} "
                f"(its repository: {where})",
            )
        wanted = DocumentRequest(ours, row.unique_id)
        got, errors = await self._read(actor.repository.retrieve, [wanted])
        if not got:
            return error(500, errors[0].context if errors else f"document {row.unique_id} could not be read")
        document = got[0]
        if len(document.content) > MAX_SHOWN:
            return error(
                413,
                f"document {row.unique_id} has {len(document.content):,} bytes, more than the console "
                f"shows ({MAX_SHOWN // 2**20} MiB): retrieve it with ITI-43 (hie xds get)",
            )
        event = _event(
            EXPORT,
            "R",
            who,
            request,
            [*events.patient_objects([row.patient_id]), _document(row.unique_id, ours)],
            f"XDS document {row.unique_id} shown",
        )
        refused = await self.tools.audited(request, event)
        if refused is not None:
            return refused
        text, encoding = decode_text(document.content) if is_text(document.mime_type) else (None, None)
        return json_response(
            {
                "entry_uuid": row.entry_uuid,
                "unique_id": row.unique_id,
                "mime_type": document.mime_type,
                "size": len(document.content),
                "hash": document.blob.sha1,
                "encoding": encoding,
                "text": text,
                "base64": base64.b64encode(document.content).decode("ascii"),
            }
        )


def routes(tools: SectionTools) -> Sequence[SectionRoute]:
    api = DocumentsApi(tools)
    return [
        SectionRoute(
            "",
            api.list,
            "patients",
            "a patient's XDS DocumentEntries, newest first (the EMPI's person: all its ids); audited 110112",
            query=_LIST_QUERY,
        ),
        SectionRoute(
            "/domains", api.domains, "patients", "the EMPI's identity domains, for the patient form"
        ),
        SectionRoute(
            "/{entry_uuid}",
            api.entry,
            "patients",
            "one DocumentEntry's metadata and associations; audited 110110 R",
        ),
        SectionRoute(
            "/{entry_uuid}/content",
            api.content,
            "patients",
            "the document from the repository here (text for XML and text types, and base64); audited 110106",
        ),
    ]


SECTION = ConsoleSection(
    id="documents", permission="patients", static=Path(__file__).with_name("pages"), routes=routes, order=20
)
