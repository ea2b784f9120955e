"""The web console's studies section (``engine.console.sections``): the regional archive's DICOM
studies, searched and opened (``profiles.dicom.browse`` does the reading).

* ``GET /api/v1/studies``: the studies matching the filters, newest received first, paged with
  ``limit`` and ``before`` (``next_before`` of the previous page); audited as 110112 Query;
* ``GET /api/v1/studies/{study_uid}``: one study, its series and their instances, the WADO-RS
  address of the study when a ``wado://`` channel serves it; audited as 110103 DICOM Instances
  Accessed.

Both need the ``patients`` permission (admin, integrator, auditor); the pages are ``pages/``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response

from engine.console import params
from engine.console.accounts import Principal
from engine.console.sections import (
    ConsoleSection,
    SectionRoute,
    SectionTools,
    client_address,
    error,
    json_response,
)
from profiles.dicom.archive import valid_uid
from profiles.dicom.browse import (
    Cursor,
    StudySearch,
    accessed_event,
    parse_study_date,
    patient_key,
    query_event,
    search_studies,
    study_detail,
    wado_base,
)

__all__ = ["SECTION"]

_MODALITY = re.compile(r"^[A-Z0-9]{1,16}$")
_AE = re.compile(r"^[^\\\x00-\x1f]{1,16}$")
FILTERS = (
    "patient_id",
    "name",
    "accession",
    "modality",
    "since",
    "until",
    "source_ae",
    "status",
    "published",
)


def _date(q: QueryParams, name: str) -> str | None:
    value = params.text(q, name)
    if value is None:
        return None
    found = parse_study_date(value)
    if found is None:
        raise params.BadParameter(f"{name}: a study date, YYYYMMDD or YYYY-MM-DD (e.g. 2026-12-01)")
    return found


def _choice(q: QueryParams, name: str, allowed: tuple[str, ...]) -> str | None:
    value = params.text(q, name)
    if value is not None and value not in allowed:
        raise params.BadParameter(f"{name}: one of {', '.join(allowed)}")
    return value


def _search(q: QueryParams) -> StudySearch:
    modality = params.text(q, "modality")
    if modality is not None:
        modality = modality.strip().upper()
        if not _MODALITY.match(modality):
            raise params.BadParameter("modality: a DICOM modality code such as CT, MR, DX, US")
    source_ae = params.text(q, "source_ae")
    if source_ae is not None:
        source_ae = source_ae.strip()
        if not _AE.match(source_ae):
            raise params.BadParameter("source_ae: an AE title (1 to 16 characters)")
    since, until = _date(q, "since"), _date(q, "until")
    if since is not None and until is not None and since > until:
        raise params.BadParameter("since: after until")
    published = _choice(q, "published", ("yes", "no"))
    before_text = params.text(q, "before")
    before = None
    if before_text is not None:
        before = Cursor.parse(before_text)
        if before is None:
            raise params.BadParameter("before: the next_before of a previous page")
    limit = params.integer(q, "limit", low=1, high=500, default=50)
    assert limit is not None
    return StudySearch(
        patient_id=params.text(q, "patient_id"),
        name=params.text(q, "name"),
        accession=params.text(q, "accession"),
        modality=modality,
        since=since,
        until=until,
        source_ae=source_ae,
        status=_choice(q, "status", ("known", "unknown")),
        published=None if published is None else published == "yes",
        before=before,
        limit=limit,
    )


def routes(tools: SectionTools) -> Sequence[SectionRoute]:
    services = tools.services

    async def list_studies(request: Request, who: Principal) -> Response:
        q = request.query_params
        search = _search(q)
        rows, following = await run_in_threadpool(_read_page, search)
        asked = [(name, q[name]) for name in FILTERS if q.get(name)]
        text = "&".join(f"{k}={v}" for k, v in asked)
        shown = [patient_key(r["patient_id"], r["issuer"]) for r in rows]
        event = query_event(
            user=who.username,
            network=client_address(request),
            uri=request.url.path,
            query=text,
            patients=[*([search.patient_id] if search.patient_id else []), *shown],
            matches=len(rows),
        )
        refused = await tools.audited(request, event)
        if refused is not None:
            return refused
        return json_response({"studies": rows, "next_before": following})

    def _read_page(search: StudySearch) -> tuple[list[dict[str, Any]], str | None]:
        with services.reads.connect() as conn:
            return search_studies(conn, search)

    async def one_study(request: Request, who: Principal) -> Response:
        uid = request.path_params["study_uid"]
        if not valid_uid(uid):
            raise params.BadParameter("study_uid: a Study Instance UID (digits and dots, 64 at most)")
        study = await run_in_threadpool(_read_study, uid)
        if study is None:
            return error(404, f"no study {uid} in the archive")
        refused = await tools.audited(
            request, accessed_event(user=who.username, network=client_address(request), study=study)
        )
        if refused is not None:
            return refused
        base = wado_base(services.app, request.url.hostname or "")
        study["wado"] = (
            {"study": f"{base}/studies/{uid}", "metadata": f"{base}/studies/{uid}/metadata"} if base else None
        )
        return json_response(study)

    def _read_study(uid: str) -> dict[str, Any] | None:
        with services.reads.connect() as conn:
            return study_detail(conn, uid)

    return [
        SectionRoute(
            "",
            list_studies,
            "patients",
            "The archive's DICOM studies matching the filters, newest received first (audited: 110112 Query)",
            query=(
                ("patient_id", "Patient ID (0010,0020) as the PACS sent it"),
                ("name", "words of the patient's name (any group, case ignored)"),
                ("accession", "Accession Number"),
                ("modality", "a modality of one of its series (CT, MR...)"),
                ("since", "study date from (YYYYMMDD or YYYY-MM-DD)"),
                ("until", "study date until, inclusive (YYYYMMDD or YYYY-MM-DD)"),
                ("source_ae", "the AE title of the PACS that stored it"),
                ("status", "known | unknown: the EMPI knows the patient or not"),
                ("published", "yes | no: its XDS-I.b manifest is registered"),
                ("before", "next_before of the previous page"),
                ("limit", "studies per page, 1 to 500 (50)"),
            ),
        ),
        SectionRoute(
            "/{study_uid}",
            one_study,
            "patients",
            "One study with its series and instances (audited: 110103 DICOM Instances Accessed)",
        ),
    ]


SECTION = ConsoleSection(
    id="studies", permission="patients", static=Path(__file__).with_name("pages"), routes=routes, order=40
)
