"""The web console's ``uploads`` section (``engine.console.sections``): the CDA upload statistics per
institution, and the validation report of every uploaded document.

* ``GET /api/v1/uploads/stats?month=YYYY-MM`` (permission ``stats``: every role): the month's table
  exactly as ``hie report uploads`` computes it (``profiles.cda.stats.monthly``: the days of the
  month not rolled up yet, and today, are rolled up first, as the command does), the documents
  received, accepted and rejected per day (for the trend chart) and the month's totals. It names
  institutions and counts, never a document or a patient: not audited.
* ``GET /api/v1/uploads/reports?institution=&status=&document_code=&rule=&since=&until=&before=&limit=``
  (permission ``patients``): the uploads newest first, ``limit`` at a time (``next_before`` is the
  cursor of the next page). The list names documents (their 文档流水号): every search is recorded
  first as a DICOM 110112 Query with the search as its query object.
* ``GET /api/v1/uploads/reports/{id}`` (permission ``patients``): one upload with its whole report,
  the findings errors first; recorded first as a 110110 Patient Record read (R) naming the document,
  its message, and the patient when the document was registered in the XDS registry.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, func, or_, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from engine import audit
from engine.console import events, params
from engine.console.accounts import Principal
from engine.console.sections import ConsoleSection, SectionRoute, SectionTools, error, json_response
from engine.store.db import utcnow
from profiles.cda.config import CdaConfig
from profiles.cda.documents import document_type
from profiles.cda.schema import upload_days, uploads
from profiles.cda.stats import MonthRow, day_bounds, monthly, rollup_month
from profiles.xds.schema import documents

__all__ = ["SECTION", "month_statistics", "report_of", "search_uploads"]

_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_CODE = re.compile(r"^C\d{4}$")
_MAX_ID = 2**63 - 1
STATUSES = ("accepted", "rejected")
FILTERS = ("institution", "status", "document_code", "rule", "since", "until")


# -- statistics ---------------------------------------------------------------------------------------
def _row_json(row: MonthRow) -> dict[str, Any]:
    """A row of ``hie report uploads``, column for column (the same figures; completeness also as
    the command prints it)."""
    complete = row.completeness
    return {
        "institution": row.institution,
        "name": row.name,
        "required": row.required,
        "required_uploaded": row.required_uploaded,
        "completeness": complete,
        "completeness_text": f"{complete:.0%}" if complete is not None else "-",
        "declared": row.declared,
        "declared_uploaded": row.declared_uploaded,
        "uploaded_types": sorted(row.uploaded_types),
        "received": row.received,
        "accepted": row.accepted,
        "rejected": row.rejected,
        "records_received": row.records_received,
        "records_accepted": row.records_accepted,
        "upload_days": len(row.days),
        "outpatient": row.outpatient,
        "discharges": row.discharges,
        "top_reasons": [{"rule": rule, "documents": n} for rule, n in row.reasons.most_common(3)],
        "top_reasons_text": row.top_reasons(),
    }


def _rolled_up(db: Engine, month: str, config: CdaConfig) -> None:
    """``rollup_month`` as ``hie report uploads`` runs it; a second request rolling up the same day
    at the same moment may collide on a key: the other one's roll-up stands, and it is tried once
    more."""
    for attempt in range(2):
        try:
            rollup_month(db, month, config.zone)
            return
        except (IntegrityError, DBAPIError):
            if attempt:
                raise


def month_statistics(db: Engine, month: str, config: CdaConfig) -> dict[str, Any]:
    """The month's table (``stats.monthly``, after the roll-up), the documents per day, the totals."""
    _rolled_up(db, month, config)
    d = upload_days
    with db.connect() as conn:
        rows = monthly(conn, month, config)
        per_day = {
            r.day: r
            for r in conn.execute(
                select(
                    d.c.day,
                    func.sum(d.c.received).label("received"),
                    func.sum(d.c.accepted).label("accepted"),
                    func.sum(d.c.rejected).label("rejected"),
                )
                .where(d.c.day.like(f"{month}-%"))
                .group_by(d.c.day)
            )
        }
    year, number = (int(p) for p in month.split("-"))
    length = calendar.monthrange(year, number)[1]
    days: list[dict[str, Any]] = []
    for n in range(1, length + 1):
        key = f"{month}-{n:02d}"
        found = per_day.get(key)
        days.append(
            {
                "day": key,
                "received": int(found.received) if found else 0,
                "accepted": int(found.accepted) if found else 0,
                "rejected": int(found.rejected) if found else 0,
            }
        )
    table = [_row_json(r) for r in rows]
    first, last = dt.date(year, number, 1), dt.date(year, number, length)
    keys = (
        "received",
        "accepted",
        "rejected",
        "records_received",
        "records_accepted",
        "outpatient",
        "discharges",
    )
    totals = {k: sum(r[k] for r in table) for k in keys}
    return {
        "month": month,
        "timezone": config.timezone,
        # the instants the month starts and ends at: the reports of its uploads are since/until these
        "since": day_bounds(first, config.zone)[0],
        "until": day_bounds(last, config.zone)[1],
        "required": list(config.required),
        "institutions": table,
        "days": days,
        "totals": totals,
        "generated_at": utcnow(),
    }


def _month(request: Request, config: CdaConfig) -> str:
    wanted = params.text(request.query_params, "month")
    if wanted is None:
        return dt.datetime.now(config.zone).strftime("%Y-%m")
    if not _MONTH.match(wanted):
        raise params.BadParameter("month: a month like 2026-11 (YYYY-MM)")
    return wanted


# -- reports ------------------------------------------------------------------------------------------
def _document_name(code: str) -> str:
    found = document_type(code) if code else None
    return found.title if found is not None else ""


def _summary(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "received_at": r.received_at,
        "institution": r.institution,
        "institution_name": r.institution_name,
        "document_code": r.document_code,
        "document_name": _document_name(r.document_code),
        "document_id": r.document_id,
        "status": r.status,
        "errors": r.errors,
        "warnings": r.warnings,
        "rules": [x for x in (r.rules or "").split(",") if x],
        "xds_unique_id": r.xds_unique_id,
        "message_id": r.message_id,
    }


_SUMMARY = [c for c in uploads.c if c.name != "report"]


def search_uploads(
    db: Engine, filters: dict[str, Any], *, before: int | None, limit: int
) -> list[dict[str, Any]]:
    """Uploads matching ``filters`` (institution, status, document_code, rule, since, until), newest
    first, older than the id ``before``."""
    u = uploads
    cond = []
    if filters.get("institution") is not None:
        cond.append(u.c.institution == filters["institution"])
    if filters.get("status") is not None:
        cond.append(u.c.status == filters["status"])
    if filters.get("document_code") is not None:
        cond.append(u.c.document_code == filters["document_code"])
    rule = filters.get("rule")
    if rule is not None:  # one of the comma-separated rule ids
        cond.append(
            or_(
                u.c.rules == rule,
                u.c.rules.startswith(f"{rule},", autoescape=True),
                u.c.rules.endswith(f",{rule}", autoescape=True),
                u.c.rules.contains(f",{rule},", autoescape=True),
            )
        )
    if filters.get("since") is not None:
        cond.append(u.c.received_at >= filters["since"])
    if filters.get("until") is not None:
        cond.append(u.c.received_at < filters["until"])
    if before is not None:
        cond.append(u.c.id < before)
    query = select(*_SUMMARY).where(*cond).order_by(u.c.id.desc()).limit(limit)
    with db.connect() as conn:
        return [_summary(r) for r in conn.execute(query)]


def _patient_of(conn: Connection, unique_id: str | None) -> str | None:
    """The patient a registered document was filed under in the XDS registry, if it has one here."""
    if not unique_id:
        return None
    # the registry's tables are migrated with ours (one plugin): the lookup cannot miss a table
    found = conn.execute(
        select(documents.c.patient_id).where(documents.c.unique_id == unique_id).limit(1)
    ).scalar_one_or_none()
    return str(found) if found else None


_SEVERITY_ORDER = {"error": 0, "warning": 1}


def report_of(db: Engine, ident: int) -> dict[str, Any] | None:
    """One upload with its report, the findings errors first; None when there is no such upload."""
    with db.connect() as conn:
        row = conn.execute(select(uploads).where(uploads.c.id == ident)).one_or_none()
        if row is None:
            return None
        patient = _patient_of(conn, row.xds_unique_id)
    try:
        report = json.loads(row.report)
        if not isinstance(report, dict):
            raise ValueError
    except ValueError:
        report = {"findings": [], "unreadable": True}
    findings = [f for f in report.get("findings") or [] if isinstance(f, dict)]
    findings.sort(key=lambda f: _SEVERITY_ORDER.get(str(f.get("severity")), 2))
    report["findings"] = [
        {
            "rule": str(f.get("rule", "")),
            "severity": str(f.get("severity", "")),
            "message": str(f.get("message", "")),
            "xpath": str(f.get("xpath") or ""),
            "line": f.get("line"),
        }
        for f in findings
    ]
    return {**_summary(row), "patient_id": patient, "report": report}


# -- audit records ------------------------------------------------------------------------------------
def _query_event(who: Principal, network: str, path: str, query: str) -> audit.AuditEvent:
    """110112 Query: who searched the uploads, and for what (PS3.15 A.5.3.7: the query, base64)."""
    return events.section_event(
        "uploads",
        events.QUERY,
        "E",
        user=who.username,
        network=network,
        objects=[events.query_object(path, query)],
        description=f"searched CDA uploads: {query or 'everything'}",
    )


def _read_event(who: Principal, network: str, upload: dict[str, Any]) -> audit.AuditEvent:
    """110110 Patient Record, R: who read the report of which document (and whose, when known)."""
    detail = {
        "upload_id": str(upload["id"]),
        "document_code": upload["document_code"],
        "institution": upload["institution"],
        "message_id": str(upload["message_id"]) if upload["message_id"] is not None else "",
    }
    if upload["xds_unique_id"]:
        detail["XDSDocumentEntry.uniqueId"] = upload["xds_unique_id"]
    # type 2 system object, role 3 report, id type 9 report number: the document and its report
    report = {"type": 2, "role": 3, "id_type": "9", "id": upload["document_id"], "detail": detail}
    return events.section_event(
        "uploads",
        audit.PATIENT_RECORD,
        "R",
        user=who.username,
        network=network,
        objects=[*events.patient_objects([upload["patient_id"] or ""]), report],
        description=f"read the validation report of CDA upload {upload['id']}",
        message_id=upload["message_id"],
    )


# -- routes -------------------------------------------------------------------------------------------
def _filters(request: Request) -> dict[str, Any]:
    q = request.query_params
    status = params.text(q, "status")
    if status is not None and status not in STATUSES:
        raise params.BadParameter("status: accepted or rejected")
    code = params.text(q, "document_code")
    if code is not None and not _CODE.match(code):
        raise params.BadParameter("document_code: a WS/T 500 document type, C0001 to C0053")
    return {
        "institution": params.text(q, "institution"),
        "status": status,
        "document_code": code,
        "rule": params.text(q, "rule"),
        "since": params.when(q, "since"),  # aware UTC
        "until": params.when(q, "until"),
    }


def routes(tools: SectionTools) -> Sequence[SectionRoute]:
    services = tools.services

    def config() -> CdaConfig:
        return services.app.section("cda", CdaConfig)

    async def stats(request: Request, who: Principal) -> Response:
        settings = config()
        month = _month(request, settings)
        return json_response(await run_in_threadpool(month_statistics, services.db, month, settings))

    async def reports(request: Request, who: Principal) -> Response:
        q = request.query_params
        filters = _filters(request)
        limit = params.integer(q, "limit", low=1, high=500, default=50)
        before = params.integer(q, "before", low=1, high=_MAX_ID)
        assert limit is not None
        event = _query_event(who, "", request.url.path, request.url.query)
        refused = await tools.audited(request, event)
        if refused is not None:
            return refused
        rows = await run_in_threadpool(search_uploads, services.reads, filters, before=before, limit=limit)
        following = rows[-1]["id"] if len(rows) == limit else None
        return json_response({"uploads": rows, "next_before": following})

    async def report(request: Request, who: Principal) -> Response:
        text = request.path_params["id"]
        if not text.isdigit() or len(text) > 19 or int(text) > _MAX_ID:
            raise params.BadParameter("id: an upload id is a positive integer")
        found = await run_in_threadpool(report_of, services.reads, int(text))
        if found is None:
            return error(404, f"no upload with id {text}")
        refused = await tools.audited(request, _read_event(who, "", found))
        if refused is not None:
            return refused
        return json_response(found)

    return [
        SectionRoute(
            "/stats",
            stats,
            "stats",
            "The month's CDA upload statistics per institution (as hie report uploads), per day, and totals",
            query=(("month", "YYYY-MM; default: this month in the cda: time zone"),),
        ),
        SectionRoute(
            "/reports",
            reports,
            "patients",
            "Uploaded CDA documents with their validation outcome, newest first (audited: 110112 Query)",
            query=(
                ("institution", "the custodian's 组织机构代码"),
                ("status", "accepted or rejected"),
                ("document_code", "a WS/T 500 document type, C0001 to C0053"),
                ("rule", "a rule id among the reasons of a rejection"),
                ("since", "received at or after (date, date and time, or 2h, 7d)"),
                ("until", "received before"),
                ("before", "the next_before of the previous page"),
                ("limit", "1-500, default 50"),
            ),
        ),
        SectionRoute(
            "/reports/{id}",
            report,
            "patients",
            "One upload with its whole validation report, findings errors first (audited: 110110 read)",
        ),
    ]


SECTION = ConsoleSection(
    id="uploads", permission="stats", static=Path(__file__).with_name("pages"), routes=routes, order=30
)
