"""HTTP source and destination over real sockets on 127.0.0.1.

The source is driven with httpx and a fake channel that records what it was given. The destination
talks to a minimal HTTP/1.1 server written here with ``asyncio.start_server``, whose answers each test
chooses.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from engine.config import AppConfig, load_config
from engine.connectors.base import Outbound, parse_url
from engine.connectors.http import HttpDestination, HttpSource, content_type_of
from engine.errors import DeliveryError, MessageError, PermanentDeliveryError
from engine.hl7v2.ack import build_ack, parse_ack
from engine.hl7v2.peek import peek
from engine.message import ContentType, Outcome, OutcomeStatus
from tests.conftest import free_port
from tests.engine.connectors.fakes import SAMPLE, FakeReceiver

HL7 = {"Content-Type": "application/hl7-v2"}


Starter = Callable[[HttpSource], Awaitable[HttpSource]]


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as c:
        yield c


@pytest.fixture
async def started() -> AsyncIterator[Starter]:
    """Start sources; every one still running is stopped at the end of the test."""
    running: list[HttpSource] = []

    async def start(src: HttpSource) -> HttpSource:
        await src.start()
        running.append(src)
        return src

    yield start
    for src in running:
        await src.stop()


def http_source(
    app: AppConfig, port: int, receiver: FakeReceiver, path: str = "/hl7", **options: object
) -> HttpSource:
    return HttpSource(
        parse_url(f"http://127.0.0.1:{port}{path}"),
        HttpSource.Options.model_validate(options),
        receiver,
        app,
        None,
    )


# --------------------------------------------------------------------------------------------------
# source


async def test_hl7_post_is_answered_with_an_ack(
    app: AppConfig, client: httpx.AsyncClient, started: Starter
) -> None:
    port = free_port()
    receiver = FakeReceiver()
    await started(http_source(app, port, receiver))

    resp = await client.post(f"http://127.0.0.1:{port}/hl7", content=SAMPLE.encode(), headers=HL7)

    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/hl7-v2")
    ack = parse_ack(resp.text)
    assert (ack.code, ack.control_id) == ("AA", "MSG00001")
    assert resp.text.startswith("MSH|^~\\&|HIE|CITY|HIS|HOSP_A|")  # sender and receiver swapped
    (call,) = receiver.calls
    assert call.raw == SAMPLE.encode()
    assert call.content_type is ContentType.HL7V2
    host, _, peer_port = call.peer.rpartition(":")
    assert host == "127.0.0.1" and peer_port.isdigit()


async def test_an_errored_hl7_message_gets_ae_with_the_reason(
    app: AppConfig, client: httpx.AsyncClient, started: Starter
) -> None:
    port = free_port()
    error = MessageError("PID-3 has no identifier", hl7_code="101", location="PID^1^3")
    receiver = FakeReceiver(lambda raw: Outcome(OutcomeStatus.ERRORED, message_id=5, error=error))
    await started(http_source(app, port, receiver))

    resp = await client.post(
        f"http://127.0.0.1:{port}/hl7", content=SAMPLE.encode(), headers={"Content-Type": "text/plain"}
    )  # text/plain holding HL7 is HL7

    assert resp.status_code == 200
    ack = parse_ack(resp.text)
    assert (ack.code, ack.control_id) == ("AE", "MSG00001")
    assert "PID-3 has no identifier" in ack.text
    assert receiver.calls[0].content_type is ContentType.HL7V2


async def test_after_delivery_response_is_relayed_as_is(
    app: AppConfig, client: httpx.AsyncClient, started: Starter
) -> None:
    port = free_port()
    downstream_ack = build_ack(peek(SAMPLE), "AA", application="LAB").encode()
    receiver = FakeReceiver(
        lambda raw: Outcome(OutcomeStatus.ACCEPTED, message_id=1, response=downstream_ack)
    )
    await started(http_source(app, port, receiver))

    resp = await client.post(f"http://127.0.0.1:{port}/hl7", content=SAMPLE.encode(), headers=HL7)

    assert resp.content == downstream_ack


@pytest.mark.parametrize(
    ("status", "http_status"),
    [
        (OutcomeStatus.ACCEPTED, 200),
        (OutcomeStatus.FILTERED, 200),
        (OutcomeStatus.ERRORED, 422),
        (OutcomeStatus.REJECTED, 400),
    ],
)
async def test_json_post_gets_a_json_reply(
    app: AppConfig, client: httpx.AsyncClient, started: Starter, status: OutcomeStatus, http_status: int
) -> None:
    port = free_port()
    failed = status in (OutcomeStatus.ERRORED, OutcomeStatus.REJECTED)
    error = MessageError("bad resource") if failed else None
    receiver = FakeReceiver(lambda raw: Outcome(status, message_id=42, error=error))
    await started(http_source(app, port, receiver))

    resp = await client.post(f"http://127.0.0.1:{port}/hl7", json={"resourceType": "Patient"})

    assert resp.status_code == http_status
    assert resp.json() == {
        "message_id": "42",
        "status": status.value,
        "error": "bad resource" if error else None,
    }
    assert receiver.calls[0].content_type is ContentType.JSON


async def test_oversize_body_is_413_and_its_first_bytes_are_kept(
    app: AppConfig, client: httpx.AsyncClient, started: Starter
) -> None:
    port = free_port()
    receiver = FakeReceiver()
    await started(http_source(app, port, receiver, max_body_bytes=1024))
    body = (SAMPLE * 100).encode()

    resp = await client.post(f"http://127.0.0.1:{port}/hl7", content=body, headers=HL7)

    assert resp.status_code == 413
    assert "1024 bytes" in resp.text
    assert receiver.calls == []
    ((raw, peer, reason),) = receiver.unframed
    assert raw == body[:1024]
    assert peer.startswith("127.0.0.1:")
    assert "1024" in reason

    ok = await client.post(f"http://127.0.0.1:{port}/hl7", content=SAMPLE.encode(), headers=HL7)
    assert ok.status_code == 200  # the limit is per request; the server still serves


async def test_get_is_405_and_unknown_path_is_404(
    app: AppConfig, client: httpx.AsyncClient, started: Starter
) -> None:
    port = free_port()
    receiver = FakeReceiver()
    await started(http_source(app, port, receiver))

    assert (await client.get(f"http://127.0.0.1:{port}/hl7")).status_code == 405
    assert (await client.put(f"http://127.0.0.1:{port}/hl7", content=b"x")).status_code == 405
    assert (await client.post(f"http://127.0.0.1:{port}/other", content=b"x")).status_code == 404
    assert (await client.post(f"http://127.0.0.1:{port}/hl7/", content=b"x")).status_code == 404
    assert receiver.calls == []


async def test_a_receive_that_raises_is_503(
    app: AppConfig, client: httpx.AsyncClient, started: Starter
) -> None:
    port = free_port()

    def down(raw: bytes) -> Outcome:
        raise ConnectionError("store down")

    await started(http_source(app, port, FakeReceiver(down)))

    resp = await client.post(f"http://127.0.0.1:{port}/hl7", content=SAMPLE.encode(), headers=HL7)

    assert resp.status_code == 503
    assert resp.headers["retry-after"] == "5"


async def test_two_sources_share_one_port(app: AppConfig, client: httpx.AsyncClient) -> None:
    port = free_port()
    adt, lab = FakeReceiver(channel_id="adt"), FakeReceiver(channel_id="lab")
    adt_src = http_source(app, port, adt, path="/adt")
    lab_src = http_source(app, port, lab, path="/lab", content_type="json")
    await adt_src.start()
    await lab_src.start()
    try:
        r1 = await client.post(f"http://127.0.0.1:{port}/adt", content=SAMPLE.encode(), headers=HL7)
        r2 = await client.post(f"http://127.0.0.1:{port}/lab", content=b'{"a": 1}')
        assert parse_ack(r1.text).code == "AA"
        assert r2.json()["status"] == "accepted"
        assert [c.raw for c in adt.calls] == [SAMPLE.encode()]
        assert [(c.raw, c.content_type) for c in lab.calls] == [(b'{"a": 1}', ContentType.JSON)]

        await adt_src.stop()  # the other path keeps being served
        assert (await client.post(f"http://127.0.0.1:{port}/adt", content=b"x")).status_code == 404
        assert (await client.post(f"http://127.0.0.1:{port}/lab", content=b"{}")).status_code == 200
    finally:
        await adt_src.stop()
        await lab_src.stop()

    with pytest.raises(httpx.ConnectError):  # the last source stopped the server
        await client.post(f"http://127.0.0.1:{port}/lab", content=b"{}")
    with socket.socket() as s:  # and the port is free again
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))


async def test_the_same_path_twice_on_one_port_is_refused(app: AppConfig, started: Starter) -> None:
    port = free_port()
    await started(http_source(app, port, FakeReceiver(channel_id="adt")))
    with pytest.raises(Exception, match="already served by channel 'adt'"):
        await started(http_source(app, port, FakeReceiver(channel_id="other")))


async def test_a_port_in_use_fails_start_with_oserror(app: AppConfig) -> None:
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        src = http_source(app, port, FakeReceiver())
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{port}"):
            await src.start()
        await src.stop()  # harmless after a failed start


@pytest.mark.parametrize(
    ("header", "body", "expected"),
    [
        ("application/hl7-v2", b"anything", ContentType.HL7V2),
        ("x-application/hl7-v2+er7; charset=utf-8", b"MSH|", ContentType.HL7V2),
        ("text/plain", b"MSH|^~\\&|", ContentType.HL7V2),
        ("text/plain", b"hello", ContentType.TEXT),
        ("application/json; charset=utf-8", b"{}", ContentType.JSON),
        ("application/xml", b"<a/>", ContentType.XML),
        ("text/xml", b"<a/>", ContentType.XML),
        ("application/soap+xml; charset=utf-8", b"<s/>", ContentType.XML),
        ("", b"MSH|", ContentType.TEXT),
        ("application/octet-stream", b"\x00", ContentType.TEXT),
    ],
)
def test_content_type_of_a_request(header: str, body: bytes, expected: ContentType) -> None:
    assert content_type_of(header, body, ContentType.TEXT) is expected


def test_source_options_and_url_checks() -> None:
    with pytest.raises(ValidationError):
        HttpSource.Options(max_body_bytes=0)
    with pytest.raises(ValidationError):
        HttpSource.Options.model_validate({"content_type": "pdf"})
    assert HttpSource.check_url(parse_url("http://127.0.0.1:8080/adt")) is None
    assert HttpSource.check_url(parse_url("http://:8080/adt")) is not None


# --------------------------------------------------------------------------------------------------
# destination


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class MiniServer:
    """Enough HTTP/1.1 to answer one request per connection with a status and body chosen by the test."""

    status: int = 200
    answer: Callable[[bytes], bytes] = lambda body: b"OK"
    content_type: str = "text/plain"
    hold: asyncio.Event | None = None  # when set: do not answer until the event is set
    requests: list[Received] = field(default_factory=list)
    port: int = 0

    async def __aenter__(self) -> MiniServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.hold is not None:
            self.hold.set()
        self._server.close()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            request_line, *lines = head.strip().split("\r\n")
            method, path, _ = request_line.split(" ")
            headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines)}
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            self.requests.append(Received(method, path, headers, body))
            if self.hold is not None:
                await self.hold.wait()
            answer = self.answer(body)
            writer.write(
                f"HTTP/1.1 {self.status} Whatever\r\nContent-Type: {self.content_type}\r\n"
                f"Content-Length: {len(answer)}\r\nConnection: close\r\n\r\n".encode()
                + answer
            )
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/inbound/adt"


def outbound(control_id: str = "MSG00001") -> Outbound:
    raw = SAMPLE.replace("MSG00001", control_id).encode()
    return Outbound(
        delivery_id=1,
        message_id=7,
        channel_id="test-channel",
        control_id=control_id,
        content_type=ContentType.HL7V2,
        charset="utf-8",
        raw=raw,
        content=None,
        attempt=1,
    )


def http_destination(app: AppConfig, url: str, **options: object) -> HttpDestination:
    return HttpDestination(
        parse_url(url), HttpDestination.Options.model_validate(options), app, None, "test-channel", "to-lab"
    )


async def test_destination_posts_the_payload_and_returns_the_answer(app: AppConfig) -> None:
    async with MiniServer(answer=lambda body: b"thanks") as server:
        dest = http_destination(app, server.url, headers={"X-Feed": "adt"})
        await dest.start()
        try:
            result = await dest.send(outbound())
        finally:
            await dest.stop()

    assert result.sent == SAMPLE.encode()
    assert result.response == b"thanks"
    (req,) = server.requests
    assert (req.method, req.path, req.body) == ("POST", "/inbound/adt", SAMPLE.encode())
    assert req.headers["content-type"] == "application/hl7-v2"
    assert req.headers["x-feed"] == "adt"


async def test_destination_put_without_start_creates_its_client(app: AppConfig) -> None:
    async with MiniServer(status=201) as server:
        dest = http_destination(app, server.url, method="PUT", content_type="application/json")
        try:
            await dest.send(outbound())
        finally:
            await dest.stop()
    assert server.requests[0].method == "PUT"
    assert server.requests[0].headers["content-type"] == "application/json"


@pytest.mark.parametrize("status", [500, 503, 429])
async def test_server_errors_are_retried(app: AppConfig, status: int) -> None:
    async with MiniServer(status=status, answer=lambda body: b"busy") as server:
        dest = http_destination(app, server.url)
        try:
            with pytest.raises(DeliveryError, match=f"HTTP {status}") as info:
                await dest.send(outbound())
        finally:
            await dest.stop()
    assert not isinstance(info.value, PermanentDeliveryError)


@pytest.mark.parametrize("status", [400, 404, 415])
async def test_client_errors_are_permanent(app: AppConfig, status: int) -> None:
    body = b"PID-3 is required " + b"x" * 500
    async with MiniServer(status=status, answer=lambda _: body) as server:
        dest = http_destination(app, server.url)
        try:
            with pytest.raises(PermanentDeliveryError, match=f"HTTP {status}.*PID-3 is required") as info:
                await dest.send(outbound())
        finally:
            await dest.stop()
    assert len(str(info.value)) < 300  # the body is cut to 200 characters


async def test_connection_refused_is_retried(app: AppConfig) -> None:
    dest = http_destination(app, f"http://127.0.0.1:{free_port()}/x")
    try:
        with pytest.raises(DeliveryError, match="cannot reach") as info:
            await dest.send(outbound())
    finally:
        await dest.stop()
    assert not isinstance(info.value, PermanentDeliveryError)


async def test_no_answer_within_the_timeout_is_retried(app: AppConfig) -> None:
    async with MiniServer(hold=asyncio.Event()) as server:
        dest = http_destination(app, server.url, timeout=0.2)
        try:
            with pytest.raises(DeliveryError, match="no answer") as info:
                await dest.send(outbound())
        finally:
            await dest.stop()
    assert not isinstance(info.value, PermanentDeliveryError)


def ack_answer(
    code: str, *, control_id: str | None = None, error: str | None = None
) -> Callable[[bytes], bytes]:
    def answer(body: bytes) -> bytes:
        header = peek(body.decode())
        if control_id is not None:
            header.control_id = control_id
        return build_ack(header, code, MessageError(error) if error else None, application="LAB").encode()

    return answer


async def test_check_hl7_ack_accepts_aa(app: AppConfig) -> None:
    async with MiniServer(answer=ack_answer("AA"), content_type="application/hl7-v2") as server:
        dest = http_destination(app, server.url, check_hl7_ack=True)
        try:
            result = await dest.send(outbound())
        finally:
            await dest.stop()
    assert result.response is not None and parse_ack(result.response.decode()).code == "AA"


@pytest.mark.parametrize(("code", "permanent"), [("AE", True), ("CE", True), ("AR", False), ("CR", False)])
async def test_check_hl7_ack_failures(app: AppConfig, code: str, permanent: bool) -> None:
    answer = ack_answer(code, error="unknown patient 100001")
    async with MiniServer(answer=answer, content_type="application/hl7-v2") as server:
        dest = http_destination(app, server.url, check_hl7_ack=True)
        try:
            with pytest.raises(DeliveryError, match=f"{code} from .*unknown patient 100001") as info:
                await dest.send(outbound())
        finally:
            await dest.stop()
    assert isinstance(info.value, PermanentDeliveryError) is permanent


async def test_check_hl7_ack_for_another_message_is_retried(app: AppConfig) -> None:
    answer = ack_answer("AA", control_id="OTHER")
    async with MiniServer(answer=answer, content_type="application/hl7-v2") as server:
        dest = http_destination(app, server.url, check_hl7_ack=True)
        try:
            with pytest.raises(DeliveryError, match="'OTHER'") as info:
                await dest.send(outbound())
        finally:
            await dest.stop()
    assert not isinstance(info.value, PermanentDeliveryError)


async def test_without_check_hl7_ack_an_ae_is_just_a_response(app: AppConfig) -> None:
    async with MiniServer(answer=ack_answer("AE", error="nope")) as server:
        dest = http_destination(app, server.url)
        try:
            result = await dest.send(outbound())
        finally:
            await dest.stop()
    assert result.response is not None and b"MSA|AE|MSG00001" in result.response


async def test_destination_to_source_end_to_end(app: AppConfig, started: Starter) -> None:
    port = free_port()
    receiver = FakeReceiver()
    await started(http_source(app, port, receiver, path="/adt"))
    dest = http_destination(app, f"http://127.0.0.1:{port}/adt", check_hl7_ack=True)
    try:
        result = await dest.send(outbound("E2E001"))
    finally:
        await dest.stop()
    assert receiver.calls[0].raw == outbound("E2E001").raw
    assert result.response is not None and parse_ack(result.response.decode()).control_id == "E2E001"


def test_destination_option_checks() -> None:
    with pytest.raises(ValidationError):
        HttpDestination.Options.model_validate({"method": "GET"})
    with pytest.raises(ValidationError, match="content_type option"):
        HttpDestination.Options(headers={"content-type": "text/plain"})
    with pytest.raises(ValidationError):
        HttpDestination.Options(timeout=0)
    with pytest.raises(ValidationError, match="unknown charset"):
        HttpDestination.Options(charset="nope-8")
    assert HttpDestination.check_url(parse_url("https://lab.example:8443/in")) is None
    assert HttpDestination.check_url(parse_url("http:///in")) is not None


# --------------------------------------------------------------------------------------------------
# TLS


@pytest.fixture
def tls_app(tmp_path: Path) -> AppConfig:
    """A config with a ``tls: local`` entry: a throwaway self-signed certificate for 127.0.0.1."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    (tmp_path / "channels").mkdir()
    (tmp_path / "config.yaml").write_text(
        "engine: {name: HIE}\ntls:\n  local: {cert: cert.pem, key: key.pem, ca: cert.pem}\n",
        encoding="utf-8",
    )
    return load_config(tmp_path / "config.yaml", check_connectors=False)


async def test_https_source_and_destination(tls_app: AppConfig, tmp_path: Path, started: Starter) -> None:
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    server_ctx.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    client_ctx = ssl.create_default_context(cafile=str(tmp_path / "cert.pem"))
    port = free_port()
    receiver = FakeReceiver()
    src = HttpSource(
        parse_url(f"http://127.0.0.1:{port}/adt"),
        HttpSource.Options(tls="local"),
        receiver,
        tls_app,
        server_ctx,
    )
    await started(src)

    dest = HttpDestination(
        parse_url(f"https://127.0.0.1:{port}/adt"),
        HttpDestination.Options(tls="local", check_hl7_ack=True),
        tls_app,
        client_ctx,
        "test-channel",
        "to-hie",
    )
    try:
        result = await dest.send(outbound())
    finally:
        await dest.stop()
    assert result.response is not None and parse_ack(result.response.decode()).code == "AA"
    assert receiver.calls[0].raw == SAMPLE.encode()

    async with httpx.AsyncClient() as plain:  # plain HTTP is not served on a TLS port
        with pytest.raises(httpx.HTTPError):
            await plain.post(f"http://127.0.0.1:{port}/adt", content=SAMPLE.encode(), headers=HL7)
    async with httpx.AsyncClient() as unverified:  # nor is the certificate trusted without the CA
        with pytest.raises(httpx.ConnectError):
            await unverified.post(f"https://127.0.0.1:{port}/adt", content=SAMPLE.encode(), headers=HL7)


async def test_sources_on_one_port_must_agree_on_tls(tls_app: AppConfig, started: Starter) -> None:
    port = free_port()
    await started(http_source(tls_app, port, FakeReceiver(), path="/plain"))
    with pytest.raises(Exception, match="must share one TLS setting"):
        await started(http_source(tls_app, port, FakeReceiver(), path="/secure", tls="local"))
