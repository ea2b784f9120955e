"""What the console's browser tests share: an engine process with a console and the four accounts,
headless Chromium through Playwright, logging in, screenshots.

A browser test module starts with::

    pytestmark = pytest.mark.slow
    require_chromium()

and uses the ``browser`` and ``page`` fixtures of ``tests/conftest.py``.

Chromium: ``/usr/bin/chromium`` or ``$HIE_CHROMIUM``. Without it browser tests are skipped, unless
``HIE_REQUIRE_BROWSER=1`` (set by ``.ci/run``) makes that a failure. ``HIE_SCREENSHOT_DIR=docs/screenshots``
saves the README's pictures of the pages while the tests run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sqlalchemy import Engine, create_engine

from tests.conftest import free_port
from tests.engine.test_crash_recovery import start_engine, stop_engine, wait_listening

if TYPE_CHECKING:
    from playwright.sync_api import Page

__all__ = [
    "CHROMIUM",
    "PASSWORD",
    "ROLES",
    "ConsoleEngine",
    "console_engine",
    "hie",
    "login",
    "require_chromium",
    "shot",
]

CHROMIUM = os.environ.get("HIE_CHROMIUM", "/usr/bin/chromium")
PASSWORD = "Correct-Horse-7"
ROLES = ("admin", "integrator", "auditor", "viewer")
HIE = Path(sys.executable).with_name("hie")
SHOTS = os.environ.get("HIE_SCREENSHOT_DIR")
ROOT = Path(__file__).resolve().parents[1]


def require_chromium() -> None:
    """Skip the calling module when there is no Chromium (fail instead under HIE_REQUIRE_BROWSER)."""
    pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        if os.environ.get("HIE_REQUIRE_BROWSER"):
            raise RuntimeError(f"HIE_REQUIRE_BROWSER is set but there is no chromium at {CHROMIUM}")
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)


def hie(config: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Runs ``hie ARGS --config CONFIG`` (``hie send`` without it); its output. Fails the test on error."""
    with_config = ["--config", str(config)] if args[0] != "send" else []
    done = subprocess.run(
        [str(HIE), *args, *with_config],
        cwd=config.parent,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=60,
    )
    assert done.returncode == 0, f"hie {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


@dataclass
class ConsoleEngine:
    base: str  # http://127.0.0.1:port of the console
    db: Engine  # the engine's SQLite store
    data: Path  # the folder of config.yaml
    config: Path


@contextmanager
def console_engine(
    base: Path,
    config_yaml: str = "",
    channels: dict[str, str] | None = None,
    *,
    listening: tuple[int, ...] = (),
    plugins: tuple[str, ...] = (),
) -> Iterator[ConsoleEngine]:
    """An ``hie run`` process in ``base`` with a console channel and an account per role (password
    PASSWORD, username = role), on a SQLite store. ``config_yaml`` is added to config.yaml;
    ``channels`` maps file names to more channel YAML; ``listening`` are more ports to wait for;
    ``plugins`` are more plugin modules beside ``profiles.plugin`` (importable from the project root)."""
    (base / "channels").mkdir(parents=True, exist_ok=True)
    store = base / "data" / "hie.db"
    modules = ", ".join(("profiles.plugin", *plugins))
    (base / "config.yaml").write_text(
        f"engine: {{data_dir: data, log_level: WARNING, plugins: [{modules}]}}\n"
        f"store: {{url: 'sqlite:///{store}'}}\n{config_yaml}",
        encoding="utf-8",
    )
    port = free_port()
    (base / "channels" / "console.yaml").write_text(
        f"id: console\nsource: {{url: 'console://127.0.0.1:{port}'}}\n", encoding="utf-8"
    )
    for name, text in (channels or {}).items():
        (base / "channels" / name).write_text(text, encoding="utf-8")
    config = base / "config.yaml"
    log = base / "engine.log"
    saved = os.environ.get("PYTHONPATH")
    if plugins:  # the engine and hie commands run in base: let them import the project's test modules
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), saved) if p)
    proc = start_engine(config, log)
    db = None
    try:
        for p in (port, *listening):
            wait_listening(p, proc, log)
        for role in ROLES:
            hie(config, "users", "add", role, "--role", role, "--password-env", "HIE_E2E_PW",
                env={"HIE_E2E_PW": PASSWORD})  # fmt: skip
        db = create_engine(f"sqlite:///{store}")
        yield ConsoleEngine(f"http://127.0.0.1:{port}", db, base, config)
    finally:
        if db is not None:
            db.dispose()
        stop_engine(proc)
        if plugins:
            if saved is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = saved


def shot(page: Page, name: str) -> None:
    """A screenshot for the README when HIE_SCREENSHOT_DIR is set."""
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"))


def login(page: Page, base: str, role: str, password: str = PASSWORD) -> None:
    """Logs in on the console's login page as ``role`` (the account named after it)."""
    from playwright.sync_api import expect

    page.goto(base + "/")
    page.fill("#login-username", role)
    page.fill("#login-password", password)
    page.click("#login-submit")
    if password == PASSWORD:
        expect(page.locator("#user-name")).to_have_text(role)
        expect(page.locator("#user-role")).to_contain_text(role)
