"""The web console's ``empi`` section (``engine.console.sections``): the master patient index's review
queue and a data steward's link, unlink, merge and restore, with ``profiles.empi.admin.EmpiAdmin`` (the
operations, history, ITI-10 notifications and audit records of ``hie empi``).

Reading needs the permission ``patients`` (admin, integrator, auditor); changing needs ``steward``
(admin, integrator). Every read of patient data is recorded before it is answered:

* ``GET /api/v1/empi/reviews?limit=&after=``: the open reviews, best score first, each with the
  incoming record and the candidate person's records (110110 Patient Record, R, naming every record
  shown); ``next`` is the ``after`` of the following page.
* ``POST /api/v1/empi/reviews/{id}`` ``{"decision": "link" | "separate"}`` (steward).
* ``GET /api/v1/empi/persons?domain=&value=``: the person of a record, its records and history
  (``EmpiAdmin.show`` writes its 110110 R record in the same transaction as it reads).
* ``GET /api/v1/empi/records?q=&limit=&before=``: records by identifier (in any domain, or
  ``domain:value``), national ID, or the start of a name (Hanzi, or pinyin); 110112 Query with the
  search text and each patient found.
* ``POST /api/v1/empi/link`` ``{domain, value, to_domain, to_value}``, ``POST .../merge`` (the same
  body: every record of the first person joins the second), ``POST .../unlink`` and ``POST
  .../restore`` ``{domain, value}`` (steward): each one transaction with its history, its ITI-10
  outbox rows and its 110110 U record (``EmpiAdmin``).

National ID-card numbers and phone numbers are answered masked but for their last four characters.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from engine import audit
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
from profiles.empi.admin import AdminConflict, AdminError, AdminNotFound, EmpiAdmin, MergeListener
from profiles.empi.config import EmpiConfig
from profiles.empi.domains import Domains

__all__ = ["SECTION", "mask"]

_T = TypeVar("_T")
_MAX_ID = 2**63 - 1
_DECISIONS = {"link": True, "separate": False}
_LIMITS = {"domain": 64, "value": 100, "to_domain": 64, "to_value": 100, "decision": 20}


def mask(text: str | None) -> str | None:
    """All but the last four characters starred: ``320102198503120311`` -> ``**************0311``."""
    if not text:
        return None
    return "*" * max(len(text) - 4, 0) + text[-4:] if len(text) > 4 else "*" * len(text)


def _record_json(r: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        k: r.get(k)
        for k in ("id", "person_id", "domain", "value", "status", "name", "birth_date", "sex", "city")
        if k in r
    }
    out["national_id"] = mask(r.get("national_id"))
    out["phone"] = mask(r.get("phone"))
    if "national_id_valid" in r:
        out["national_id_valid"] = r["national_id_valid"]
    if r.get("merged_into") is not None:
        out["merged_into"] = r["merged_into"]
    if r.get("birth_date") is not None:
        out["birth_date"] = r["birth_date"].isoformat()
    return out


def _detail(text: str | None) -> Any:
    """An event's or review's detail: the JSON object it holds (why, scores), else its text."""
    if not text:
        return None
    try:
        parsed = json.loads(text)
    except ValueError:
        return text[:300]
    return parsed if isinstance(parsed, dict) else text[:300]


def _review_json(r: dict[str, Any]) -> dict[str, Any]:
    detail = _detail(r.get("detail"))
    scores = detail.get("scores") if isinstance(detail, dict) else None
    record = _record_json({**r, "id": r["record_id"], "status": r["record_status"]})
    return {
        "id": r["id"],
        "score": r["score"],
        "scores": scores if isinstance(scores, dict) else {},
        "created_at": r["created_at"],
        "record": record,
        "candidate_person_id": r["candidate_person_id"],
        "candidates": [_record_json(c) for c in r["candidate"]],
    }


def _history_json(e: dict[str, Any], named: dict[int, tuple[str, str]]) -> dict[str, Any]:
    record = named.get(e["record_id"]) if e["record_id"] is not None else None
    return {
        "id": e["id"],
        "at": e["at"],
        "kind": e["kind"],
        "record_id": e["record_id"],
        "record": {"domain": record[0], "value": record[1]} if record else None,
        "person_id": e["person_id"],
        "other_id": e["other_id"],
        "score": e["score"],
        "detail": _detail(e["detail"]),
        "actor": e["actor"],
        "message_id": e["message_id"],
    }


def _cursor(q: Any) -> tuple[float, int] | None:
    text = params.text(q, "after")
    if text is None:
        return None
    score, comma, last = text.partition(",")
    try:
        if not comma or not last.isdigit():
            raise ValueError
        return float(score), int(last)
    except ValueError:
        raise params.BadParameter("after: the next of the previous page (score,id)") from None


async def _body(request: Request, names: Sequence[str]) -> dict[str, str]:
    """The JSON object of a POST with exactly these string members; a 400 naming what is wrong."""
    usage = "body: expected JSON {" + ", ".join(f'"{n}": "..."' for n in names) + "}"
    try:
        body = json.loads(await request.body())
    except ValueError:
        raise params.BadParameter(usage) from None
    if not isinstance(body, dict):
        raise params.BadParameter(usage)
    unknown = sorted(set(body) - set(names))
    if unknown:
        raise params.BadParameter(f"{unknown[0]}: not expected here ({usage})")
    out: dict[str, str] = {}
    for name in names:
        value = body.get(name)
        if not isinstance(value, str) or not value.strip() or len(value) > _LIMITS[name]:
            raise params.BadParameter(f"{name}: a non-empty string of at most {_LIMITS[name]} characters")
        out[name] = value.strip()
    return out


def _refusal(exc: AdminError) -> Response:
    status = 404 if isinstance(exc, AdminNotFound) else 409 if isinstance(exc, AdminConflict) else 400
    return error(status, str(exc))


def _query_event(who: Principal, path: str, q: str, patients: list[str]) -> audit.AuditEvent:
    """110112 Query: who searched the index for what (the query, base64), and whom it found (the
    caller's address is added by ``SectionTools.audited``)."""
    return events.section_event(
        "empi",
        events.QUERY,
        "E",
        user=who.username,
        network="",
        objects=[events.query_object(path, q), *events.patient_objects(patients)],
        description=f"searched the patient index: {q}"[:200],
    )


def routes(tools: SectionTools) -> Sequence[SectionRoute]:
    services = tools.services

    def admin(request: Request, who: Principal) -> EmpiAdmin:
        """The steward's tool as ``hie empi`` builds it, acting as the console's user."""
        app = services.app
        notify = [c.id for c in app.channels if c.source.url.startswith("pix-iti10:")]
        listeners: list[MergeListener] = []
        actor = services.actors.get("empi")  # XDS and DICOM follow merges through the running EMPI
        if actor is not None:
            listeners = list(actor.manager.index.merge_listeners)
        return EmpiAdmin(
            services.db,
            Domains(app.section("empi", EmpiConfig)),
            services.ids,
            user=who.username,
            notify_channels=notify,
            network=client_address(request),
            merge_listeners=listeners,
        )

    async def run(fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T | Response:
        try:
            return await run_in_threadpool(fn, *args, **kwargs)
        except AdminError as exc:
            return _refusal(exc)

    # -- reading -----------------------------------------------------------------------------------
    async def review_list(request: Request, who: Principal) -> Response:
        q = request.query_params
        limit = params.integer(q, "limit", low=1, high=200, default=50)
        assert limit is not None
        after = _cursor(q)
        steward = admin(request, who)

        def read() -> tuple[list[dict[str, Any]], int]:
            return steward.open_reviews(limit=limit, after=after), steward.count_open_reviews()

        rows, total = await run_in_threadpool(read)
        shown = [
            steward.patient_ref(r["domain"], r["value"])
            for review in rows
            for r in (review, *review["candidate"])
        ]
        if shown:
            refused = await tools.audited(request, steward.read_event(shown, "console review queue"))
            if refused is not None:
                return refused
        last = rows[-1] if len(rows) == limit else None
        following = f"{last['score']!r},{last['id']}" if last is not None else None
        return json_response({"reviews": [_review_json(r) for r in rows], "open": total, "next": following})

    async def person(request: Request, who: Principal) -> Response:
        q = request.query_params
        domain, value = params.text(q, "domain"), params.text(q, "value")
        if domain is None:
            raise params.BadParameter("domain: the record's domain (empi.domains of config.yaml)")
        if value is None:
            raise params.BadParameter("value: the record's identifier in its domain")
        steward = admin(request, who)
        view = await run(steward.show, domain, value)  # audited in its own transaction
        if isinstance(view, Response):
            return view
        config = services.app.section("empi", EmpiConfig)
        return json_response(
            {
                "person": {
                    "id": view.person["id"],
                    "status": view.person["status"],
                    "national_id": mask(view.person["national_id"]),
                    "created_at": view.person["created_at"],
                    "updated_at": view.person["updated_at"],
                },
                "records": [_record_json(r) for r in view.records],
                "history": [_history_json(e, view.named) for e in reversed(view.history)],
                "domains": [{"id": d.id, "description": d.description} for d in config.domains],
            }
        )

    async def search(request: Request, who: Principal) -> Response:
        q = request.query_params
        text = params.text(q, "q")
        if text is None or not text.strip():
            raise params.BadParameter("q: a patient id, a national ID, or the start of a name")
        limit = params.integer(q, "limit", low=1, high=200, default=50)
        before = params.integer(q, "before", low=1, high=_MAX_ID)
        assert limit is not None
        steward = admin(request, who)
        rows = await run_in_threadpool(steward.find_records, text, limit=limit, before=before)
        patients = [steward.patient_ref(r["domain"], r["value"]) for r in rows]
        refused = await tools.audited(request, _query_event(who, request.url.path, text.strip(), patients))
        if refused is not None:
            return refused
        following = rows[-1]["id"] if len(rows) == limit else None
        return json_response({"records": [_record_json(r) for r in rows], "next_before": following})

    # -- changing ----------------------------------------------------------------------------------
    async def decide(request: Request, who: Principal) -> Response:
        text = request.path_params["id"]
        if not text.isdigit() or len(text) > 19 or int(text) > _MAX_ID:
            raise params.BadParameter("id: a review id is a positive integer")
        body = await _body(request, ["decision"])
        if body["decision"] not in _DECISIONS:
            raise params.BadParameter('decision: "link" or "separate"')
        link = _DECISIONS[body["decision"]]
        done = await run(admin(request, who).resolve_review, int(text), link=link)
        if isinstance(done, Response):
            return done
        return json_response({"review": int(text), "status": "linked" if link else "rejected"})

    async def link(request: Request, who: Principal) -> Response:
        b = await _body(request, ["domain", "value", "to_domain", "to_value"])
        done = await run(admin(request, who).link, b["domain"], b["value"], b["to_domain"], b["to_value"])
        if isinstance(done, Response):
            return done
        return json_response({"linked": True, **b})

    async def merge(request: Request, who: Principal) -> Response:
        b = await _body(request, ["domain", "value", "to_domain", "to_value"])
        done = await run(admin(request, who).merge, b["domain"], b["value"], b["to_domain"], b["to_value"])
        if isinstance(done, Response):
            return done
        moved = [{"domain": d, "value": v} for d, v in done["moved"]]
        return json_response({**done, "moved": moved})

    async def unlink(request: Request, who: Principal) -> Response:
        b = await _body(request, ["domain", "value"])
        done = await run(admin(request, who).unlink, b["domain"], b["value"])
        if isinstance(done, Response):
            return done
        return json_response({"person_id": done, **b})

    async def restore(request: Request, who: Principal) -> Response:
        b = await _body(request, ["domain", "value"])
        done = await run(admin(request, who).restore, b["domain"], b["value"])
        if isinstance(done, Response):
            return done
        return json_response({"person_id": done, **b})

    record_body = '{"domain": "hospital-a", "value": "A1001"}'
    pair_body = '{"domain": "hospital-b", "value": "B2", "to_domain": "hospital-a", "to_value": "A1001"}'
    return [
        SectionRoute(
            "/reviews",
            review_list,
            "patients",
            "Open EMPI reviews, best score first, with the incoming record and the candidate person's "
            "records (audited: 110110 read)",
            query=(("limit", "1-200, default 50"), ("after", "the next of the previous page")),
        ),
        SectionRoute(
            "/reviews/{id}",
            decide,
            "steward",
            "Decide a review: link the record to the candidate person, or keep them separate people",
            methods=("POST",),
            body='{"decision": "link" | "separate"}',
        ),
        SectionRoute(
            "/persons",
            person,
            "patients",
            "The person of a record: every linked record and the history (audited: 110110 read)",
            query=(("domain", "the record's domain"), ("value", "the record's identifier")),
        ),
        SectionRoute(
            "/records",
            search,
            "patients",
            "Records by identifier (any domain, or domain:value), national ID, or name prefix (Hanzi or "
            "pinyin), newest first (audited: 110112 Query)",
            query=(
                ("q", "a patient id, domain:value, a national ID, or the start of a name"),
                ("limit", "1-200, default 50"),
                ("before", "the next_before of the previous page"),
            ),
        ),
        SectionRoute(
            "/link",
            link,
            "steward",
            "Link a record to the person of another record",
            methods=("POST",),
            body=pair_body,
        ),
        SectionRoute(
            "/unlink",
            unlink,
            "steward",
            "Give a record a person of its own",
            methods=("POST",),
            body=record_body,
        ),
        SectionRoute(
            "/merge",
            merge,
            "steward",
            "Merge a person into another: every record of the person of (domain, value) joins the person "
            "of (to_domain, to_value)",
            methods=("POST",),
            body=pair_body,
        ),
        SectionRoute(
            "/restore",
            restore,
            "steward",
            "Undo an A40 merge for one identifier: it is active again, as a person of its own",
            methods=("POST",),
            body=record_body,
        ),
    ]


SECTION = ConsoleSection(
    id="empi", permission="patients", static=Path(__file__).with_name("pages"), routes=routes, order=10
)
