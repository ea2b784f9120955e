"""The web console's pages as the console source serves them, over real HTTP against a running engine:
``/`` sends the browser to ``/console/``, every page file carries the security headers, every module
the pages import is served as JavaScript, no request path reaches a file outside the pages, and the
pages' sources keep their promises (both languages complete, no HTML parsing of data, no eval)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx

from engine.config import AppConfig
from engine.console.source import SECURITY_HEADERS, STATIC_DIR
from tests.conftest import free_port, running

CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
_IMPORT = re.compile(  # import x from '...', import {a, b} from '...', import '...', export * from '...'
    r"""^\s*(?:import\s+(?:[\w*{}\s,]+?\s+from\s+)?|export\s+(?:\*|\{[^}]*\})\s+from\s+)['"]([^'"]+)['"]""",
    re.MULTILINE,
)
_SCRIPT = re.compile(r"""<script\b[^>]*\btype="module"[^>]*\bsrc="([^"]+)\"""")
_STYLESHEET = re.compile(r"""<link\b[^>]*\brel="stylesheet"[^>]*\bhref="([^"]+)\"""")


@asynccontextmanager
async def console(make_app: Callable[..., AppConfig]) -> AsyncIterator[str]:
    """A running engine with a console channel; its base URL."""
    port = free_port()
    app = make_app({"console": f"id: console\nsource: {{url: 'console://127.0.0.1:{port}'}}\n"})
    async with running(app):
        yield f"http://127.0.0.1:{port}"


def assert_ui_headers(response: httpx.Response) -> None:
    assert response.headers["content-security-policy"] == CSP
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-cache"


async def raw_get(base: str, target: str) -> tuple[int, bytes]:
    """GET exactly ``target`` (no client-side clean-up of ``..``); the status and the whole answer."""
    url = urlsplit(base)
    assert url.hostname is not None and url.port is not None
    reader, writer = await asyncio.open_connection(url.hostname, url.port)
    try:
        writer.write(f"GET {target} HTTP/1.1\r\nHost: {url.netloc}\r\nConnection: close\r\n\r\n".encode())
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
        await writer.wait_closed()
    status = int(answer.split(b" ", 2)[1])
    return status, answer


def sources(suffix: str) -> dict[str, str]:
    return {
        p.relative_to(STATIC_DIR).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(STATIC_DIR.rglob(f"*{suffix}"))
    }


async def test_the_root_sends_the_browser_to_the_console(make_app: Callable[..., AppConfig]) -> None:
    async with console(make_app) as base, httpx.AsyncClient(base_url=base, timeout=10) as c:
        for path in ("/", "/console"):
            r = await c.get(path)
            assert r.status_code == 307, path
            assert r.headers["location"] == "/console/"
            assert_ui_headers(r)
        page = await c.get("/", follow_redirects=True)
        assert page.status_code == 200
        assert str(page.url) == base + "/console/"
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert_ui_headers(page)
        assert '<div id="error-banner"' in page.text
        # the API is still there beside the pages
        assert (await c.get("/api/v1/openapi.json")).status_code == 200
        assert (await c.get("/api/v1/stats")).status_code == 401


async def test_every_module_the_pages_import_is_served_as_javascript(
    make_app: Callable[..., AppConfig],
) -> None:
    async with console(make_app) as base, httpx.AsyncClient(timeout=10) as c:
        index_url = base + "/console/"
        index = await c.get(index_url)
        assert index.status_code == 200
        entry = [urljoin(index_url, src) for src in _SCRIPT.findall(index.text)]
        assert entry, "the index loads a module"
        seen: set[str] = set()
        todo = list(entry)
        while todo:
            url = todo.pop()
            if url in seen:
                continue
            seen.add(url)
            r = await c.get(url)
            assert r.status_code == 200, url
            assert r.headers["content-type"] == "text/javascript; charset=utf-8", url
            assert_ui_headers(r)
            todo.extend(urljoin(url, spec) for spec in _IMPORT.findall(r.text))
        # every module on disk is reached from the index: none is left unused, none is missing
        served = {urlsplit(u).path.removeprefix("/console/") for u in seen}
        assert served == set(sources(".js"))
        for href in _STYLESHEET.findall(index.text):
            css = await c.get(urljoin(index_url, href))
            assert css.status_code == 200
            assert css.headers["content-type"] == "text/css; charset=utf-8"
            assert_ui_headers(css)
        for lang in ("en", "zh"):  # fetched by i18n.js
            words = await c.get(f"{base}/console/i18n/{lang}.json")
            assert words.status_code == 200
            assert words.headers["content-type"] == "application/json"
            assert words.json()["nav.dashboard"]


async def test_an_unchanged_file_is_not_sent_again(make_app: Callable[..., AppConfig]) -> None:
    async with console(make_app) as base, httpx.AsyncClient(base_url=base, timeout=10) as c:
        first = await c.get("/console/app.js")
        again = await c.get("/console/app.js", headers={"If-None-Match": first.headers["etag"]})
        assert again.status_code == 304
        assert again.content == b""
        assert_ui_headers(again)
        other = await c.get("/console/app.js", headers={"If-None-Match": '"something-else"'})
        assert other.status_code == 200
        assert other.content == first.content


async def test_no_request_path_reaches_a_file_outside_the_pages(make_app: Callable[..., AppConfig]) -> None:
    secret = (Path(__file__).parents[3] / "engine" / "config.py").read_bytes()[:200]
    async with console(make_app) as base:
        for target in (
            "/console/../engine/config.py",
            "/console/../../engine/config.py",
            "/console/%2e%2e/engine/config.py",
            "/console/%2e%2e/%2e%2e/engine/config.py",
            "/console/..%2f..%2fengine%2fconfig.py",
            "/console/pages/../../source.py",
            "/console//etc/passwd",
            "/console/%2fetc%2fpasswd",
            "/console/..\\..\\source.py",
            "/console/.hidden",
            "/console/no-such-page.js",
            "/console/pages/",
        ):
            status, answer = await raw_get(base, target)
            assert status in (400, 404), (target, answer[:200])
            assert secret not in answer
            assert b"root:" not in answer
        async with httpx.AsyncClient(base_url=base, timeout=10) as c:
            missing = await c.get("/console/no-such-page.js")
            assert missing.status_code == 404
            assert_ui_headers(missing)


def test_english_and_chinese_have_the_same_words() -> None:
    en = json.loads((STATIC_DIR / "i18n" / "en.json").read_text(encoding="utf-8"))
    zh = json.loads((STATIC_DIR / "i18n" / "zh.json").read_text(encoding="utf-8"))
    assert set(en) == set(zh), f"only in en: {set(en) - set(zh)}; only in zh: {set(zh) - set(en)}"
    assert all(isinstance(v, str) and v.strip() for v in [*en.values(), *zh.values()])
    for key in en:  # the same {placeholders} in both
        assert set(re.findall(r"\{\w+\}", en[key])) == set(re.findall(r"\{\w+\}", zh[key])), key
    assert re.search(r"[\u4e00-\u9fff]", zh["nav.dashboard"])
    # every word the pages ask for by name is in the dictionaries
    used = {k for text in sources(".js").values() for k in re.findall(r"\bt\('([\w.]+)'", text)}
    assert used, "the pages use t('...')"
    assert used <= set(en), f"missing from the dictionaries: {sorted(used - set(en))}"


def test_no_script_turns_text_into_html_or_code() -> None:
    forbidden = re.compile(r"\b(innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval|Function)\s*[=(]")
    scripts = sources(".js")
    assert "app.js" in scripts and "pages/message.js" in scripts
    for name, text in scripts.items():
        assert not forbidden.search(text), f"{name}: {forbidden.search(text)}"
        assert "innerHTML" not in text and "outerHTML" not in text, name
    # no inline script or style the Content-Security-Policy would refuse
    index = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    assert not re.search(r"<script(?![^>]*\bsrc=)", index)
    assert " style=" not in index and "<style" not in index
    assert SECURITY_HEADERS["Content-Security-Policy"] == CSP
