"""``GET /api/v1/session`` and ``GET /api/v1/channels`` over real HTTP against a running engine, on
SQLite and PostgreSQL: a reloaded page learns who is logged in (or that nobody is), and every role
sees the configured channels, whether their source listens, and their URLs without credentials."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import httpx
from sqlalchemy import update

from engine.config import AppConfig
from engine.console import accounts
from engine.console.dashboard import public_url
from engine.console.tables import sessions
from engine.store.db import utcnow
from tests.conftest import free_port, running
from tests.engine.console.test_api import PASSWORD, ROLES, deployment


async def test_a_reloaded_page_learns_who_is_logged_in_until_the_session_ends(
    make_app: Callable[..., AppConfig], store_url: str
) -> None:
    async with deployment(make_app, store_url) as d:
        async with d.client() as c:
            r = await c.get("/api/v1/session")
            assert r.status_code == 401 and r.json()["error"]

            login = (
                await c.post("/api/v1/session", json={"username": "auditor", "password": PASSWORD})
            ).json()
            r = await c.get("/api/v1/session")
            assert r.status_code == 200, r.text
            me = r.json()
            assert me["username"] == "auditor" and me["role"] == "auditor" and me["via"] == "session"
            # the page gets its CSRF token back after a reload (the cookie itself is HttpOnly)
            assert me["csrf_token"] == login["csrf_token"]
            ends = datetime.fromisoformat(me["expires_at"])
            assert utcnow() < ends <= utcnow() + timedelta(seconds=login["expires_in"])

            with d.db.begin() as conn:
                conn.execute(update(sessions).values(expires_at=utcnow() - timedelta(seconds=1)))
            assert (await c.get("/api/v1/session")).status_code == 401

            c.cookies.clear()
            login = (
                await c.post("/api/v1/session", json={"username": "viewer", "password": PASSWORD})
            ).json()
            assert (await c.get("/api/v1/session")).json()["role"] == "viewer"
            await c.delete("/api/v1/session", headers={"X-CSRF-Token": login["csrf_token"]})
            assert (await c.get("/api/v1/session")).status_code == 401

        for role in ROLES:
            async with d.client(role) as c:
                me = (await c.get("/api/v1/session")).json()
            assert me["username"] == role and me["role"] == role
            assert me["via"] == "token" and me["csrf_token"] is None  # a token needs no CSRF token
            assert datetime.fromisoformat(me["expires_at"]) > utcnow()


async def test_every_role_sees_the_channels_their_sources_and_destinations(
    make_app: Callable[..., AppConfig], store_url: str
) -> None:
    async with deployment(make_app, store_url) as d:
        for role in ROLES:
            async with d.client(role) as c:
                r = await c.get("/api/v1/channels")
            assert r.status_code == 200, (role, r.text)
            channels = {ch["id"]: ch for ch in r.json()["channels"]}
            assert set(channels) == {"adt", "console"}
        adt = channels["adt"]
        assert adt["enabled"] is True and adt["scheme"] == "mllp" and adt["listening"] is True
        assert adt["source"].startswith("mllp://127.0.0.1:")
        assert adt["destinations"] == [
            {"id": "out", "scheme": "memory", "target": "console-out"},
            {"id": "copy", "scheme": "memory", "target": "console-copy"},
        ]
        assert channels["console"]["listening"] is True and channels["console"]["destinations"] == []
        async with d.client() as anonymous:
            assert (await anonymous.get("/api/v1/channels")).status_code == 401


async def test_channels_show_no_credentials_and_a_disabled_source_is_not_listening(
    make_app: Callable[..., AppConfig], store_url: str
) -> None:
    port, mllp = free_port(), free_port()
    secret = "s3cr3t-pass"
    old = (
        "id: old\nenabled: false\ndescription: retired feed\n"
        f"source: {{url: 'mllp://127.0.0.1:{mllp}'}}\n"
        "destinations:\n"
        f"  - {{id: lis, url: 'http://lis-user:{secret}@127.0.0.1:9/hl7/in?token={secret}'}}\n"
    )
    console = f"id: console\nsource: {{url: 'console://127.0.0.1:{port}'}}\n"
    app = make_app({"old": old, "console": console}, store_url=store_url)
    async with running(app) as rt:
        assert rt.services is not None
        db, ids = rt.services.db, rt.services.ids
        accounts.add_user(db, ids, username="v", password=PASSWORD, role="viewer", actor="t")
        _, token = accounts.issue_token(db, ids, username="v", days=1, actor="t")
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {token}"}
        ) as c:
            r = await c.get("/api/v1/channels")
    assert r.status_code == 200 and secret not in r.text and "lis-user" not in r.text
    old_channel = next(ch for ch in r.json()["channels"] if ch["id"] == "old")
    assert old_channel["enabled"] is False and old_channel["description"] == "retired feed"
    assert old_channel["listening"] is None  # not run here: neither up nor down
    assert old_channel["destinations"] == [{"id": "lis", "scheme": "http", "target": "127.0.0.1:9/hl7/in"}]


def test_public_url_keeps_where_and_drops_who() -> None:
    assert public_url("sftp://user:pw@files.example.org:2222/in/adt") == (
        "sftp",
        "files.example.org:2222/in/adt",
    )
    assert public_url("file:///var/hie/out") == ("file", "/var/hie/out")
    assert public_url("mllp://[::1]:2575") == ("mllp", "[::1]:2575")
    assert public_url("https://h.example/api?key=secret#x") == ("https", "h.example/api")
