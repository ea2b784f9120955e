"""The console source (``console://host:port``): the web console's REST API on an HTTP listener.

::

    # channels/console.yaml
    id: console
    source:
      url: console://127.0.0.1:8090      # the API at http://127.0.0.1:8090/api/v1/
      # tls: console                     # a tls: entry of config.yaml: serve HTTPS (cookies get Secure)

Like ``metrics://``, a read-only source: it takes no messages, so its channel has no destinations. It
may share a host:port with other HTTP sources; with ``hie run --workers N`` every worker serves it
(accounts, sessions and tokens are in the shared store).
"""

from __future__ import annotations

from urllib.parse import SplitResult

from pydantic import Field
from starlette.routing import BaseRoute

from engine.connectors.base import Options
from engine.connectors.http import HttpSource
from engine.console.api import PREFIX, ConsoleApi
from engine.services import Services

__all__ = ["ConsoleSource", "ConsoleSourceOptions"]


class ConsoleSourceOptions(Options):
    tls: str | None = Field(None, description="name of a tls: entry of config.yaml: serve HTTPS")


class ConsoleSource(HttpSource):
    """Serves ``/api/v1/...`` (``engine.console.api``)."""

    scheme = "console"
    Options = ConsoleSourceOptions  # type: ignore[assignment]
    options: ConsoleSourceOptions  # type: ignore[assignment]
    _api: ConsoleApi | None = None

    def attach(self, services: Services) -> None:
        self.path = PREFIX  # the key of this source on a shared server
        self._api = ConsoleApi(services, services.app.console, secure_cookie=self.options.tls is not None)

    @classmethod
    def check_url(cls, url: SplitResult) -> str | None:
        try:
            port = url.port
        except ValueError as exc:
            return f"bad port in {url.geturl()}: {exc}"
        if not url.hostname or port is None:
            return f"console URL needs a host and a port to listen on: {url.geturl()}"
        if url.path not in ("", "/") or url.query or url.fragment:
            return f"console URL is host and port only (the API is at {PREFIX}/): {url.geturl()}"
        return None

    def describe(self) -> str:
        return f"{'https' if self.options.tls else 'http'}://{self.host}:{self.port}{PREFIX}/"

    def routes(self) -> list[BaseRoute]:
        assert self._api is not None, "attach() is called before start()"
        return self._api.routes()
