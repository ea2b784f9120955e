"""The metrics source (``metrics://host:port/path``): this engine's metrics for Prometheus to scrape, as
``GET`` on a path of the engine's HTTP listener (``engine.metrics`` says what is served).

::

    # channels/metrics.yaml
    id: metrics
    source:
      url: metrics://127.0.0.1:9464/metrics   # scrape http://127.0.0.1:9464/metrics
      # tls: monitoring                       # a tls: entry of config.yaml: serve HTTPS

A source like any other, so the operator picks the address (loopback, a management network) and TLS
as for the other listeners; it shares a host:port with other HTTP sources when asked to. It takes
no messages: the channel has no destinations, and scrapes are not stored. Only ``GET`` (and
``HEAD``) is answered; anything else is 405.

With ``hie run --workers N`` the source runs in the first worker only (one scrape target, counters
that do not jump between processes): the store's gauges cover every worker, the counters, latency and
sources are the first worker's. Give it a port of its own then, since it does not share its socket
with the other workers.
"""

from __future__ import annotations

from typing import ClassVar
from urllib.parse import SplitResult

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from engine.connectors.base import Options
from engine.connectors.http import HttpSource
from engine.metrics import CONTENT_TYPE, render
from engine.services import Services

__all__ = ["MetricsSource", "MetricsSourceOptions"]


class MetricsSourceOptions(Options):
    tls: str | None = Field(None, description="name of a tls: entry of config.yaml: serve HTTPS")


class MetricsSource(HttpSource):
    """Serves ``GET <path>`` with the Prometheus text exposition of this engine's metrics."""

    scheme = "metrics"
    shares_port: ClassVar[bool] = False  # one scrape target: the first worker's
    Options = MetricsSourceOptions  # type: ignore[assignment]
    options: MetricsSourceOptions  # type: ignore[assignment]
    _services: Services | None = None

    def attach(self, services: Services) -> None:
        self._services = services

    @classmethod
    def check_url(cls, url: SplitResult) -> str | None:
        try:
            port = url.port
        except ValueError as exc:
            return f"bad port in {url.geturl()}: {exc}"
        if not url.hostname or port is None:
            return f"metrics URL needs a host and a port to listen on: {url.geturl()}"
        if url.query or url.fragment:
            return f"metrics URL cannot have a query or fragment: {url.geturl()}"
        return None

    def describe(self) -> str:
        return f"{'https' if self.options.tls else 'http'}://{self.host}:{self.port}{self.path}"

    def routes(self) -> list[BaseRoute]:
        return [Route(self.path, self.scrape, methods=["GET"])]

    async def scrape(self, request: Request) -> Response:
        assert self._services is not None, "attach() is called before start()"
        return Response(await render(self._services), media_type=CONTENT_TYPE)
