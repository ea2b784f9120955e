"""The console REST API over real HTTP against a running engine, on SQLite and PostgreSQL: each role's
allowed and forbidden calls, audited body reads, sessions with CSRF, lockout, expired and revoked
credentials, hostile search values, reprocessing, the audit CSV, and the OpenAPI document."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

import httpx
from sqlalchemy import Engine, func, select, update

from engine.config import AppConfig
from engine.console import accounts
from engine.console.api import ConsoleApi
from engine.console.openapi import DOCUMENT
from engine.console.settings import ConsoleSettings
from engine.console.tables import sessions, tokens
from engine.runtime import Runtime
from engine.store.db import utcnow
from engine.store.schema import audit_events, messages
from tests.conftest import free_port, hl7_message, running
from tests.engine.connectors.mllp_peers import hl7_send

ROLES = ("admin", "integrator", "auditor", "viewer")
PASSWORD = "correct horse battery"


@dataclass
class Deployment:
    rt: Runtime
    db: Engine
    base: str
    tokens: dict[str, str]  # role -> a token of the user named after the role
    token_ids: dict[str, int]
    message_ids: list[int]

    def client(self, role: str | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        return httpx.AsyncClient(base_url=self.base, headers=headers, timeout=10)

    def audit(self, event_code: str) -> list[dict[str, object]]:
        with self.db.connect() as conn:
            rows = conn.execute(
                select(audit_events)
                .where(audit_events.c.event_id.like(event_code + "^%"))
                .order_by(audit_events.c.id)
            ).all()
        return [dict(r._mapping) for r in rows]


@asynccontextmanager
async def deployment(make_app: Callable[..., AppConfig], store_url: str) -> AsyncIterator[Deployment]:
    mllp, port = free_port(), free_port()
    adt = (
        f"id: adt\nsource: {{url: 'mllp://127.0.0.1:{mllp}'}}\n"
        "destinations:\n  - {id: out, url: 'memory://console-out'}\n  - {id: copy, url: 'memory://console-copy'}\n"
    )
    console = f"id: console\nsource: {{url: 'console://127.0.0.1:{port}'}}\n"
    app = make_app({"adt": adt, "console": console}, store_url=store_url)
    async with running(app) as rt:
        assert rt.services is not None
        db, ids = rt.services.db, rt.services.ids
        issued, token_ids = {}, {}
        for role in ROLES:
            accounts.add_user(db, ids, username=role, password=PASSWORD, role=role, actor="test")
            token_ids[role], issued[role] = accounts.issue_token(db, ids, username=role, days=1, actor="test")
        await hl7_send(
            mllp, hl7_message("CTL-1", patient="P-1").encode(), hl7_message("CTL-2", patient="P-2").encode()
        )
        with db.connect() as conn:
            mids = [int(i) for i in conn.execute(select(messages.c.id).order_by(messages.c.id)).scalars()]
        yield Deployment(rt, db, f"http://127.0.0.1:{port}", issued, token_ids, mids)


async def test_each_role_may_do_what_it_is_for_and_nothing_else(
    make_app: Callable[..., AppConfig], store_url: str
) -> None:
    async with deployment(make_app, store_url) as d:
        first = d.message_ids[0]
        calls = {
            "stats": ("GET", "/api/v1/stats"),
            "search": ("GET", "/api/v1/messages?patient_id=P-1"),
            "body": ("GET", f"/api/v1/messages/{first}"),
            "reprocess": ("POST", f"/api/v1/messages/{first}/reprocess"),
            "audit": ("GET", "/api/v1/audit"),
            "csv": ("GET", "/api/v1/audit.csv"),
        }
        allowed = {
            "admin": set(calls),
            "integrator": {"stats", "search", "body", "reprocess"},
            "auditor": {"stats", "search", "body", "audit", "csv"},
            "viewer": {"stats"},
        }
        for role in ROLES:
            async with d.client(role) as c:
                for name, (method, path) in calls.items():
                    r = await c.request(method, path)
                    if name in allowed[role]:
                        assert r.status_code in (200, 201), (role, name, r.text)
                    else:
                        assert r.status_code == 403, (role, name, r.text)
                        assert r.headers["content-type"] == "application/json"
                        assert role not in r.json()["required_roles"]
        # every forbidden call is a Security Alert naming the user
        alerts = d.audit("110113")
        assert {a["user_id"] for a in alerts} == {"integrator", "auditor", "viewer"}
        assert len([a for a in alerts if a["user_id"] == "viewer"]) == 5

        async with d.client("auditor") as c:
            found = (await c.get("/api/v1/messages", params={"patient_id": "P-1"})).json()["messages"]
            # the original and the copies admin and integrator reprocessed, newest first
            assert [m["control_id"] for m in found] == ["CTL-1"] * 3
            # 64-bit ids are strings of digits in JSON (a browser keeps them exact)
            assert [m["reprocessed_from"] for m in found] == [str(first), str(first), None]
            assert "raw" not in found[0]  # metadata only
            body = (await c.get(f"/api/v1/messages/{first}")).json()
            assert "CTL-1" in body["raw"]["text"]
            assert [x["destination"] for x in body["deliveries"]] == ["out", "copy"]
        # the body reads are audited as hie messages show audits them: 110110 read, user and address
        reads = [r for r in d.audit("110110") if r["action"] == "R" and r["user_id"] == "auditor"]
        assert len(reads) == 2 and reads[0]["message_id"] == first
        assert "P-1" in str(reads[0]["patient_ids"])
        assert '"network_access_point": "127.0.0.1"' in str(reads[0]["participants"])

        async with d.client() as anonymous:
            r = await anonymous.get("/api/v1/stats")
            assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
            r = await anonymous.get("/api/v1/stats", headers={"Authorization": "Bearer hie_not-a-token"})
            assert r.status_code == 401
        assert len([a for a in d.audit("110114") if a["outcome"] == 4]) == 2


async def test_reprocess_makes_a_new_message_for_the_chosen_destinations(
    make_app: Callable[..., AppConfig], store_url: str
) -> None:
    async with deployment(make_app, store_url) as d:
        first = d.message_ids[0]
        async with d.client("integrator") as c:
            r = await c.post(f"/api/v1/messages/{first}/reprocess", json={"destinations": ["copy"]})
            assert r.status_code == 201, r.text
            result = r.json()
            assert result["original"] == str(first) and result["queued"] == ["copy"]
            assert result["status"] == "received"
            r = await c.post(f"/api/v1/messages/{first}/reprocess", json={"destinations": ["nowhere"]})
            assert r.status_code == 400 and "nowhere" in r.json()["error"]
            r = await c.post(f"/api/v1/messages/{first}/reprocess", content=b"{not json")
            assert r.status_code == 400
            body = (await c.get(f"/api/v1/messages/{result['id']}")).json()
        assert body["reprocessed_from"] == str(first)
        status = {x["destination"]: x["status"] for x in body["deliveries"]}
        assert status["out"] == "filtered" and status["copy"] in ("queued", "sent")
        exports = [r for r in d.audit("110106") if r["action"] == "E"]
        assert len(exports) == 1 and exports[0]["user_id"] == "integrator"
        assert exports[0]["message_id"] == first


async def test_sessions_need_csrf_end_and_expire_and_wrong_passwords_lock_the_account(
    make_app: Callable[..., AppConfig], store_url: str
) -> None:
    async with deployment(make_app, store_url) as d:
        first = d.message_ids[0]
        async with d.client() as c:
            r = await c.post("/api/v1/session", json={"username": "integrator", "password": PASSWORD})
            assert r.status_code == 200, r.text
            csrf = r.json()["csrf_token"]
            cookie = r.headers["set-cookie"].lower()
            assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie
            assert (await c.get("/api/v1/messages")).status_code == 200
            # a cookie POST without the CSRF token is refused: another site's form could send the cookie
            r = await c.post(f"/api/v1/messages/{first}/reprocess")
            assert r.status_code == 403 and "X-CSRF-Token" in r.json()["error"]
            r = await c.post(f"/api/v1/messages/{first}/reprocess", headers={"X-CSRF-Token": "wrong"})
            assert r.status_code == 403
            r = await c.post(f"/api/v1/messages/{first}/reprocess", headers={"X-CSRF-Token": csrf})
            assert r.status_code == 201
            assert (await c.delete("/api/v1/session", headers={"X-CSRF-Token": csrf})).status_code == 200
            assert (await c.get("/api/v1/messages")).status_code == 401

            # an expired session
            r = await c.post("/api/v1/session", json={"username": "auditor", "password": PASSWORD})
            assert (await c.get("/api/v1/audit")).status_code == 200
            with d.db.begin() as conn:
                conn.execute(update(sessions).values(expires_at=utcnow() - timedelta(seconds=1)))
            assert (await c.get("/api/v1/audit")).status_code == 401
            c.cookies.clear()

            # five wrong passwords lock the account: then even the right one is refused
            for _ in range(5):
                r = await c.post("/api/v1/session", json={"username": "viewer", "password": "guess"})
                assert r.status_code == 401 and r.json() == {"error": "login failed"}
            r = await c.post("/api/v1/session", json={"username": "viewer", "password": PASSWORD})
            assert r.status_code == 401
            r = await c.post("/api/v1/session", json={"username": "admin", "password": PASSWORD})
            assert r.status_code == 200  # others are not locked out
            r = await c.post("/api/v1/session", content=b"<script>alert(1)</script>")
            assert r.status_code == 400 and "<script>" not in r.text
        failures = [a for a in d.audit("110114") if a["user_id"] == "viewer"]
        assert len(failures) == 6 and all(a["outcome"] == 4 for a in failures)
        assert "locked" in str(failures[4]["outcome_description"])
        assert failures[5]["outcome_description"] == "account locked"

        # a revoked token, an expired token
        accounts.revoke_token(d.db, d.rt.services.ids, token_id=d.token_ids["admin"], actor="test")  # type: ignore[union-attr]
        with d.db.begin() as conn:
            conn.execute(
                update(tokens)
                .where(tokens.c.id == d.token_ids["auditor"])
                .values(expires_at=utcnow() - timedelta(seconds=1))
            )
        for role in ("admin", "auditor"):
            async with d.client(role) as c:
                assert (await c.get("/api/v1/stats")).status_code == 401
        async with d.client("viewer") as c:  # a locked account's token still works: it is no password
            assert (await c.get("/api/v1/stats")).status_code == 200


async def test_hostile_and_bad_parameters_are_refused_or_find_nothing(
    make_app: Callable[..., AppConfig], store_url: str
) -> None:
    async with deployment(make_app, store_url) as d:
        async with d.client("admin") as c:
            for value in ("'; DROP TABLE messages; --", "<script>alert(1)</script>", "1' OR '1'='1"):
                for name in ("control_id", "patient_id", "channel", "facility", "type"):
                    r = await c.get("/api/v1/messages", params={name: value})
                    assert r.status_code == 200 and r.json()["messages"] == [], (name, value)
                r = await c.get("/api/v1/audit", params={"patient_id": value, "user": value})
                assert r.status_code == 200 and r.json()["events"] == []
            bad = [
                "/api/v1/messages?status=bogus",
                "/api/v1/messages?limit=0",
                "/api/v1/messages?limit=ten",
                "/api/v1/messages?before=-1",
                "/api/v1/messages?since=<script>",
                "/api/v1/messages/abc",
                "/api/v1/messages/99999999999999999999999",
                "/api/v1/audit?limit=100000",
            ]
            for path in bad:
                r = await c.get(path)
                assert r.status_code == 400, path
                assert r.headers["content-type"] == "application/json" and "<script>" not in r.text
            assert (await c.get("/api/v1/messages/12345")).status_code == 404
            # paging with the before cursor
            page = (await c.get("/api/v1/messages", params={"limit": 1})).json()
            assert len(page["messages"]) == 1 and page["next_before"] == str(d.message_ids[1])
            rest = (
                await c.get("/api/v1/messages", params={"limit": 1, "before": page["next_before"]})
            ).json()
            assert [m["id"] for m in rest["messages"]] == [str(d.message_ids[0])]
        with d.db.connect() as conn:
            assert conn.execute(select(func.count()).select_from(messages)).scalar_one() == 2


async def test_audit_csv_and_search(make_app: Callable[..., AppConfig], store_url: str) -> None:
    async with deployment(make_app, store_url) as d:
        first = d.message_ids[0]
        async with d.client("auditor") as c:
            await c.get(f"/api/v1/messages/{first}")
            r = await c.get("/api/v1/audit.csv", params={"user": "auditor", "event_id": "110110"})
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
            rows = list(csv.DictReader(io.StringIO(r.text)))
            assert len(rows) == 1 and rows[0]["message_id"] == str(first)
            assert rows[0]["event_id"] == "110110^Patient Record^DCM" and "P-1" in rows[0]["patient_ids"]
            found = (await c.get("/api/v1/audit", params={"patient_id": "P-1"})).json()["events"]
            assert found and all("P-1" in e["patient_ids"] for e in found)
            reads = [e for e in found if not e["event_id"].startswith("110101^")]
            assert {e["message_id"] for e in reads} == {str(first)}
        # reading the audit trail is itself audited (110101 Audit Log Used), a patient's search under
        # the patient: "who looked at P-1" finds the auditor's search too
        used = d.audit("110101")
        assert [u["user_id"] for u in used] == ["auditor", "auditor"]
        assert "event_id=110110" in str(used[0]["outcome_description"])
        assert used[1]["patient_ids"] == "P-1" and used[1]["action"] == "R"


async def test_an_address_failing_many_logins_is_held_back(
    make_app: Callable[..., AppConfig], store_url: str
) -> None:
    async with deployment(make_app, store_url) as d:
        async with d.client() as c:
            # password spraying: one wrong guess for each of many names never locks an account...
            for n in range(20):
                r = await c.post("/api/v1/session", json={"username": f"user{n}", "password": "guess"})
                assert r.status_code == 401
            # ...but the address is held back, even with a right password, and told when to retry
            r = await c.post("/api/v1/session", json={"username": "admin", "password": PASSWORD})
            assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
            async with d.client("admin") as other:  # API tokens are not logins: unaffected
                assert (await other.get("/api/v1/stats")).status_code == 200
        alerts = [a for a in d.audit("110113") if "too many failed logins" in str(a["outcome_description"])]
        assert len(alerts) == 1 and alerts[0]["user_id"] == "admin"


async def test_the_openapi_document_describes_every_route(
    make_app: Callable[..., AppConfig], store_url: str
) -> None:
    async with deployment(make_app, store_url) as d:
        async with d.client() as c:
            served = (await c.get("/api/v1/openapi.json")).json()
        assert served["openapi"].startswith("3.1")
        assert d.rt.services is not None
        api = ConsoleApi(d.rt.services, ConsoleSettings(), secure_cookie=False)
        # the console's own routes as written in DOCUMENT, the plugins' sections' added to them
        assert {k: v for k, v in served["paths"].items() if k in DOCUMENT["paths"]} == DOCUMENT["paths"]
        assert api.sections and set(served["paths"]) > set(DOCUMENT["paths"])
        routes = {
            (route.path, method.lower())
            for route in api.routes()
            for method in (route.methods or ())  # type: ignore[attr-defined]
            if method != "HEAD"
        }
        documented = {(path, method) for path, item in served["paths"].items() for method in item}
        assert routes == documented


async def test_a_message_whose_bytes_retention_pruned_cannot_be_reprocessed(
    make_app: Callable[..., AppConfig], store_url: str
) -> None:
    async with deployment(make_app, store_url) as d:
        pruned = d.message_ids[0]
        with d.db.begin() as conn:
            conn.execute(update(messages).where(messages.c.id == pruned).values(raw=None, content=None))
        async with d.client("integrator") as c:
            r = await c.post(f"/api/v1/messages/{pruned}/reprocess")
            body = (await c.get(f"/api/v1/messages/{pruned}")).json()
        assert r.status_code == 409 and "pruned by retention" in r.json()["error"]
        assert body["raw"] is None  # the metadata is still there to read
        with d.db.connect() as conn:
            copies = conn.execute(select(messages.c.id).where(messages.c.reprocessed_from == pruned)).all()
        assert copies == []
