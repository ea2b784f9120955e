"""Console sections (engine.console.sections): a plugin's pages and API routes join the console.

A test plugin (``demo_plugin``: one section, ``demo``) runs in a real engine beside the shipped ones:
its routes are guarded and audited like the console's own, its files are served under
``/console/sections/demo/``, it is listed for the roles that may use it, the OpenAPI document describes
it, and it shows up in the browser's nav and opens there. A broken section is a configuration problem.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from engine.config import AppConfig, load_config
from engine.console import accounts
from engine.console.sections import check_sections
from engine.errors import ConfigError
from engine.store.schema import audit_events
from tests.conftest import far_from_now, free_port, running
from tests.engine.console.demo_plugin import DEMO

ROLES = ("admin", "integrator", "auditor", "viewer")
QUIET = f"retention: {{prune_at: '{far_from_now()}'}}\n"


def app_with(tmp_path: Path, plugins: str, channels: dict[str, str], store_url: str = "") -> AppConfig:
    """config.yaml naming ``plugins`` (make_app's always names the default ones)."""
    (tmp_path / "channels").mkdir(exist_ok=True)
    for cid, text in channels.items():
        (tmp_path / "channels" / f"{cid}.yaml").write_text(text, encoding="utf-8")
    url = store_url or f"sqlite:///{tmp_path / 'store.db'}"
    (tmp_path / "config.yaml").write_text(
        f"engine: {{data_dir: data, plugins: [profiles.plugin, {plugins}]}}\n"
        f"store: {{url: '{url}'}}\n{QUIET}",
        encoding="utf-8",
    )
    return load_config(tmp_path / "config.yaml")


@asynccontextmanager
async def demo(tmp_path: Path, store_url: str = "") -> AsyncIterator[tuple[str, dict[str, str], object]]:
    port = free_port()
    console = f"id: console\nsource: {{url: 'console://127.0.0.1:{port}'}}\n"
    app = app_with(tmp_path, "tests.engine.console.demo_plugin", {"console": console}, store_url)
    async with running(app) as rt:
        assert rt.services is not None
        db, ids = rt.services.db, rt.services.ids
        tokens = {}
        for role in ROLES:
            accounts.add_user(db, ids, username=role, password="pw-" + role * 3, role=role, actor="test")
            tokens[role] = accounts.issue_token(db, ids, username=role, days=1, actor="test")[1]
        yield f"http://127.0.0.1:{port}", tokens, db


def audits(db: object, code: str, user: str) -> list[str]:
    with db.connect() as conn:  # type: ignore[attr-defined]
        return list(
            conn.execute(
                select(audit_events.c.outcome_description).where(
                    audit_events.c.event_id.like(code + "^%"), audit_events.c.user_id == user
                )
            ).scalars()
        )


async def test_a_sections_routes_are_guarded_and_audited_like_the_consoles_own(
    tmp_path: Path, store_url: str
) -> None:
    async with demo(tmp_path, store_url) as (base, tokens, db):
        async with httpx.AsyncClient(base_url=base, timeout=10) as c:
            listed = (await c.get("/api/v1/sections")).json()["sections"]
            assert (await c.get("/api/v1/demo/items")).status_code == 401
            by_role = {}
            for role in ROLES:
                auth = {"Authorization": f"Bearer {tokens[role]}"}
                by_role[role] = await c.get("/api/v1/demo/items", headers=auth)
            auth = {"Authorization": f"Bearer {tokens['auditor']}"}
            bad = await c.get("/api/v1/demo/items?limit=99", headers=auth)
            refused_post = await c.post("/api/v1/demo/items", json={"item": "x"}, headers=auth)
            auth = {"Authorization": f"Bearer {tokens['integrator']}"}
            posted = await c.post("/api/v1/demo/items", json={"item": "gamma"}, headers=auth)
            malformed = await c.post("/api/v1/demo/items", json={"item": 1}, headers=auth)
        demo_listed = next(s for s in listed if s["id"] == "demo")
        assert demo_listed == {"id": "demo", "roles": ["admin", "integrator", "auditor"], "stylesheet": True}
        assert {s["id"] for s in listed} >= {"empi", "documents", "uploads", "studies", "demo"}
        for role in ("admin", "integrator", "auditor"):
            assert by_role[role].status_code == 200
            assert by_role[role].json() == {"items": ["alpha", "beta", str(2**60)], "next_before": None}
            assert audits(db, "110112", role), f"{role}'s read was audited"
        assert by_role["viewer"].status_code == 403
        assert by_role["viewer"].json()["required_roles"] == ["admin", "integrator", "auditor"]
        assert not audits(db, "110112", "viewer")
        assert any("may not GET /api/v1/demo/items" in (t or "") for t in audits(db, "110113", "viewer"))
        assert bad.status_code == 400 and bad.json()["error"].startswith("limit")
        assert refused_post.status_code == 403 and refused_post.json()["required_roles"] == [
            "admin",
            "integrator",
        ]
        assert posted.status_code == 201 and posted.json() == {"added": "gamma"}
        assert malformed.status_code == 400


async def test_a_session_must_send_its_csrf_token_to_a_sections_post(
    tmp_path: Path,
) -> None:
    async with demo(tmp_path) as (base, _tokens, _db):
        async with httpx.AsyncClient(base_url=base, timeout=10) as c:
            login = await c.post(
                "/api/v1/session", json={"username": "integrator", "password": "pw-" + "integrator" * 3}
            )
            csrf = login.json()["csrf_token"]
            without = await c.post("/api/v1/demo/items", json={"item": "x"})
            with_token = await c.post(
                "/api/v1/demo/items", json={"item": "x"}, headers={"X-CSRF-Token": csrf}
            )
        assert without.status_code == 403 and "X-CSRF-Token" in without.json()["error"]
        assert with_token.status_code == 201


async def test_a_sections_files_are_served_and_its_routes_documented(
    tmp_path: Path,
) -> None:
    async with demo(tmp_path) as (base, _tokens, _db):
        async with httpx.AsyncClient(base_url=base, timeout=10) as c:
            page = await c.get("/console/sections/demo/page.js")
            words = await c.get("/console/sections/demo/zh.json")
            css = await c.get("/console/sections/demo/style.css")
            outside = await c.get("/console/sections/demo/../../../demo_plugin.py")
            missing = await c.get("/console/sections/demo/demo_plugin.py")
            document = (await c.get("/api/v1/openapi.json")).json()
        assert page.status_code == 200 and page.headers["content-type"] == "text/javascript; charset=utf-8"
        assert "Content-Security-Policy" in page.headers
        assert words.json()["demo.nav"] == "演示"
        assert css.headers["content-type"] == "text/css; charset=utf-8"
        assert outside.status_code == 404 and missing.status_code == 404
        item = document["paths"]["/api/v1/demo/items"]
        assert item["get"]["summary"] == "the demo items (admin, integrator, auditor)"
        assert [p["name"] for p in item["get"]["parameters"]] == ["limit", "before"]
        assert item["post"]["summary"] == "add a demo item (admin, integrator)"
        assert "requestBody" in item["post"]


def test_a_broken_section_is_a_configuration_problem(tmp_path: Path) -> None:
    bad_id = replace(DEMO, id="Messages!")
    reserved = replace(DEMO, id="messages")
    no_files = replace(DEMO, id="other", static=tmp_path)
    problems = check_sections([DEMO, bad_id, reserved, no_files, DEMO])
    assert any("'Messages!'" in p for p in problems)
    assert any("'messages'" in p for p in problems)
    assert any("other" in p and "page.js is missing" in p for p in problems)
    assert any("'demo' is used twice" in p for p in problems)
    assert check_sections([DEMO]) == []


def test_hie_check_names_a_plugin_whose_section_is_broken(
    tmp_path: Path,
) -> None:
    module = tmp_path / "broken_section_plugin.py"
    module.write_text(
        "from pathlib import Path\n"
        "from engine.console.sections import ConsoleSection\n"
        "from engine.plugins import Plugin\n"
        "PLUGIN = Plugin(name='broken', console=[ConsoleSection(id='audit', permission='stats', "
        "static=Path('/nonexistent'), routes=lambda tools: [])])\n",
        encoding="utf-8",
    )
    import sys

    sys.path.insert(0, str(tmp_path))
    try:
        with pytest.raises(ConfigError) as caught:
            app_with(tmp_path, "broken_section_plugin", {})
    finally:
        sys.path.remove(str(tmp_path))
    found = [str(p) for p in caught.value.problems]
    assert any("[engine.plugins] console section id 'audit'" in p for p in found), found
    assert any("page.js is missing" in p for p in found), found
