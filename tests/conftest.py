"""Shared fixtures: a configuration written to a temp dir, a running engine, both stores.

Tests use real sockets on 127.0.0.1, a real SQLite file and the real PostgreSQL server at
127.0.0.1:5432 (override with HIE_TEST_PG_URL); each PostgreSQL test gets a database of its own.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy.engine import make_url

from engine.config import AppConfig, load_config
from engine.runtime import Runtime

DATA = Path(__file__).parent / "data"
PG_URL = os.environ.get("HIE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A port nobody listens on, and one this test run has not handed out before: the kernel may
    give a just-closed port again, and a test asking for several would get two equal ones."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


def sample(name: str) -> bytes:
    """A sample message from tests/data/hl7, with CR segment terminators as on the wire."""
    return (DATA / "hl7" / name).read_bytes().replace(b"\r\n", b"\r").replace(b"\n", b"\r")


def hl7_message(
    control_id: str = "MSG00001",
    *,
    event: str = "A01",
    patient: str = "100001",
    charset: str = "UNICODE UTF-8",
    name: str = "王^小明",
    extra: str = "",
) -> str:
    """A synthetic ADT message (made-up patient) with the given control id."""
    return (
        f"MSH|^~\\&|HIS|HOSP_A|HIE|CITY_HIE|20261122083000||ADT^{event}^ADT_A01|{control_id}|P|2.5|||AL|NE|CHN|"
        f"{charset}\r"
        f"EVN|{event}|20261122083000\r"
        f"PID|1||{patient}^^^HOSP_A&1.2.156.112604.1.1&ISO^PI||{name}||19850312|M\r"
        f"PV1|1|I|W01^101^1^HOSP_A\r{extra}"
    )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each test runs on a fresh SQLite file and on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    yield from _pg_database()


def _pg_database() -> Iterator[str]:
    base = make_url(PG_URL)
    name = f"hie_test_{uuid.uuid4().hex[:12]}"
    admin = base.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url() -> Iterator[str]:
    yield from _pg_database()


def far_from_now() -> str:
    """A time of day twelve hours away: a scheduled job set to it does not fire during a test."""
    return (datetime.now() + timedelta(hours=12)).strftime("%H:%M")


# The engine's nightly prune (retention.prune_at, 02:30 by default) would otherwise run inside any
# test whose engine happens to be up at that minute, adding an audit record and an archive folder.
QUIET_RETENTION = f"retention: {{prune_at: '{far_from_now()}'}}\n"


@pytest.fixture
def make_app(tmp_path: Path) -> Callable[..., AppConfig]:
    """Write config.yaml and channels/<id>.yaml under tmp_path and load them."""

    def make(channels: dict[str, str], *, store_url: str | None = None, extra: str = "") -> AppConfig:
        (tmp_path / "channels").mkdir(exist_ok=True)
        for cid, text in channels.items():
            (tmp_path / "channels" / f"{cid}.yaml").write_text(text, encoding="utf-8")
        url = store_url or f"sqlite:///{tmp_path / 'store.db'}"
        if "retention:" not in extra:
            extra += QUIET_RETENTION
        (tmp_path / "config.yaml").write_text(
            f"engine: {{data_dir: data}}\nstore: {{url: '{url}'}}\n{extra}", encoding="utf-8"
        )
        return load_config(tmp_path / "config.yaml")

    return make


@asynccontextmanager
async def running(app: AppConfig) -> AsyncIterator[Runtime]:
    rt = Runtime(app)
    await rt.start()
    try:
        yield rt
    finally:
        await rt.stop()


def fields(segment: str, sep: str = "|") -> list[str]:
    return segment.split(sep)


def by_segment(text: str) -> dict[str, list[str]]:
    """First occurrence of each segment, split into fields (MSH-n at index n-1)."""
    out: dict[str, list[str]] = {}
    for seg in text.replace("\n", "\r").split("\r"):
        if seg and seg[:3] not in out:
            out[seg[:3]] = seg.split("|")
    return out


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met within timeout")


# -- the console in a real browser (tests/browser.py) ---------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium through Playwright, shared by the tests of a module (module scope: Playwright's
    sync API holds an event loop while it runs, which the asyncio tests of other modules cannot share)."""
    from playwright.sync_api import sync_playwright

    from tests.browser import CHROMIUM

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser tab (its own cookies and storage) on a laptop-sized screen, in English; fails
    the test if the page raised a JavaScript error."""
    context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="en-US")
    context.set_default_timeout(15_000)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
