"""Console sections: pages and API routes that a plugin adds to the console (the EMPI review queue,
XDS documents, CDA reports, DICOM studies), without the engine knowing any of them.

A plugin lists them in ``Plugin(console=[...])``::

    EMPI_SECTION = ConsoleSection(
        id="empi",                          # nav #nav-empi, pages at #/empi..., API at /api/v1/empi/...
        permission="patients",              # who sees it in the nav (engine.console.roles)
        static=Path(__file__).with_name("console"),   # page.js, en.json, zh.json (+ more modules)
        routes=empi_routes,                 # (SectionTools) -> [SectionRoute, ...]
    )

* ``static``: ``page.js`` exports ``create(ctx)`` like the console's own pages (``app.js`` explains),
  and is loaded only when a user opens the section; it imports the console's modules by relative path
  (``../../dom.js``). ``en.json`` and ``zh.json`` hold its words, every key starting with ``<id>.``;
  ``<id>.nav`` is its name in the nav; an optional ``style.css`` is linked by every page. The files
  are served under ``/console/sections/<id>/``.
* ``routes``: each route is checked like the console's own (a token or session, CSRF on POST, the
  route's permission; a refusal is audited); a ``params.BadParameter`` raised by the handler is a 400.
  ``SectionTools.audit`` commits an ATNA record before PHI is shown (the caller answers 503 if it
  cannot be written); the OpenAPI document describes the routes from their ``summary`` and ``query``.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from engine.audit import AuditEvent
from engine.console.accounts import Principal
from engine.console.auth import client_address, error
from engine.console.roles import Permission
from engine.services import Services

__all__ = [
    "RESERVED",
    "ConsoleSection",
    "Handler",
    "SectionRoute",
    "SectionTools",
    "check_sections",
    "client_address",
    "error",
    "json_response",
    "jsonable",
]

Handler = Callable[[Request, Principal], Awaitable[Response]]
_SAFE_INT = 2**53 - 1  # JavaScript's Number.MAX_SAFE_INTEGER
_ID = re.compile(r"^[a-z][a-z0-9-]{1,30}$")
# the first path segment of the console's own routes, pages and API alike
RESERVED = frozenset(
    {"openapi.json", "session", "stats", "channels", "dashboard", "messages", "reprocess", "audit",
     "audit.csv", "sections", "login", "i18n", "pages"}
)  # fmt: skip


def jsonable(value: Any) -> Any:
    """``value`` ready for JSON: datetimes in ISO 8601, integers beyond 2**53 as strings of digits
    (a browser's ``JSON.parse`` keeps integers exact only up to 2**53)."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > _SAFE_INT:
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def json_response(value: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(jsonable(value), status_code=status)


@dataclass(frozen=True)
class SectionRoute:
    """One API route of a section, at ``/api/v1/<section id><path>`` (``path`` starts with ``/``;
    ``{name}`` parts are path parameters)."""

    path: str
    handler: Handler
    permission: Permission
    summary: str
    methods: tuple[str, ...] = ("GET",)
    query: tuple[tuple[str, str], ...] = ()  # (name, description) of each query parameter
    body: str | None = None  # what a POST's JSON body holds, for the OpenAPI document


@dataclass(frozen=True)
class SectionTools:
    """What a section's routes are built with: the engine's services and the audit writer."""

    services: Services
    audit: Callable[[AuditEvent], Awaitable[None]]

    async def audited(self, request: Request, event: AuditEvent) -> Response | None:
        """Commits ``event`` (with the caller's address); a 503 to send back if it cannot be written,
        so that nothing is shown unaudited."""
        if event.participants and not event.participants[0].get("network_access_point"):
            event.participants[0]["network_access_point"] = client_address(request)
        try:
            await self.audit(event)
        except Exception:
            return error(503, "the audit record could not be written, so nothing is shown")
        return None


@dataclass(frozen=True)
class ConsoleSection:
    id: str
    permission: Permission  # who sees the section in the nav
    static: Path  # page.js, en.json, zh.json
    routes: Callable[[SectionTools], Sequence[SectionRoute]]
    order: int = 50  # place in the nav among sections (dashboard and messages first, audit last)


def check_sections(sections: Iterable[ConsoleSection]) -> list[str]:
    """What is wrong with a set of sections (bad or clashing ids, missing files); [] when fine."""
    problems: list[str] = []
    seen: set[str] = set()
    for s in sections:
        if not _ID.match(s.id) or s.id in RESERVED:
            problems.append(
                f"console section id {s.id!r}: lower-case letters, digits and '-', not one of ours"
            )
        if s.id in seen:
            problems.append(f"console section id {s.id!r} is used twice")
        seen.add(s.id)
        for name in ("page.js", "en.json", "zh.json"):
            if not (s.static / name).is_file():
                problems.append(f"console section {s.id}: {s.static / name} is missing")
    return problems
