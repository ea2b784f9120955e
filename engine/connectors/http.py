"""HTTP connectors: receive messages as POST requests, deliver them as POST/PUT requests.

HL7 v2 over HTTP has no MLLP framing: the request body is the message and the response body is the
ACK, so a sender reads the acknowledgement exactly as it would over MLLP. Other content (JSON, XML)
is answered with a small JSON document and an HTTP status a generic client understands.

Why the source shares servers: an exchange usually publishes one port to the hospital network and
gives each feed its own path (``/adt``, ``/lab``), so several channels' sources on one host:port are
served by one uvicorn server; it is started by the first of them and stopped with the last.

uvicorn is driven from inside the engine's event loop, not as its own program, so:

* the listening sockets are bound here first, so a port in use is an ``OSError`` from ``start()``
  rather than uvicorn's ``sys.exit``;
* uvicorn's own SIGINT/SIGTERM handlers are disabled: shutdown is the engine's to decide, and
  several servers replacing and restoring each other's handlers would lose the signal;
* its logging configuration is left alone (``log_config=None``) so the engine's logging applies.

The destination maps HTTP answers onto the delivery queue's terms: 2xx sent; 5xx, 429 and network
trouble retried (``DeliveryError``); any other answer is the receiver refusing the message, and
sending it again will not help (``PermanentDeliveryError``).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import ssl
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import SplitResult

import httpx
import uvicorn
from pydantic import Field, field_validator
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from engine.connectors.base import Destination, Options, Outbound, SendResult, Source
from engine.errors import ChannelError, DeliveryError, MessageError, PermanentDeliveryError
from engine.hl7v2.ack import build_ack, parse_ack
from engine.hl7v2.charset import codec_for, encode_text, msh18_from_bytes
from engine.hl7v2.peek import Header, peek
from engine.message import ContentType, Message, Outcome, OutcomeStatus

if TYPE_CHECKING:
    from engine.config import AppConfig
    from engine.connectors.base import Receiver

__all__ = [
    "HttpDestination",
    "HttpDestinationOptions",
    "HttpSource",
    "HttpSourceOptions",
    "content_type_of",
]

log = logging.getLogger(__name__)

ContentTypeName = Literal["hl7v2", "xml", "json", "text", "bytes"]
HL7_MEDIA_TYPE = "application/hl7-v2"
_HL7_TYPES = frozenset({"application/hl7-v2", "application/hl7-v2+er7", "x-application/hl7-v2+er7"})
_XML_TYPES = frozenset({"application/xml", "text/xml", "application/soap+xml"})
_HTTP_STATUS = {
    OutcomeStatus.ACCEPTED: 200,
    OutcomeStatus.FILTERED: 200,
    OutcomeStatus.ERRORED: 422,
    OutcomeStatus.REJECTED: 400,
}
_GRACEFUL_SHUTDOWN_SECONDS = 30  # requests still being stored when the server stops get this long


def _brief(exc: BaseException) -> str:
    """First line of an exception: database errors list the message bytes on later lines."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:200]}" if lines else type(exc).__name__


def _media_type(header: str) -> str:
    return header.split(";", 1)[0].strip().lower()


def _looks_hl7(body: bytes) -> bool:
    return body.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"MSH")


def content_type_of(header: str, body: bytes, default: ContentType) -> ContentType:
    """What a request holds, from its Content-Type (and, for text/plain, its first bytes)."""
    media = _media_type(header)
    if media in _HL7_TYPES or (media == "text/plain" and _looks_hl7(body)):
        return ContentType.HL7V2
    if media == "application/json" or media.endswith("+json"):
        return ContentType.JSON
    if media in _XML_TYPES or media.endswith("+xml"):
        return ContentType.XML
    return default


# --------------------------------------------------------------------------------------------------
# source: shared servers


class _QuietServer(uvicorn.Server):
    """A uvicorn server that leaves process signals to the engine."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield

    def install_signal_handlers(self) -> None:  # uvicorn < 0.29 name of the same hook
        pass


def _bind(host: str, port: int, *, reuse_port: bool = False) -> list[socket.socket]:
    """Listening sockets for host:port (every address the name resolves to), like asyncio would."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    sockets: list[socket.socket] = []
    seen: set[tuple[int, Any]] = set()
    try:
        for family, kind, proto, _, addr in infos:
            if (family, addr) in seen:
                continue
            seen.add((family, addr))
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:  # several worker processes listening on one port (hie run --workers)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(addr)
            except OSError as exc:
                # an address family the host has disabled (e.g. ::1 without IPv6), as asyncio does
                if exc.errno == errno.EADDRNOTAVAIL and len(infos) > 1:
                    sockets.pop().close()
                    continue
                raise
    except OSError as exc:
        for sock in sockets:
            sock.close()
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    if not sockets:
        raise OSError(errno.EADDRNOTAVAIL, f"cannot listen on {host}:{port}: no usable address")
    return sockets


async def _serve(server: uvicorn.Server, sockets: list[socket.socket]) -> None:
    try:
        await server.serve(sockets=sockets)
    except SystemExit as exc:  # uvicorn exits the process on startup failures; never let it
        raise RuntimeError(f"the HTTP server stopped during startup (exit code {exc.code})") from None
    finally:
        for sock in sockets:
            sock.close()


class _SharedServer:
    """One uvicorn server on one host:port, serving the paths of every HttpSource bound to it."""

    def __init__(self, host: str, port: int, tls_name: str | None) -> None:
        self.host = host
        self.port = port
        self.tls_name = tls_name
        self.app = Starlette()
        self.app.router.redirect_slashes = False  # /adt/ is not /adt: no 307 that HL7 senders won't follow
        self.sources: dict[str, HttpSource] = {}
        self._routes: dict[str, list[BaseRoute]] = {}
        self.server: uvicorn.Server | None = None
        self.task: asyncio.Task[None] | None = None

    def add(self, path: str, source: HttpSource) -> None:
        other = self.sources.get(path)
        if other is not None:
            raise ChannelError(
                f"http://{self.host}:{self.port}{path} is already served by channel "
                f"{other.receiver.channel_id!r}"
            )
        if source.options.tls != self.tls_name:
            raise ChannelError(
                f"sources on {self.host}:{self.port} must share one TLS setting: "
                f"{self.tls_name!r} is in use, {source.options.tls!r} was asked for"
            )
        self.sources[path] = source
        self._routes[path] = source.routes()
        self.app.router.routes.extend(self._routes[path])

    def remove(self, path: str) -> None:
        self.sources.pop(path, None)
        gone = self._routes.pop(path, [])
        self.app.router.routes[:] = [r for r in self.app.router.routes if r not in gone]

    async def start(
        self, ssl_options: dict[str, Any], tls: ssl.SSLContext | None, *, reuse_port: bool
    ) -> None:
        sockets = _bind(self.host, self.port, reuse_port=reuse_port)
        config = uvicorn.Config(
            self.app,
            lifespan="off",
            log_level="warning",
            access_log=False,
            log_config=None,
            ws="none",
            server_header=False,
            timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN_SECONDS,
            **ssl_options,
        )
        try:
            config.load()
        except Exception:
            for sock in sockets:
                sock.close()
            raise
        if tls is not None:
            config.ssl = tls  # the engine's TLS policy (TLS 1.2+), same as on MLLP listeners
        server = _QuietServer(config)
        task = asyncio.create_task(_serve(server, sockets), name=f"http-server {self.host}:{self.port}")
        while not server.started:
            if task.done():
                exc = task.exception()
                raise OSError(f"the HTTP server on {self.host}:{self.port} did not start: {exc}")
            await asyncio.sleep(0.01)
        self.server, self.task = server, task
        log.info("HTTP listener on %s://%s:%d", "https" if tls else "http", self.host, self.port)

    async def stop(self) -> None:
        if self.server is None or self.task is None:
            return
        self.server.should_exit = True
        try:
            await self.task
        except Exception as exc:
            log.warning("HTTP listener on %s:%d stopped with %s", self.host, self.port, _brief(exc))
        self.server = self.task = None
        log.info("HTTP listener on %s:%d stopped", self.host, self.port)


@dataclass
class _Registry:
    """The shared servers of one event loop (tests run many loops; a server belongs to one)."""

    loop: asyncio.AbstractEventLoop
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    servers: dict[tuple[str, int], _SharedServer] = field(default_factory=dict)


_REGISTRIES: dict[int, _Registry] = {}


def _registry() -> _Registry:
    loop = asyncio.get_running_loop()
    for key in [k for k, r in _REGISTRIES.items() if r.loop.is_closed()]:
        del _REGISTRIES[key]
    reg = _REGISTRIES.get(id(loop))
    if reg is None or reg.loop is not loop:
        reg = _REGISTRIES[id(loop)] = _Registry(loop)
    return reg


# --------------------------------------------------------------------------------------------------
# source


class HttpSourceOptions(Options):
    content_type: ContentTypeName = Field(
        "hl7v2",
        description="what a request holds when its "
        "Content-Type does not say (HL7, JSON and XML types are known)",
    )
    max_body_bytes: int = Field(
        4 * 1024 * 1024,
        ge=1,
        description="larger requests are refused with 413 and their first bytes kept as an errored record",
    )
    tls: str | None = Field(None, description="name of a tls: entry of config.yaml: serve HTTPS")


class HttpSource(Source):
    """Receives messages POSTed to one path of a (possibly shared) HTTP server."""

    scheme = "http"
    shares_port = True
    Options = HttpSourceOptions
    options: HttpSourceOptions

    def __init__(
        self, url: SplitResult, options: Any, receiver: Receiver, app: AppConfig, tls: ssl.SSLContext | None
    ) -> None:
        super().__init__(url, options, receiver, app, tls)
        self.host = url.hostname or "127.0.0.1"
        self.port = url.port or 80
        self.path = url.path or "/"
        self._server: _SharedServer | None = None

    @classmethod
    def check_url(cls, url: SplitResult) -> str | None:
        if not url.hostname:
            return f"http URL needs a host to listen on: {url.geturl()}"
        if url.query or url.fragment:
            return f"http source URL cannot have a query or fragment: {url.geturl()}"
        if "{" in url.path or "}" in url.path:
            return f"http source path cannot contain braces: {url.geturl()}"
        return None

    def describe(self) -> str:
        scheme = "https" if self.options.tls else "http"
        return f"{scheme}://{self.host}:{self.port}{self.path}"

    def routes(self) -> list[BaseRoute]:
        """What this source serves on the shared server: POSTs to its path (a SOAP source adds its
        WSDL and schemas)."""
        return [Route(self.path, self.handle, methods=["POST"])]

    async def start(self) -> None:
        reg = _registry()
        async with reg.lock:
            key = (self.host, self.port)
            shared = reg.servers.get(key)
            if shared is None:
                shared = _SharedServer(self.host, self.port, self.options.tls)
                shared.add(self.path, self)
                await shared.start(self._uvicorn_ssl(), self.tls, reuse_port=self.reuse_port)
                reg.servers[key] = shared
            else:
                shared.add(self.path, self)
            self._server = shared

    def up(self) -> bool:
        shared = self._server
        return shared is not None and shared.task is not None and not shared.task.done()

    async def stop(self) -> None:
        shared, self._server = self._server, None
        if shared is None:
            return
        reg = _registry()
        async with reg.lock:
            shared.remove(self.path)
            if not shared.sources:
                if reg.servers.get((self.host, self.port)) is shared:
                    del reg.servers[(self.host, self.port)]
                await shared.stop()

    def _uvicorn_ssl(self) -> dict[str, Any]:
        """uvicorn's TLS settings (file paths) from the ``tls:`` entry named in the options."""
        name = self.options.tls
        if name is None:
            if self.tls is not None:
                raise ChannelError("an SSL context was given but the source options name no tls entry")
            return {}
        t = self.app.tls[name]
        return {
            "ssl_certfile": str(self.app.resolve(t.cert)),
            "ssl_keyfile": str(self.app.resolve(t.key)),
            "ssl_ca_certs": str(self.app.resolve(t.ca)) if t.ca is not None else None,
            "ssl_cert_reqs": ssl.CERT_REQUIRED if t.require_client_cert else ssl.CERT_NONE,
        }

    async def handle(self, request: Request) -> Response:
        """A POST to our path: store the body as a message and say what became of it."""
        peer = f"{request.client.host}:{request.client.port}" if request.client else "unknown"
        limit = self.options.max_body_bytes
        try:
            body, complete = await _read_body(request, limit)
        except ClientDisconnect:
            return Response(status_code=400)
        if not complete:
            return await self._too_large(body, peer, limit)
        header = request.headers.get("content-type", "")
        content_type = content_type_of(header, body, ContentType(self.options.content_type))
        try:
            outcome, msg = await self.receiver.receive(body, peer=peer, content_type=content_type)
        except Exception as exc:
            log.warning("http source %s: request from %s not taken: %s", self.path, peer, _brief(exc))
            return PlainTextResponse(
                "the engine cannot take messages now; retry later\n",
                status_code=503,
                headers={"Retry-After": "5"},
            )
        if content_type is ContentType.HL7V2:
            return self._hl7_reply(outcome, msg, body)
        return _other_reply(outcome, content_type, _media_type(header))

    async def _too_large(self, first: bytes, peer: str, limit: int) -> Response:
        reason = f"request body larger than {limit} bytes"
        try:
            await self.receiver.reject_unframed(first, peer, reason)
        except Exception as exc:
            log.warning(
                "http source %s: oversize request from %s could not be recorded: %s",
                self.path,
                peer,
                _brief(exc),
            )
        return PlainTextResponse(reason + "\n", status_code=413)

    def _hl7_reply(self, outcome: Outcome, msg: Message | None, body: bytes) -> Response:
        if outcome.response is not None:  # after_delivery: downstream's own answer, as it sent it
            return Response(
                outcome.response,
                status_code=200,
                media_type=_with_charset(HL7_MEDIA_TYPE, outcome.response_charset),
            )
        header = msg.header if msg is not None and msg.header is not None else _header_of(body)
        codec = msg.charset if msg is not None and msg.charset else "utf-8"
        text = build_ack(
            header,
            outcome.ack_code,
            outcome.error,
            application=self.app.engine.name,
            facility=self.app.engine.facility,
            warning="; ".join(outcome.warnings) or None,
        )
        return Response(
            encode_text(text, codec), status_code=200, media_type=_with_charset(HL7_MEDIA_TYPE, codec)
        )


async def _read_body(request: Request, limit: int) -> tuple[bytes, bool]:
    """The body, or its first ``limit`` bytes and False when it is longer (the rest is not read)."""
    buf = bytearray()
    async for chunk in request.stream():
        buf += chunk
        if len(buf) > limit:
            return bytes(buf[:limit]), False
    return bytes(buf), True


def _header_of(body: bytes) -> Header | None:
    """MSH of a message the channel did not give back, so the ACK can still name it (MSA-2)."""
    try:
        return peek(body.decode("latin-1"))  # MSH is ASCII in every charset; only MSH is read here
    except MessageError:
        return None


def _with_charset(media: str, charset: str) -> str:
    return f"{media}; charset={charset}" if charset else media


def _other_reply(outcome: Outcome, content_type: ContentType, request_media: str) -> Response:
    status = _HTTP_STATUS[outcome.status]
    if outcome.response is not None:  # after_delivery: relay downstream's answer
        media = (
            request_media
            if content_type in (ContentType.JSON, ContentType.XML) and request_media
            else "application/octet-stream"
        )
        return Response(
            outcome.response, status_code=status, media_type=_with_charset(media, outcome.response_charset)
        )
    return JSONResponse(
        {
            "message_id": str(outcome.message_id) if outcome.message_id is not None else None,
            "status": outcome.status.value,
            "error": outcome.error.text if outcome.error is not None else None,
        },
        status_code=status,
    )


# --------------------------------------------------------------------------------------------------
# destination


class HttpDestinationOptions(Options):
    method: Literal["POST", "PUT"] = Field("POST", description="HTTP method")
    content_type: str = Field(HL7_MEDIA_TYPE, description="Content-Type header, sent as written")
    headers: dict[str, str] = Field(default_factory=dict, description="extra request headers")
    timeout: float = Field(30.0, gt=0, description="seconds for connecting, and for each read and write")
    charset: str | None = Field(None, description="charset of the body; empty = as received")
    tls: str | None = Field(None, description="name of a tls: entry of config.yaml (client certificate, CA)")
    check_hl7_ack: bool = Field(
        False,
        description="read an HL7 ACK in the response: AE/CE is a permanent "
        "failure, AR/CR is retried, MSA-2 must be the message's control id",
    )

    @field_validator("headers")
    @classmethod
    def _no_content_type(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if name.lower() in ("content-type", "content-length"):
                raise ValueError(
                    f"set {name} through the content_type option, not headers"
                    if name.lower() == "content-type"
                    else "Content-Length is computed"
                )
        return value

    @field_validator("charset")
    @classmethod
    def _charset(cls, value: str | None) -> str | None:
        if value is not None and codec_for(value) is None:
            raise ValueError(f"unknown charset {value!r}")
        return value


class HttpDestination(Destination):
    """POSTs (or PUTs) each delivery to a URL; one connection pool per destination."""

    scheme = "http"
    Options = HttpDestinationOptions
    options: HttpDestinationOptions

    def __init__(
        self,
        url: SplitResult,
        options: Any,
        app: AppConfig,
        tls: ssl.SSLContext | None,
        channel_id: str,
        destination_id: str,
    ) -> None:
        super().__init__(url, options, app, tls, channel_id, destination_id)
        self._codec = codec_for(self.options.charset) if self.options.charset else None
        self._client: httpx.AsyncClient | None = None
        # for error texts: never the user:password part of the URL
        self._shown_url = f"{url.scheme}://{url.netloc.rpartition('@')[2]}{url.path}"

    @classmethod
    def check_url(cls, url: SplitResult) -> str | None:
        if not url.hostname:
            return f"{url.scheme} URL needs a host: {url.geturl()}"
        return None

    async def start(self) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(
                verify=self.tls if self.tls is not None else True,
                timeout=self.options.timeout,
                headers=self.options.headers,
            )

    async def stop(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def send(self, out: Outbound) -> SendResult:
        if self._client is None:
            await self.start()
        assert self._client is not None
        payload = out.payload(self._codec)
        try:
            resp = await self._client.request(
                self.options.method,
                self.url.geturl(),
                content=payload,
                headers={"Content-Type": self.options.content_type},
            )
        except httpx.TimeoutException as exc:
            raise DeliveryError(
                f"no answer from {self._shown_url} within {self.options.timeout:g} s ({type(exc).__name__})"
            ) from exc
        except httpx.InvalidURL as exc:
            raise PermanentDeliveryError(f"bad URL {self._shown_url}: {exc}") from exc
        except httpx.HTTPError as exc:
            raise DeliveryError(f"cannot reach {self._shown_url}: {type(exc).__name__}: {exc}") from exc
        self._check_status(resp)
        charset = resp.charset_encoding or ""
        if self.options.check_hl7_ack and _looks_hl7(resp.content):
            charset = self._check_ack(resp.content, out) or charset
        return SendResult(sent=payload, response=resp.content, response_charset=charset)

    def _check_status(self, resp: httpx.Response) -> None:
        code = resp.status_code
        if 200 <= code < 300:
            return
        body = resp.content[:800].decode(resp.charset_encoding or "utf-8", "replace")[:200]
        text = f"HTTP {code} from {self._shown_url}" + (f": {body}" if body.strip() else "")
        if code >= 500 or code == 429:
            raise DeliveryError(text)
        raise PermanentDeliveryError(text)  # 4xx (and unexpected 1xx/3xx): sending again will not help

    def _check_ack(self, content: bytes, out: Outbound) -> str:
        """Apply the HL7 ACK in a response; returns the codec it was read with."""
        codec = codec_for(msh18_from_bytes(content.lstrip(b"\xef\xbb\xbf"))) or "utf-8"
        try:
            ack = parse_ack(content.decode(codec, "replace").lstrip("\ufeff \t\r\n"))
        except MessageError as exc:
            raise DeliveryError(f"unreadable HL7 answer from {self._shown_url}: {exc}") from exc
        if ack.control_id != out.control_id:
            raise DeliveryError(
                f"the ACK from {self._shown_url} is for control id {ack.control_id!r}, not {out.control_id!r}"
            )
        why = f": {ack.text}" if ack.text else ""
        if ack.code in ("AA", "CA"):
            return codec
        if ack.code in ("AE", "CE"):
            raise PermanentDeliveryError(f"{ack.code} from {self._shown_url}{why}")
        if ack.code in ("AR", "CR"):
            raise DeliveryError(f"{ack.code} from {self._shown_url}{why}")
        raise DeliveryError(f"unknown acknowledgement code {ack.code!r} from {self._shown_url}{why}")
