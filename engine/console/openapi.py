"""The API's OpenAPI 3.1 document, as data (served at ``/api/v1/openapi.json``).

Kept beside the routes by hand: ``tests/engine/console`` checks that every route of ``ConsoleApi`` is
described here with its method, and nothing more.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DOCUMENT"]


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


def _answers(ok: str, *codes: int) -> dict[str, Any]:
    out: dict[str, Any] = {"200": {"description": ok, "content": {"application/json": {}}}}
    texts = {
        400: "bad parameter",
        401: "no valid token or session",
        403: "the caller's role may not do this (required_roles lists those that may)",
        404: "no such message",
        409: "the message cannot be reprocessed (pruned, channel not here)",
    }
    for code in (401, 403, *codes):
        out[str(code)] = {"description": texts[code], "content": {"application/json": {"schema": _ERROR}}}
    return out


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
                },
            },
            "delete": {"summary": "log out", "responses": _answers("session ended", 400)},
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
                "summary": "every stage of a message, bodies included; the read is audited",
                "parameters": [_ID],
                "responses": _answers("the message", 400, 404),
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
                "summary": "audit records, newest first (admin, auditor)",
                "parameters": _AUDIT,
                "responses": _answers("events and next_before", 400),
            }
        },
        "/api/v1/audit.csv": {
            "get": {
                "summary": "audit records as CSV (admin, auditor)",
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
