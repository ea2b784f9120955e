"""The console source (``console://host:port``): the web console on an HTTP listener, its pages at
``http://host:port/`` (which redirects to ``/console/``) and its REST API under ``/api/v1/``.

::

    # channels/console.yaml
    id: console
    source:
      url: console://127.0.0.1:8090      # the console at http://127.0.0.1:8090/
      # tls: console                     # a tls: entry of config.yaml: serve HTTPS (cookies get Secure)

The pages are the static files of ``engine/console/static`` (plain ES modules, no build step), read
once when the source starts: only those files are served, by exact name, so no request path can
reach any other file; the same goes for the files of the plugins' sections
(``engine.console.sections``), under ``/console/sections/<id>/``. Every page response carries a
strict Content-Security-Policy (scripts, styles and API calls from this origin only, no framing).

Like ``metrics://``, a read-only source: it takes no messages, so its channel has no destinations. It
may share a host:port with other HTTP sources; with ``hie run --workers N`` every worker serves it
(accounts, sessions and tokens are in the shared store).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import SplitResult

from pydantic import Field
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from engine.connectors.base import Options
from engine.connectors.http import HttpSource
from engine.console.api import PREFIX, ConsoleApi
from engine.console.sections import ConsoleSection
from engine.services import Services

__all__ = ["PAGES", "SECURITY_HEADERS", "STATIC_DIR", "ConsoleSource", "ConsoleSourceOptions"]

PAGES = "/console"  # the pages' URL prefix
STATIC_DIR = Path(__file__).with_name("static")
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
_MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}


@dataclass(frozen=True)
class _Asset:
    body: bytes
    media_type: str
    etag: str


def _assets(folder: Path) -> dict[str, _Asset]:
    """Every servable file under ``folder`` by its relative path ("pages/login.js"); dotfiles and
    unknown kinds of file are left out."""
    found: dict[str, _Asset] = {}
    for path in sorted(folder.rglob("*")):
        name = path.relative_to(folder).as_posix()
        media = _MEDIA_TYPES.get(path.suffix)
        if not path.is_file() or media is None or any(p.startswith(".") for p in name.split("/")):
            continue
        body = path.read_bytes()
        found[name] = _Asset(body, media, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')
    return found


class _Pages:
    """The console's static pages: ``/`` and ``/console`` redirect to ``/console/`` (index.html); the
    files of each plugin's section are under ``/console/sections/<id>/``."""

    def __init__(self, folder: Path, sections: list[ConsoleSection]) -> None:
        self.assets = _assets(folder)
        for section in sections:
            for name, asset in _assets(section.static).items():
                self.assets[f"sections/{section.id}/{name}"] = asset

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/", self.home, methods=["GET"]),
            Route(PAGES, self.home, methods=["GET"]),
            Route(PAGES + "/{name:path}", self.asset, methods=["GET"]),
        ]

    async def home(self, request: Request) -> Response:
        return RedirectResponse(PAGES + "/", status_code=307, headers=SECURITY_HEADERS)

    async def asset(self, request: Request) -> Response:
        found = self.assets.get(request.path_params["name"] or "index.html")
        if found is None:
            return PlainTextResponse("not found", status_code=404, headers=SECURITY_HEADERS)
        headers = {**SECURITY_HEADERS, "ETag": found.etag}
        wanted = [tag.strip() for tag in request.headers.get("if-none-match", "").split(",")]
        if found.etag in wanted:
            return Response(status_code=304, headers=headers)
        return Response(found.body, media_type=found.media_type, headers=headers)


class ConsoleSourceOptions(Options):
    tls: str | None = Field(None, description="name of a tls: entry of config.yaml: serve HTTPS")


class ConsoleSource(HttpSource):
    """Serves the console's pages (``/console/``) and ``/api/v1/...`` (``engine.console.api``)."""

    scheme = "console"
    Options = ConsoleSourceOptions  # type: ignore[assignment]
    options: ConsoleSourceOptions  # type: ignore[assignment]
    _api: ConsoleApi | None = None
    _pages: _Pages | None = None

    def attach(self, services: Services) -> None:
        self.path = PREFIX  # the key of this source on a shared server
        self._api = ConsoleApi(services, services.app.console, secure_cookie=self.options.tls is not None)
        self._pages = _Pages(STATIC_DIR, self._api.sections)

    @classmethod
    def check_url(cls, url: SplitResult) -> str | None:
        try:
            port = url.port
        except ValueError as exc:
            return f"bad port in {url.geturl()}: {exc}"
        if not url.hostname or port is None:
            return f"console URL needs a host and a port to listen on: {url.geturl()}"
        if url.path not in ("", "/") or url.query or url.fragment:
            return f"console URL is host and port only (pages at /, the API at {PREFIX}/): {url.geturl()}"
        return None

    def describe(self) -> str:
        return f"{'https' if self.options.tls else 'http'}://{self.host}:{self.port}/"

    def routes(self) -> list[BaseRoute]:
        assert self._api is not None and self._pages is not None, "attach() is called before start()"
        return [*self._api.routes(), *self._pages.routes()]
