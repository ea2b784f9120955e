"""The REST API under ``/api/v1`` (JSON): statistics and the dashboard (``engine.console.dashboard``),
the configured channels, message search and bodies (HL7 v2 stages with their segments,
``engine.console.hl7view``), reprocessing one message or every match of a search
(``engine.console.bulk``), the audit trail, console sessions, and its own OpenAPI document
(``engine.console.openapi``).

Database work runs in Starlette's thread pool, off the event loop that also serves HL7 traffic. Every
read of a message body commits its audit record (DICOM 110110, as ``hie messages show``) before the body
is sent; if the record cannot be written nothing is shown.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from engine import audit
from engine.cli.output import decode
from engine.config import ChannelConfig
from engine.console import accounts, dashboard, events, hl7view, openapi, params
from engine.console.accounts import LoginRefused, Principal
from engine.console.auditlog import AuditSearch, search_audit, to_csv
from engine.console.auth import COOKIE, Guard, client_address, error
from engine.console.bulk import MAX_LIMIT, BulkRefused, reprocess_matching
from engine.console.reprocess import reprocess_one
from engine.console.roles import PERMISSIONS, ROLES, Permission
from engine.console.sections import ConsoleSection, SectionTools, json_response
from engine.console.settings import ConsoleSettings
from engine.console.tables import sessions, tokens
from engine.console.throttle import LoginThrottle
from engine.services import Services
from engine.store import queries, textindex
from engine.store.db import utcnow
from engine.store.queries import SEARCH_STATUSES, STAT_COLUMNS, Search

if TYPE_CHECKING:
    from engine.channel import Channel

__all__ = ["PREFIX", "ConsoleApi"]

PREFIX = "/api/v1"
_MAX_ID = 2**63 - 1
Handler = Callable[[Request, Principal], Awaitable[Response]]


def _json(value: Any, status: int = 200) -> JSONResponse:
    return json_response(value, status)


def _stage(data: bytes | None, charset: str) -> dict[str, Any] | None:
    if data is None:
        return None
    text = decode(data, charset)
    stage: dict[str, Any] = {
        "text": text,
        "base64": base64.b64encode(data).decode("ascii"),
        "bytes": len(data),
    }
    segments = hl7view.segments(text)
    if segments is not None:
        stage["segments"] = segments
    return stage


def _free_text(wanted: str | None, *, enabled: bool) -> str | None:
    if wanted is None:
        return None
    if not enabled:
        raise params.BadParameter("text: free-text search is off here (store.text_index: false)")
    try:
        return textindex.check(wanted)
    except textindex.TextSearchError as exc:
        raise params.BadParameter(f"text: {exc}") from None


def _search(
    q: QueryParams, *, limit: int | None, before: int | None = None, text_index: bool = True
) -> Search:
    """The message search the filters of ``q`` ask for (``GET /messages``, ``POST /reprocess``)."""
    status = params.text(q, "status")
    if status is not None and status not in SEARCH_STATUSES:
        raise params.BadParameter(f"status: one of {', '.join(SEARCH_STATUSES)}")
    return Search(
        channel=params.text(q, "channel"),
        status=status,
        since=params.when(q, "since"),
        until=params.when(q, "until"),
        control_id=params.text(q, "control_id"),
        patient_id=params.text(q, "patient_id"),
        message_type=params.text(q, "type"),
        sending_facility=params.text(q, "facility"),
        destination=params.text(q, "destination"),
        text=_free_text(params.text(q, "text"), enabled=text_index),
        before_id=before,
        limit=limit,
    )


def _expires_at(db: Engine, who: Principal, credential: str) -> datetime | None:
    """When the caller's session or token ends (a token may never)."""
    if who.via == "session":
        query = select(sessions.c.expires_at).where(sessions.c.id_hash == accounts.digest(credential))
    else:
        query = select(tokens.c.expires_at).where(tokens.c.token_hash == accounts.digest(credential))
    with db.connect() as conn:
        found = conn.execute(query).scalar_one_or_none()
    return queries.as_utc(found) if found is not None else None


def _message_json(msg: dict[str, Any]) -> dict[str, Any]:
    """Every stage of a message, as ``hie messages show --json`` gives it; HL7 v2 stages also with
    their segments (field names looked up on first use: run it off the event loop)."""
    cs = msg["charset"]
    dels = []
    for d in msg["deliveries"]:
        sent: Any = _stage(d["sent"], cs)
        if sent is None and d["sent_at"] is not None and msg["raw"] is not None:
            sent = "unchanged"  # the received bytes, as they are in raw
        log = [{**a, "response": _stage(a["response"], cs)} for a in d["attempt_log"]]
        rest = {k: v for k, v in d.items() if k not in ("sent", "response", "attempt_log")}
        dels.append({**rest, "sent": sent, "response": _stage(d["response"], cs), "attempt_log": log})
    meta = {k: v for k, v in msg.items() if k not in ("raw", "content", "deliveries", "audit_count")}
    return {
        **meta,
        "pruned": msg["raw"] is None,
        "raw": _stage(msg["raw"], cs),
        "content": msg["content"],
        "deliveries": dels,
    }


class ConsoleApi:
    """The API's routes, bound to the engine's services."""

    def __init__(
        self,
        services: Services,
        settings: ConsoleSettings,
        *,
        secure_cookie: bool,
        sections: list[ConsoleSection] | None = None,
    ) -> None:
        self.services = services
        self.sections = services.app.console_sections if sections is None else sections
        self._listed = [  # GET /sections: the same answer for everyone, as long as the engine runs
            {
                "id": s.id,
                "roles": [r for r in ROLES if r in PERMISSIONS[s.permission]],
                "stylesheet": (s.static / "style.css").is_file(),
            }
            for s in self.sections
        ]
        self.settings = settings
        self.secure_cookie = secure_cookie
        self.throttle = LoginThrottle(settings.login_failures_per_minute, 60.0)
        self.guard = Guard(services)
        self._channels: dict[str, Channel] = {}

    def routes(self) -> list[BaseRoute]:
        p = PREFIX
        return [
            Route(f"{p}/openapi.json", self.openapi, methods=["GET"]),
            Route(f"{p}/session", self.login, methods=["POST"]),
            Route(f"{p}/session", self.whoami, methods=["GET"]),
            Route(f"{p}/session", self._guarded(None, self.logout), methods=["DELETE"]),
            Route(f"{p}/stats", self._guarded("stats", self.stats), methods=["GET"]),
            Route(f"{p}/channels", self._guarded("stats", self.channels), methods=["GET"]),
            Route(f"{p}/dashboard", self._guarded("stats", self.dashboard), methods=["GET"]),
            Route(f"{p}/messages", self._guarded("messages", self.messages), methods=["GET"]),
            Route(f"{p}/messages/{{id}}", self._guarded("messages", self.message), methods=["GET"]),
            Route(
                f"{p}/messages/{{id}}/reprocess", self._guarded("reprocess", self.reprocess), methods=["POST"]
            ),
            Route(f"{p}/reprocess", self._guarded("reprocess", self.reprocess_all), methods=["POST"]),
            Route(f"{p}/audit", self._guarded("audit", self.audit), methods=["GET"]),
            Route(f"{p}/audit.csv", self._guarded("audit", self.audit_csv), methods=["GET"]),
            Route(f"{p}/sections", self.list_sections, methods=["GET"]),
            *self._section_routes(),
        ]

    def _section_routes(self) -> list[BaseRoute]:
        """The routes of the plugins' console sections, under /api/v1/<section id>/."""
        tools = SectionTools(self.services, self.guard.audit)
        out: list[BaseRoute] = []
        for section in self.sections:
            for r in section.routes(tools):
                path = f"{PREFIX}/{section.id}{r.path}"
                out.append(Route(path, self._guarded(r.permission, r.handler), methods=list(r.methods)))
        return out

    def _guarded(
        self, permission: Permission | None, handler: Handler
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            who = await self.guard.check(request, permission)
            if isinstance(who, Response):
                return who
            try:
                return await handler(request, who)
            except params.BadParameter as exc:
                return error(400, str(exc))

        return endpoint

    # -- open --------------------------------------------------------------------------------------
    async def openapi(self, request: Request) -> Response:
        return JSONResponse(openapi.document(self.sections, SectionTools(self.services, self.guard.audit)))

    async def list_sections(self, request: Request) -> Response:
        """The plugins' console pages, so the console can offer them (open: it names no data)."""
        return _json({"sections": self._listed})

    async def login(self, request: Request) -> Response:
        try:
            body = await request.json()
            username, password = body["username"], body["password"]
            if not isinstance(username, str) or not isinstance(password, str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return error(400, 'expected JSON {"username": ..., "password": ...}')
        network = client_address(request)
        wait = self.throttle.retry_after(network)
        if wait > 0:
            await self.guard.audit(
                events.security_alert(
                    username[:100],
                    network=network,
                    description=f"login refused unchecked: too many failed logins from {network}",
                )
            )
            refusal = error(429, "too many failed logins from this address; try again later")
            refusal.headers["Retry-After"] = str(int(wait) + 1)
            return refusal
        try:
            who, session = await run_in_threadpool(
                accounts.login,
                self.services.db,
                self.services.ids,
                self.settings,
                username=username,
                password=password,
                network=network,
            )
        except LoginRefused:
            # one answer for every reason (unknown user, wrong password, locked): the audit trail has it
            self.throttle.failed(network)
            return error(401, "login failed")
        self.throttle.succeeded(network)
        minutes = self.settings.session_minutes
        response = JSONResponse(
            {"username": who.username, "role": who.role, "csrf_token": who.csrf, "expires_in": minutes * 60}
        )
        response.set_cookie(
            COOKIE,
            session,
            max_age=minutes * 60,
            path="/",
            httponly=True,
            samesite="strict",
            secure=self.secure_cookie,
        )
        return response

    async def logout(self, request: Request, who: Principal) -> Response:
        session = request.cookies.get(COOKIE)
        if who.via != "session" or not session:
            return error(400, "no console session to end (this request used a token)")
        network = client_address(request)
        await run_in_threadpool(
            accounts.logout, self.services.db, self.services.ids, who, session, network=network
        )
        response = JSONResponse({"ended": True})
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=self.secure_cookie)
        return response

    async def whoami(self, request: Request) -> Response:
        """Who the caller is, so that a reloaded page can carry on with its session."""
        header = request.headers.get("authorization", "")
        session = request.cookies.get(COOKIE)
        if not header and not session:
            # a page asking whether it is logged in, presenting nothing: not an authentication failure
            return error(401, "not logged in")
        who = await self.guard.check(request, None)
        if isinstance(who, Response):
            return who
        credential = session if who.via == "session" else header.partition(" ")[2].strip()
        expires = await run_in_threadpool(_expires_at, self.services.db, who, credential or "")
        return _json(
            {
                "username": who.username,
                "role": who.role,
                "via": who.via,
                "csrf_token": who.csrf if who.via == "session" else None,
                "expires_at": expires,
            }
        )

    # -- statistics and messages ----------------------------------------------------------------------
    async def stats(self, request: Request, who: Principal) -> Response:
        since = params.when(request.query_params, "since")
        counts = await run_in_threadpool(queries.stats, self.services.reads, since=since)
        keys = [*STAT_COLUMNS, "errored_messages", "errored_deliveries"]
        for cfg in self.services.app.channels:  # configured channels appear before their first message
            counts.setdefault(cfg.id, dict.fromkeys(keys, 0))
        names = sorted(counts)
        total = {k: sum(counts[n][k] for n in names) for k in keys}
        return _json({"since": since, "channels": {n: counts[n] for n in names}, "total": total})

    async def channels(self, request: Request, who: Principal) -> Response:
        return _json({"channels": dashboard.channel_list(self.services.app, self.services.telemetry)})

    async def dashboard(self, request: Request, who: Principal) -> Response:
        hours = params.integer(request.query_params, "hours", low=1, high=168, default=24)
        assert hours is not None
        app, telemetry = self.services.app, self.services.telemetry
        up = {c.id: dashboard.listening(telemetry, c.id) for c in app.channels}  # on the event loop
        window = dashboard.Window.last(hours, utcnow())
        counts = await run_in_threadpool(
            dashboard.store_counts,
            self.services.db,  # not the autocommit reader: see store_counts
            window,
            [c.id for c in app.channels],
            dashboard.queue_pairs(app),
        )
        return _json(dashboard.dashboard(app, counts, window, up))

    async def messages(self, request: Request, who: Principal) -> Response:
        q = request.query_params
        limit = params.integer(q, "limit", low=1, high=500, default=50)
        before = params.integer(q, "before", low=1, high=_MAX_ID)
        s = _search(q, limit=limit, before=before, text_index=self.services.app.store.text_index)
        rows = await run_in_threadpool(queries.search, self.services.reads, s)
        following = rows[-1]["id"] if rows and len(rows) == limit else None
        return _json({"messages": rows, "next_before": following})

    def _message_id(self, request: Request) -> int:
        text = request.path_params["id"]
        if not text.isdigit() or len(text) > 19 or int(text) > _MAX_ID:
            raise params.BadParameter("id: a message id is a positive integer")
        return int(text)

    async def message(self, request: Request, who: Principal) -> Response:
        ident = self._message_id(request)
        msg = await run_in_threadpool(queries.get_message, self.services.db, ident)
        if msg is None:
            return error(404, f"no message with id {ident}")
        event = audit.message_read_event(
            user=who.username,
            message_id=msg["id"],
            channel_id=msg["channel_id"],
            control_id=msg["control_id"],
            message_type=msg["message_type"],
            patients=[(i["value"], i["authority"]) for i in msg["identifiers"]],
            event_time=utcnow(),
            application="hie-console",
        )
        event.participants[0]["network_access_point"] = client_address(request)
        try:
            await self.guard.audit(event)
        except Exception:
            return error(503, "the audit record could not be written, so nothing is shown")
        return _json(await run_in_threadpool(_message_json, msg))

    async def reprocess(self, request: Request, who: Principal) -> Response:
        ident = self._message_id(request)
        only: set[str] | None = None
        raw = await request.body()
        if raw.strip():
            try:
                body = json.loads(raw)
                wanted = body.get("destinations") if isinstance(body, dict) else None
                if wanted is not None and (
                    not isinstance(wanted, list) or not all(isinstance(d, str) for d in wanted)
                ):
                    raise ValueError
            except ValueError:
                return error(400, 'expected JSON {"destinations": ["id", ...]} or no body')
            only = set(wanted) if wanted else None
        found = await run_in_threadpool(queries.originals, self.services.db, [ident])
        orig = found.get(ident)
        if orig is None:
            return error(404, f"no message with id {ident}")
        if orig["raw"] is None:
            return error(409, f"the raw bytes of message {ident} were pruned by retention")
        cfg = next((c for c in self.services.app.channels if c.id == orig["channel_id"]), None)
        if cfg is None or not cfg.enabled:
            return error(409, f"channel {orig['channel_id']} is not configured and enabled here")
        known = [d.id for d in cfg.destinations]
        unknown = sorted((only or set()) - set(known))
        if unknown:
            return error(400, f"channel {cfg.id} has no destination {', '.join(unknown)}", destinations=known)
        result = await reprocess_one(
            self.services, self._channel(cfg), orig, only, who.username, client_address(request)
        )
        return _json(result, 201)

    def _channel(self, cfg: ChannelConfig) -> Channel:
        """This API's own instance of a channel, to run messages through it again."""
        channel = self._channels.get(cfg.id)
        if channel is None:
            from engine.channel import Channel  # only reprocessing needs a channel of its own

            channel = self._channels[cfg.id] = Channel(cfg, self.services)
        return channel

    async def reprocess_all(self, request: Request, who: Principal) -> Response:
        """Reprocess every message matching a search (``engine.console.bulk``)."""
        usage = (
            'expected JSON {"filter": {"channel", "status", "since", "until", "control_id", "patient_id", '
            f'"type", "facility", "destination"}}, "destinations": ["id", ...], "limit": 1-{MAX_LIMIT}}}'
        )
        try:
            body = json.loads(await request.body())
        except ValueError:
            return error(400, usage)
        if not isinstance(body, dict) or set(body) - {"filter", "destinations", "limit"}:
            return error(400, usage)
        wanted, limit, chosen = body.get("filter"), body.get("limit", MAX_LIMIT), body.get("destinations")
        if not isinstance(wanted, dict) or set(wanted) - set(params.SEARCH_FILTERS):
            return error(400, f"filter: an object of {', '.join(params.SEARCH_FILTERS)}")
        if not all(isinstance(v, str) or v is None for v in wanted.values()):
            return error(400, "filter: every value is a string")
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
            return error(400, f"limit: an integer from 1 to {MAX_LIMIT}")
        if chosen is not None and (
            not isinstance(chosen, list) or not all(isinstance(d, str) and d for d in chosen)
        ):
            return error(400, 'destinations: ["id", ...]')
        filters = QueryParams({k: v for k, v in wanted.items() if v})
        s = _search(filters, limit=limit, text_index=self.services.app.store.text_index)
        try:
            result = await reprocess_matching(
                self.services,
                self._channel,
                s,
                set(chosen) if chosen else None,
                who.username,
                client_address(request),
                limit=limit,
            )
        except BulkRefused as refused:
            return error(refused.status, refused.text, **refused.extra)
        return _json(result.json(), 201)

    # -- audit trail ----------------------------------------------------------------------------------
    def _audit_search(self, request: Request, *, max_limit: int, default: int) -> AuditSearch:
        q = request.query_params
        return AuditSearch(
            since=params.when(q, "since"),
            until=params.when(q, "until"),
            patient_id=params.text(q, "patient_id"),
            user=params.text(q, "user"),
            event_id=params.text(q, "event_id"),
            before_id=params.integer(q, "before", low=1, high=_MAX_ID),
            limit=params.integer(q, "limit", low=1, high=max_limit, default=default),
        )

    async def _log_used(self, request: Request, who: Principal, s: AuditSearch) -> Response | None:
        """The audit record of this read of the audit trail, committed first; a refusal if it fails."""
        query = request.url.query
        event = events.audit_log_used(
            who.username,
            network=client_address(request),
            uri=request.url.path,
            description=f"searched: {query}" if query else "searched: everything",
            patient=s.patient_id,
        )
        try:
            await self.guard.audit(event)
        except Exception:
            return error(503, "the audit record could not be written, so nothing is shown")
        return None

    async def audit(self, request: Request, who: Principal) -> Response:
        s = self._audit_search(request, max_limit=1000, default=100)
        refused = await self._log_used(request, who, s)
        if refused is not None:
            return refused
        rows = await run_in_threadpool(search_audit, self.services.reads, s)
        following = rows[-1]["id"] if rows and len(rows) == s.limit else None
        return _json({"events": rows, "next_before": following})

    async def audit_csv(self, request: Request, who: Principal) -> Response:
        s = self._audit_search(request, max_limit=100_000, default=10_000)
        refused = await self._log_used(request, who, s)
        if refused is not None:
            return refused
        rows = await run_in_threadpool(search_audit, self.services.reads, s)
        return Response(
            to_csv(rows),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="audit.csv"'},
        )
