"""The API's OpenAPI 3.1 document, as data (served at ``/api/v1/openapi.json``).

Kept beside the routes by hand: ``tests/engine/console`` checks that every route of ``ConsoleApi`` is
described here with its method, and nothing more. The routes of the plugins' console sections are
described from their own declarations (``document``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from engine.console.params import SEARCH_FILTERS
from engine.console.roles import roles_for
from engine.console.sections import ConsoleSection, SectionRoute, SectionTools

__all__ = ["DOCUMENT", "document"]


def _q(name: str, description: str, kind: str = "string") -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": kind},
    }


_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "format": "int64"}}
_ERROR = {"$ref": "#/components/schemas/Error"}


def _answers(ok: str, *codes: int, schema: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"schema": {"$ref": f"#/components/schemas/{schema}"}} if schema else {}
    out: dict[str, Any] = {"200": {"description": ok, "content": {"application/json": body}}}
    texts = {
        400: "bad parameter",
        401: "no valid token or session",
        403: "the caller's role may not do this (required_roles lists those that may)",
        404: "no such message (or record)",
        409: "the message cannot be reprocessed (pruned, channel not configured and enabled here)",
    }
    for code in (401, 403, *codes):
        out[str(code)] = {"description": texts[code], "content": {"application/json": {"schema": _ERROR}}}
    return out


_OBJECT: dict[str, Any] = {"type": "object"}
_STR = {"type": "string"}
_INT = {"type": "integer"}
_ID_STR = {"type": ["string", "integer"], "description": "a 64-bit id: a string of digits above 2**53"}
_WHEN = {"type": "string", "format": "date-time"}


def _obj(required: list[str], **properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required}


_COUNTS = {name: _INT for name in ("received", "filtered", "queued", "sent", "errored")}

_SCHEMAS: dict[str, Any] = {
    "Session": _obj(
        ["username", "role", "via", "csrf_token", "expires_at"],
        username=_STR,
        role={"type": "string", "enum": ["admin", "integrator", "auditor", "viewer"]},
        via={"type": "string", "enum": ["session", "token"]},
        csrf_token={"type": ["string", "null"], "description": "send as X-CSRF-Token (sessions only)"},
        expires_at={**_WHEN, "type": ["string", "null"], "description": "null: a token without end"},
    ),
    "Channels": _obj(
        ["channels"],
        channels={
            "type": "array",
            "items": _obj(
                ["id", "description", "enabled", "source", "scheme", "listening", "destinations"],
                id=_STR,
                description=_STR,
                enabled={"type": "boolean"},
                source={"type": "string", "description": "scheme://host:port/path, without credentials"},
                scheme=_STR,
                listening={
                    "type": ["boolean", "null"],
                    "description": "the source takes messages now; null: not run here, or cannot tell",
                },
                destinations={
                    "type": "array",
                    "items": _obj(
                        ["id", "scheme", "target"],
                        id=_STR,
                        scheme=_STR,
                        target={"type": "string", "description": "host:port/path, without credentials"},
                    ),
                },
            ),
        },
    ),
    "Dashboard": _obj(
        [
            "generated_at",
            "hours",
            "bucket_seconds",
            "channels",
            "total",
            "series",
            "queues",
            "errors_last_hour",
        ],
        generated_at=_WHEN,
        hours=_INT,
        bucket_seconds=_INT,
        channels={
            "type": "array",
            "description": "configured channels: counts over the window; queued is the current queue depth",
            "items": _obj(
                ["id", "listening", *_COUNTS], id=_STR, listening={"type": ["boolean", "null"]}, **_COUNTS
            ),
        },
        total=_obj(list(_COUNTS), **_COUNTS),
        series=_obj(
            ["start", "buckets", "channels"],
            start={**_WHEN, "description": "start of the first hourly bucket (UTC)"},
            buckets=_INT,
            channels={
                "type": "object",
                "additionalProperties": _obj(
                    ["received", "errored"],
                    received={"type": "array", "items": _INT},
                    errored={"type": "array", "items": _INT},
                ),
            },
        ),
        queues={
            "type": "array",
            "description": "destinations with deliveries waiting (queued or pending)",
            "items": _obj(
                ["channel_id", "destination", "queued", "oldest_at"],
                channel_id=_STR,
                destination=_STR,
                queued=_INT,
                oldest_at={**_WHEN, "type": ["string", "null"]},
            ),
        },
        errors_last_hour=_obj(
            ["count", "recent"],
            count=_INT,
            recent={
                "type": "array",
                "description": "the newest 20, no patient data",
                "items": _obj(
                    ["id", "channel_id", "received_at", "message_type", "error"],
                    id=_ID_STR,
                    channel_id=_STR,
                    received_at=_WHEN,
                    message_type=_STR,
                    error=_STR,
                ),
            },
        ),
    ),
    "Stage": _obj(
        ["text", "base64", "bytes"],
        text=_STR,
        base64=_STR,
        bytes=_INT,
        segments={
            "type": "array",
            "description": "only when the text is HL7 v2 (starts with MSH): its segments in order",
            "items": _obj(
                ["name", "index", "fields"],
                name={"type": "string", "description": "the segment id, e.g. PID"},
                index={"type": "integer", "description": "1-based position of the segment in the message"},
                fields={
                    "type": "array",
                    "description": "non-empty fields; MSH-1 is the field separator, MSH-2 the "
                    "encoding characters",
                    "items": _obj(
                        ["position", "name", "value"],
                        position={"type": "string", "description": "e.g. PID-3"},
                        name={
                            "type": "string",
                            "description": "HL7 v2.5 name (Patient Identifier List); empty for Z-segments",
                        },
                        value={"type": "string", "description": "the field's raw text"},
                    ),
                },
            ),
        },
    ),
    "Message": {
        "type": "object",
        "description": "every stage of a message: raw, content and, per delivery, sent and response "
        "(and each attempt's response) are a Stage, or null; sent may be the string unchanged",
        "properties": {
            "raw": {"oneOf": [{"$ref": "#/components/schemas/Stage"}, {"type": "null"}]},
            "content": {"type": ["string", "null"]},
            "deliveries": {"type": "array", "items": _OBJECT},
        },
    },
    "BulkReprocess": _obj(
        ["filter"],
        filter={
            "type": "object",
            "description": "at least one filter; the same as GET /api/v1/messages takes",
            "properties": {name: _STR for name in SEARCH_FILTERS},
            "additionalProperties": False,
            "minProperties": 1,
        },
        destinations={
            "type": "array",
            "items": _STR,
            "description": "queue only for these; default: the routes'",
        },
        limit={"type": "integer", "minimum": 1, "maximum": 1000, "default": 1000},
    ),
    "BulkResult": _obj(
        ["matched", "limit_reached", "reprocessed", "skipped"],
        matched={"type": "integer", "description": "messages taken: the newest that match, at most limit"},
        limit_reached={"type": "boolean", "description": "more messages matched than limit"},
        reprocessed={
            "type": "array",
            "items": _obj(
                ["original", "message_id"],
                original=_ID_STR,
                message_id=_ID_STR,
                status=_STR,
                queued={"type": "array", "items": _STR},
            ),
        },
        skipped={"type": "array", "items": _obj(["id", "reason"], id=_ID_STR, reason=_STR)},
    ),
}

_SEARCH = [
    _q("channel", "channel id"),
    _q("status", "received, filtered, errored, queued, pending or sent"),
    _q("since", "received at or after: 2026-11-22, 2026-11-22T08:30+08:00, 2h, 7d"),
    _q("until", "received before (same forms)"),
    _q("type", "ADT^A01 exactly, ADT for every event, ADT^A0* a pattern"),
    _q("control_id", "MSH-10"),
    _q("patient_id", "a patient identifier (PID-3, PID-2, PID-4, PID-19, MRG-1)"),
    _q("facility", "sending facility (MSH-4)"),
    _q("destination", "has a delivery to this destination"),
    _q("text", "free text in the content, 3 characters or more (indexed a few seconds after receipt)"),
    _q("limit", "page size, 1-500 (default 50)", "integer"),
    _q("before", "next page: the next_before of the previous one", "integer"),
]
_AUDIT = [
    _q("since", "recorded at or after"),
    _q("until", "recorded before"),
    _q("patient_id", "a patient identifier named by the record"),
    _q("user", "the requestor's user id"),
    _q("event_id", "DICOM event code, e.g. 110110"),
    _q("limit", "page size (JSON 1-1000, default 100; CSV up to 100000, default 10000)", "integer"),
    _q("before", "next page: the next_before of the previous one", "integer"),
]

DOCUMENT: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {
        "title": "hie console API",
        "version": "1",
        "description": "Statistics, message search and bodies, reprocessing and the audit trail of an hie "
        "engine. Roles: admin, integrator (messages, reprocess), auditor (messages, audit), viewer "
        "(statistics only). Every read of a message body is audited. Ids (messages, deliveries, audit "
        "records) are 64-bit: in JSON they are strings of digits, which JavaScript reads exactly.",
    },
    "servers": [{"url": "/"}],
    "security": [{"bearer": []}, {"session": []}],
    "components": {
        "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer", "description": "a token from `hie users token`"},
            "session": {
                "type": "apiKey",
                "in": "cookie",
                "name": "hie_session",
                "description": "from POST /api/v1/session; POST and DELETE also send X-CSRF-Token",
            },
        },
        "schemas": {
            "Error": {
                "type": "object",
                "properties": {"error": {"type": "string"}, "required_roles": {"type": "array"}},
                "required": ["error"],
            },
            **_SCHEMAS,
        },
    },
    "paths": {
        "/api/v1/openapi.json": {
            "get": {
                "summary": "this document",
                "security": [],
                "responses": {"200": {"description": "OpenAPI"}},
            }
        },
        "/api/v1/session": {
            "post": {
                "summary": "log in: a session cookie and the CSRF token to send with it",
                "security": [],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "username": {"type": "string"},
                                    "password": {"type": "string"},
                                },
                                "required": ["username", "password"],
                            }
                        }
                    },
                },
                "responses": {
                    "200": {"description": "logged in: username, role, csrf_token, expires_in (seconds)"},
                    "400": {"description": "not a username and password"},
                    "401": {"description": "login failed (wrong password, unknown user, locked, disabled)"},
                    "429": {
                        "description": "too many failed logins from this address within a minute "
                        "(console.login_failures_per_minute); Retry-After says when to try again"
                    },
                },
            },
            "get": {
                "summary": "who is calling (any role): lets a reloaded page carry on with its session",
                "responses": {
                    "200": {
                        "description": "username, role, via, csrf_token (sessions), expires_at",
                        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Session"}}},
                    },
                    "401": {
                        "description": "not logged in, or the session has expired",
                        "content": {"application/json": {"schema": _ERROR}},
                    },
                },
            },
            "delete": {"summary": "log out", "responses": _answers("session ended", 400)},
        },
        "/api/v1/channels": {
            "get": {
                "summary": "the configured channels: source, whether it listens, destinations (every role)",
                "responses": _answers("the channels", schema="Channels"),
            }
        },
        "/api/v1/dashboard": {
            "get": {
                "summary": "per channel counts over the last hours, hourly series, queue depths and the "
                "last hour's errors (every role)",
                "parameters": [
                    _q(
                        "hours",
                        "the window: 1-168 whole hours, the current one included (default 24)",
                        "integer",
                    )
                ],
                "responses": _answers("the dashboard", 400, schema="Dashboard"),
            }
        },
        "/api/v1/reprocess": {
            "post": {
                "summary": "reprocess every message matching a search, each as a new message and audited "
                "as a single reprocess (admin, integrator)",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/BulkReprocess"}}
                    },
                },
                "responses": {
                    **_answers("(not used)", 400, 409),
                    "201": {
                        "description": "what was reprocessed and what was skipped (pruned by retention)",
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/BulkResult"}}
                        },
                    },
                },
            }
        },
        "/api/v1/stats": {
            "get": {
                "summary": "per channel counts (every role)",
                "parameters": [_q("since", "messages received since")],
                "responses": _answers("counts per channel and the total", 400),
            }
        },
        "/api/v1/messages": {
            "get": {
                "summary": "search messages, newest first: metadata only (admin, integrator, auditor)",
                "parameters": _SEARCH,
                "responses": _answers("messages and next_before", 400),
            }
        },
        "/api/v1/messages/{id}": {
            "get": {
                "summary": "every stage of a message, bodies included (HL7 v2 stages with their segments); "
                "the read is audited",
                "parameters": [_ID],
                "responses": _answers("the message", 400, 404, schema="Message"),
            }
        },
        "/api/v1/messages/{id}/reprocess": {
            "post": {
                "summary": "run the message through its channel again as a new message (admin, integrator)",
                "parameters": [_ID],
                "requestBody": {
                    "required": False,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "destinations": {"type": "array", "items": {"type": "string"}}
                                },
                            }
                        }
                    },
                },
                "responses": {
                    **_answers("(not used)", 400, 404, 409),
                    "201": {"description": "the new message: id, status, queued destinations"},
                },
            }
        },
        "/api/v1/audit": {
            "get": {
                "summary": "audit records, newest first (admin, auditor); each read is itself audited "
                "(110101 Audit Log Used)",
                "parameters": _AUDIT,
                "responses": _answers("events and next_before", 400),
            }
        },
        "/api/v1/audit.csv": {
            "get": {
                "summary": "audit records as CSV (admin, auditor); audited as 110101 Audit Log Used",
                "parameters": _AUDIT,
                "responses": {
                    **_answers("CSV", 400),
                    "200": {"description": "CSV", "content": {"text/csv": {}}},
                },
            }
        },
    },
}
del DOCUMENT["paths"]["/api/v1/messages/{id}/reprocess"]["post"]["responses"]["200"]
del DOCUMENT["paths"]["/api/v1/reprocess"]["post"]["responses"]["200"]
DOCUMENT["paths"]["/api/v1/sections"] = {
    "get": {
        "summary": "the plugins' console sections (EMPI, XDS, CDA, DICOM...) and the roles that see each",
        "security": [],
        "responses": {"200": {"description": "sections: [{id, roles}]"}},
    }
}


def _section_operation(route: SectionRoute) -> dict[str, Any]:
    roles = ", ".join(roles_for(route.permission))
    names = re.findall(r"\{(\w+)\}", route.path)
    parameters = [{"name": n, "in": "path", "required": True, "schema": _STR} for n in names]
    parameters += [_q(name, text) for name, text in route.query]
    operation: dict[str, Any] = {
        "summary": f"{route.summary} ({roles})",
        "responses": _answers("JSON", 400, 404),
    }
    if parameters:
        operation["parameters"] = parameters
    if route.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {**_OBJECT, "description": route.body}}},
        }
    return operation


def document(sections: Sequence[ConsoleSection], tools: SectionTools) -> dict[str, Any]:
    """DOCUMENT with the routes of the plugins' console sections added."""
    paths = dict(DOCUMENT["paths"])
    for section in sections:
        for route in section.routes(tools):
            item = paths.setdefault(f"/api/v1/{section.id}{route.path}", {})
            for method in route.methods:
                item[method.lower()] = _section_operation(route)
    return {**DOCUMENT, "paths": paths}
