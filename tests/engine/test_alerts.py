"""Alert rules (config ``alerts:``): e-mailed to a local SMTP server (aiosmtpd) and POSTed to a local
webhook receiver, over real sockets, once when a rule starts firing and once when it resolves."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import threading
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from engine.config import AppConfig
from engine.errors import ConfigError
from engine.runtime import Runtime
from tests.conftest import free_port, hl7_message, running
from tests.engine.connectors.mllp_peers import Downstream, downstream_ack, hl7_send, until


class Inbox:
    """An aiosmtpd handler that keeps every mail it is given (and, when set, wants a login)."""

    def __init__(self) -> None:
        self.mails: list[EmailMessage] = []
        self.logins: list[tuple[bytes, bytes]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        mail = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(mail, EmailMessage)
        self.mails.append(mail)
        return "250 Message accepted for delivery"

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.logins.append((data.login, data.password))
        return AuthResult(success=data.password == b"s3cret-for-tests")


class SmtpServer:
    def __init__(self, port: int) -> None:
        self.port = port
        self.inbox = Inbox()
        self.controller = Controller(
            self.inbox,
            hostname="127.0.0.1",
            port=port,
            authenticator=self.inbox.authenticate,
            auth_require_tls=False,  # a test server on loopback; the engine's STARTTLS is its option
        )

    @property
    def mails(self) -> list[EmailMessage]:
        return self.inbox.mails

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer(free_port()).start()
    yield server
    server.stop()


class Hooks:
    """A webhook receiver: an HTTP server on a thread that keeps each POST's headers and JSON body."""

    def __init__(self) -> None:
        self.posts: list[tuple[dict[str, str], dict[str, Any]]] = []
        posts = self.posts

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                posts.append((dict(self.headers), json.loads(body)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hooks() -> Iterator[Hooks]:
    receiver = Hooks()
    yield receiver
    receiver.close()


def adt(port: int, dests: str = "  - {id: out, url: 'memory://adt-out'}\n") -> str:
    return f"id: adt\nsource: {{url: 'mllp://127.0.0.1:{port}', idle_timeout: 5}}\ndestinations:\n{dests}"


def email_settings(port: int, extra: str = "") -> str:
    return (
        f"  email: {{smtp_host: 127.0.0.1, smtp_port: {port}, from: hie@example.org, "
        f"to: [ops@example.org, oncall@example.org]{extra}}}\n"
    )


def alerter(rt: Runtime) -> Any:
    assert rt.alerter is not None
    return rt.alerter


def body(mail: EmailMessage) -> str:
    part = mail.get_body()
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")  # type: ignore[attr-defined]


async def test_a_listener_down_alert_is_mailed_once_then_its_resolution_once(
    make_app: Callable[..., AppConfig], store_url: str, smtp: SmtpServer
) -> None:
    port = free_port()
    extra = (
        "alerts:\n  check_seconds: 0.1\n"
        + email_settings(smtp.port)
        + "  rules:\n    - {name: adt-listener, kind: listener_down, channel: adt}\n"
    )
    app = make_app({"adt": adt(port)}, store_url=store_url, extra=extra)
    async with running(app) as rt:
        await asyncio.sleep(0.5)  # several scheduled checks: the listener is up, nobody is told
        assert smtp.mails == []
        await rt.sources["adt"].stop()
        await until(lambda: len(smtp.mails) == 1)
        await asyncio.sleep(0.6)  # still down through several checks: no second mail
        assert len(smtp.mails) == 1
        await rt.sources["adt"].start()
        await until(lambda: len(smtp.mails) == 2)
        await asyncio.sleep(0.4)
    assert len(smtp.mails) == 2
    fired, resolved = smtp.mails
    assert fired["Subject"] == (
        f"[HIE] FIRING: adt-listener on channel adt (mllp://127.0.0.1:{port}): listener_down 1 (threshold 0)"
    )
    assert fired["To"] == "ops@example.org, oncall@example.org" and fired["From"] == "hie@example.org"
    text = body(fired)
    assert "rule:      adt-listener (listener_down)" in text and "channel:   adt" in text
    assert "value:     1\n" in text and "threshold: 0 (fires above)" in text
    assert resolved["Subject"].startswith("[HIE] RESOLVED: adt-listener on channel adt")
    assert "value:     0\n" in body(resolved)


async def test_an_error_rate_alert_is_mailed_with_its_numbers_and_no_patient_data(
    make_app: Callable[..., AppConfig], store_url: str, smtp: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HIE_TEST_SMTP_PASSWORD", "s3cret-for-tests")
    port = free_port()
    extra = (
        "alerts:\n  check_seconds: 3600\n"
        + email_settings(smtp.port, ", username: hie, password: '${HIE_TEST_SMTP_PASSWORD}'")
        + "  rules:\n"
        + "    - {name: errors, kind: error_rate, channel: '*', threshold: 0.4, window_minutes: 10}\n"
    )
    app = make_app({"adt": adt(port)}, store_url=store_url, extra=extra)
    async with running(app) as rt:
        check = alerter(rt).check
        good = [hl7_message(f"G{i}", name="王^小明", patient="100001").encode() for i in range(2)]
        bad = [hl7_message("", name="王^小明", patient="100001").encode() for _ in range(2)]  # no MSH-10: AR
        await hl7_send(port, *good, *bad)
        assert len(await check()) == 1  # 2 of 4 = 0.5, above 0.4
        assert len(await check()) == 0 and len(smtp.mails) == 1
        await hl7_send(port, *(hl7_message(f"H{i}").encode() for i in range(2)))
        assert len(await check()) == 1  # 2 of 6 = 0.33: resolved
        assert len(await check()) == 0
    assert smtp.inbox.logins == [(b"hie", b"s3cret-for-tests")] * 2  # the password came from the environment
    fired, resolved = smtp.mails
    assert fired["Subject"] == "[HIE] FIRING: errors on channel adt: error_rate 0.5 (threshold 0.4)"
    text = body(fired)
    assert "value:     0.5 (2 of 4 messages in the last 10 minutes)" in text and "threshold: 0.4" in text
    assert resolved["Subject"] == "[HIE] RESOLVED: errors on channel adt: error_rate 0.3333 (threshold 0.4)"
    assert "2 of 6 messages" in body(resolved)
    for mail in (fired, resolved):
        assert "王" not in mail.as_string() and "100001" not in mail.as_string() and "小明" not in body(mail)


async def test_a_queue_depth_alert_is_posted_to_the_webhook_and_resolves_when_the_queue_drains(
    make_app: Callable[..., AppConfig], store_url: str, hooks: Hooks, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HIE_TEST_HOOK_TOKEN", "t0ken")
    port, lab = free_port(), free_port()
    retry = "{max_attempts: 1000, backoff: 0.1, max_backoff: 0.2}"
    dests = f"  - {{id: lab, url: 'mllp://127.0.0.1:{lab}', retry: {retry}}}\n"
    extra = (
        "alerts:\n"
        f"  webhook: {{url: 'http://127.0.0.1:{hooks.port}/hie', "
        "headers: {Authorization: 'Bearer ${HIE_TEST_HOOK_TOKEN}'}}\n"
        "  rules:\n    - {name: lab-backlog, kind: queue_depth, channel: adt, threshold: 2}\n"
    )
    app = make_app({"adt": adt(port, dests)}, store_url=store_url, extra=extra)
    async with running(app) as rt:
        check = alerter(rt).check
        await hl7_send(port, *(hl7_message(f"Q{i}").encode() for i in range(2)))
        assert await check() == []  # 2 waiting is not above 2
        await hl7_send(port, hl7_message("Q2").encode())
        assert len(await check()) == 1
        assert len(await check()) == 0
        async with Downstream(lambda payload, _: downstream_ack(payload, "AA"), port=lab) as downstream:
            await until(lambda: len(downstream.received) == 3)
            await until(lambda: all(q.sent == 3 for q in rt.queues))
            assert len(await check()) == 1
    assert len(hooks.posts) == 2
    (headers, fired), (_, resolved) = hooks.posts
    assert headers["Authorization"] == "Bearer t0ken" and headers["Content-Type"] == "application/json"
    expected = {
        "rule": "lab-backlog",
        "kind": "queue_depth",
        "channel": "adt",
        "subject": "destination lab",
        "threshold": 2.0,
        "engine": "HIE",
    }
    assert fired["status"] == "firing" and fired["value"] == 3 and fired.items() >= expected.items()
    # resolved once the depth is no longer above the threshold: the check may run while the last
    # delivery's status is still being committed (0 or 1 waiting then)
    assert resolved["status"] == "resolved" and resolved["value"] <= 2
    assert resolved.items() >= expected.items()
    assert resolved["since"] == fired["since"] and "lab-backlog" in fired["text"]


async def test_a_notifier_that_failed_is_tried_again_and_the_other_is_not_told_twice(
    make_app: Callable[..., AppConfig], tmp_path: Path, hooks: Hooks
) -> None:
    smtp = SmtpServer(free_port())  # not started yet: the first e-mail fails
    port = free_port()
    extra = (
        "alerts:\n"
        + email_settings(smtp.port, ", timeout: 2")
        + f"  webhook: {{url: 'http://127.0.0.1:{hooks.port}/hie'}}\n"
        + "  rules:\n    - {name: down, kind: listener_down}\n"
    )
    app = make_app({"adt": adt(port)}, store_url=f"sqlite:///{tmp_path / 'store.db'}", extra=extra)
    async with running(app) as rt:
        await rt.sources["adt"].stop()
        await alerter(rt).check()
        assert len(hooks.posts) == 1
        smtp.start()
        try:
            await alerter(rt).check()
            await alerter(rt).check()
        finally:
            smtp.stop()
    assert len(hooks.posts) == 1 and len(smtp.mails) == 1
    assert smtp.mails[0]["Subject"].startswith("[HIE] FIRING: down on channel adt")


async def test_for_minutes_waits_before_firing(
    make_app: Callable[..., AppConfig], tmp_path: Path, hooks: Hooks
) -> None:
    port = free_port()
    extra = (
        f"alerts:\n  webhook: {{url: 'http://127.0.0.1:{hooks.port}/hie'}}\n"
        "  rules:\n    - {name: down, kind: listener_down, channel: adt, for_minutes: 2}\n"
    )
    app = make_app({"adt": adt(port)}, store_url=f"sqlite:///{tmp_path / 'store.db'}", extra=extra)
    async with running(app) as rt:
        now = [1_800_000_000.0]
        alerter(rt).clock = lambda: now[0]
        await rt.sources["adt"].stop()
        for minutes in (0, 1, 1.9):
            now[0] = 1_800_000_000.0 + minutes * 60
            assert await alerter(rt).check() == []
        now[0] = 1_800_000_000.0 + 120
        (note,) = await alerter(rt).check()
    assert note.status == "firing" and len(hooks.posts) == 1


def test_hie_check_names_each_bad_alert_setting_with_its_line(
    make_app: Callable[..., AppConfig], tmp_path: Path
) -> None:
    extra = (
        "alerts:\n"  # line 3
        "  email: {smtp_host: mail, from: hie@example.org, to: [ops@x.org], starttls: true, ssl: true}\n"
        "  rules:\n"
        "    - {name: errors, kind: error_rate, channel: nope, threshold: 5}\n"  # line 6
        "    - {name: errors, kind: queue_depth, notify: [webhook]}\n"  # line 7
    )
    with pytest.raises(ConfigError) as caught:
        make_app({"adt": adt(free_port())}, extra=extra)
    found = {(p.line, p.field, p.message) for p in caught.value.problems}
    assert found == {
        (4, "alerts.email.ssl", "choose starttls or ssl, not both"),
        (6, "alerts.rules[0].channel", "no channel 'nope' (a channel id, or \"*\")"),
        (6, "alerts.rules[0].threshold", "an error rate is a share from 0 to 1: use below 1"),
        (7, "alerts.rules[1].name", "duplicate rule name 'errors'"),
        (7, "alerts.rules[1].notify", "alerts.webhook is not configured"),
    }
    assert all(p.file.endswith("config.yaml") for p in caught.value.problems)

    extra = "alerts:\n  rules:\n    - {name: flood, kind: flood}\n    - {name: Bad Name, kind: queue_depth}\n"
    with pytest.raises(ConfigError) as caught:
        make_app({"adt": adt(free_port())}, extra=extra)
    found = {(p.line, p.field) for p in caught.value.problems}
    assert found == {(5, "alerts.rules[0].kind"), (6, "alerts.rules[1].name")}

    extra = "alerts:\n  rules:\n    - {name: lonely, kind: listener_down}\n"
    with pytest.raises(ConfigError) as caught:
        make_app({"adt": adt(free_port())}, extra=extra)
    (problem,) = caught.value.problems
    assert (problem.line, problem.message) == (5, "nobody to tell: configure alerts.email or alerts.webhook")
