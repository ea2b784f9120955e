"""Telling people: an alert's notification as an e-mail (smtplib, on a thread) or a webhook POST (httpx).

A notification names the rule, its kind, the channel (and destination or source), the value, the
threshold and when it started; it carries counts and ids only, never message content, so no patient
data leaves the engine this way.

Webhook body (JSON)::

    {"status": "firing", "rule": "adt-errors", "kind": "error_rate", "channel": "adt",
     "subject": "", "value": 0.5, "threshold": 0.1, "detail": "2 of 4 messages in the last 15 minutes",
     "since": "2026-11-22T08:30:00+00:00", "at": "2026-11-22T08:31:00+00:00", "engine": "HIE",
     "host": "hie-1", "text": "..."}
"""

from __future__ import annotations

import asyncio
import email.policy
import smtplib
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Literal

import httpx

from engine.alerts.config import EmailSettings, WebhookSettings

__all__ = ["Notification", "post_webhook", "send", "send_email"]

# headers unfolded up to RFC 5322's 998 characters: a folded Subject can come back with a leading space
_POLICY = email.policy.SMTP.clone(max_line_length=998)


@dataclass(frozen=True)
class Notification:
    status: Literal["firing", "resolved"]
    rule: str
    kind: str
    channel: str
    subject: str  # the destination (queue_depth) or source (listener_down); "" for a whole channel
    value: float
    threshold: float
    detail: str  # how the value came about ("2 of 4 messages in the last 15 minutes")
    since: datetime  # when it started firing (resolved: when it had started)
    at: datetime
    engine: str
    host: str

    @property
    def where(self) -> str:
        return f"channel {self.channel}" + (f" ({self.subject})" if self.subject else "")

    @property
    def title(self) -> str:
        verb = "FIRING" if self.status == "firing" else "RESOLVED"
        return (
            f"[{self.engine}] {verb}: {self.rule} on {self.where}: "
            f"{self.kind} {_fmt(self.value)} (threshold {_fmt(self.threshold)})"
        )

    @property
    def text(self) -> str:
        state = "is firing" if self.status == "firing" else "has resolved"
        return (
            f"Alert {self.rule} {state}.\n\n"
            f"rule:      {self.rule} ({self.kind})\n"
            f"channel:   {self.channel}\n"
            + (f"where:     {self.subject}\n" if self.subject else "")
            + f"value:     {_fmt(self.value)}{f' ({self.detail})' if self.detail else ''}\n"
            f"threshold: {_fmt(self.threshold)} (fires above)\n"
            f"since:     {self.since.isoformat(timespec='seconds')}\n"
            f"checked:   {self.at.isoformat(timespec='seconds')}\n"
            f"engine:    {self.engine} on {self.host}\n"
        )

    def json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "rule": self.rule,
            "kind": self.kind,
            "channel": self.channel,
            "subject": self.subject,
            "value": self.value,
            "threshold": self.threshold,
            "detail": self.detail,
            "since": self.since.astimezone(UTC).isoformat(),
            "at": self.at.astimezone(UTC).isoformat(),
            "engine": self.engine,
            "host": self.host,
            "text": self.text,
        }


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.4g}"


def send_email(settings: EmailSettings, note: Notification) -> None:
    """Blocking: run it on a thread. Raises OSError or smtplib.SMTPException when the server refuses."""
    msg = EmailMessage(policy=_POLICY)
    msg["Subject"] = note.title
    msg["From"] = settings.sender
    msg["To"] = ", ".join(settings.to)
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = make_msgid(domain=note.host or None)
    msg.set_content(note.text)
    context = ssl.create_default_context()
    smtp: smtplib.SMTP
    if settings.ssl:
        smtp = smtplib.SMTP_SSL(
            settings.smtp_host, settings.smtp_port, timeout=settings.timeout, context=context
        )
    else:
        smtp = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.timeout)
    with smtp:
        if settings.starttls:
            smtp.starttls(context=context)
        if settings.username:
            smtp.login(settings.username, settings.password.get_secret_value())
        smtp.send_message(msg)


async def post_webhook(settings: WebhookSettings, note: Notification) -> None:
    """Raises httpx.HTTPError on a network problem or an answer other than 2xx."""
    async with httpx.AsyncClient(timeout=settings.timeout) as client:
        response = await client.post(settings.url, json=note.json(), headers=settings.headers)
        response.raise_for_status()


async def send(
    name: str, email: EmailSettings | None, webhook: WebhookSettings | None, note: Notification
) -> None:
    """Through the notifier called ``name`` (``email`` off the event loop)."""
    if name == "email" and email is not None:
        await asyncio.to_thread(send_email, email, note)
    elif name == "webhook" and webhook is not None:
        await post_webhook(webhook, note)
    else:
        raise ValueError(f"no notifier {name!r} configured")
