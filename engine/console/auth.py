"""Who is calling the API, and may they: a Bearer token or the session cookie (+ CSRF), then the role.

Refusals are answered and audited in one place: 401 (no valid credentials; 110114 User Authentication,
failed) and 403 (a role that may not, or a cookie request without its CSRF token; 110113 Security
Alert). Bodies are JSON and name what was missing, never echo a credential.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from engine.audit import AuditEvent
from engine.console import accounts, events
from engine.console.accounts import Principal
from engine.console.roles import PERMISSIONS, Permission, roles_for
from engine.services import Services
from engine.store.schema import audit_events
from engine.store.writer import Batch

__all__ = ["COOKIE", "CSRF_HEADER", "Guard", "client_address", "error"]

COOKIE = "hie_session"
CSRF_HEADER = "X-CSRF-Token"
_STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def error(status: int, text: str, **extra: object) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Bearer realm="hie"'} if status == 401 else None
    return JSONResponse({"error": text, **extra}, status_code=status, headers=headers)


def client_address(request: Request) -> str:
    return request.client.host if request.client is not None else ""


class Guard:
    """Checks a request's credentials and role; writes the audit record of each refusal."""

    def __init__(self, services: Services) -> None:
        self.services = services

    async def audit(self, event: AuditEvent) -> None:
        batch = Batch()
        batch.insert(audit_events, event.row(self.services.ids.next()))
        await self.services.writer.write(batch)

    async def principal(self, request: Request) -> Principal | None:
        header = request.headers.get("authorization", "")
        scheme, _, credential = header.partition(" ")
        db = self.services.db
        if scheme.lower() == "bearer" and credential.strip():
            return await run_in_threadpool(accounts.from_token, db, credential.strip())
        if header:
            return None  # another scheme (Basic...) is not accepted
        session = request.cookies.get(COOKIE)
        if session:
            return await run_in_threadpool(accounts.from_session, db, session)
        return None

    async def check(self, request: Request, permission: Permission | None) -> Principal | Response:
        """The caller, or the refusal to send back. ``permission`` None: any valid login will do."""
        network = client_address(request)
        what = f"{request.method} {request.url.path}"
        who = await self.principal(request)
        if who is None:
            await self.audit(
                events.authentication_event(
                    "", ok=False, network=network, description=f"no valid credentials for {what}"
                )
            )
            return error(401, "authentication required: a valid Bearer token or console session")
        sent = request.headers.get(CSRF_HEADER)
        if (
            who.via == "session"
            and request.method in _STATE_CHANGING
            and not accounts.csrf_matches(who, sent)
        ):
            await self.audit(
                events.security_alert(
                    who.username, network=network, description=f"CSRF token missing: {what}"
                )
            )
            return error(403, f"a request made with the session cookie must send {CSRF_HEADER}")
        if permission is not None and who.role not in PERMISSIONS[permission]:
            needed = roles_for(permission)
            await self.audit(
                events.security_alert(
                    who.username, network=network, description=f"role {who.role} may not {what}"
                )
            )
            return error(403, f"role {who.role} may not do this", required_roles=needed)
        return who
