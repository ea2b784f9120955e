"""The ``alerts:`` section of config.yaml: rules checked on a schedule, and who is told.

::

    alerts:
      check_seconds: 60                 # how often the rules are checked
      email:                            # sent with the standard library's smtplib
        smtp_host: smtp.example.org
        smtp_port: 587
        from: hie@example.org
        to: [integration-team@example.org]
        starttls: true                  # or ssl: true (SMTPS, port 465)
        username: ${HIE_SMTP_USER:-}
        password: ${HIE_SMTP_PASSWORD:-}
      webhook:                          # a JSON POST
        url: https://chat.example.org/hooks/hie
        headers: {Authorization: "Bearer ${HIE_ALERT_TOKEN}"}
      rules:
        - {name: adt-errors, kind: error_rate, channel: adt-hospital-a, threshold: 0.05, window_minutes: 15}
        - {name: backlog, kind: queue_depth, channel: "*", threshold: 1000, for_minutes: 5}
        - {name: listener-down, kind: listener_down, channel: "*"}

A rule fires when its value is above ``threshold`` (for ``for_minutes`` on end, when set), once per
channel (``"*"``: every channel) and, for ``queue_depth``, per destination:

* ``error_rate``: the share (0 to 1) of the messages received in the last ``window_minutes`` that
  errored (stored as errored, or a delivery dead-lettered);
* ``queue_depth``: deliveries waiting for the destination (queued or pending);
* ``listener_down``: 1 when the channel's source is not taking messages (threshold 0).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from engine.errors import ConfigProblem
from engine.yamlloc import Located

__all__ = ["AlertRule", "AlertsSettings", "EmailSettings", "WebhookSettings", "check_alerts"]

Kind = Literal["error_rate", "queue_depth", "listener_down"]
NotifierName = Literal["email", "webhook"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class EmailSettings(_Strict):
    smtp_host: str = Field(min_length=1)
    smtp_port: int = Field(25, ge=1, le=65535)
    sender: str = Field(alias="from", min_length=3, description="the From address")
    to: list[str] = Field(min_length=1, description="recipients")
    starttls: bool = Field(False, description="upgrade the connection with STARTTLS (port 587)")
    ssl: bool = Field(False, description="TLS from the first byte (SMTPS, port 465)")
    username: str = Field("", description="log in when set; use ${ENV} rather than writing it here")
    password: SecretStr = Field(SecretStr(""), description="from the environment: ${HIE_SMTP_PASSWORD}")
    timeout: float = Field(10.0, gt=0, description="seconds for the SMTP exchange")


class WebhookSettings(_Strict):
    url: str = Field(pattern=r"^https?://", description="receives a JSON POST per notification")
    headers: dict[str, str] = Field(default_factory=dict, description="e.g. an Authorization header")
    timeout: float = Field(10.0, gt=0)


class AlertRule(_Strict):
    name: str = Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$", description="kebab-case, unique")
    kind: Kind
    channel: str = Field("*", description='a channel id, or "*" for every channel')
    threshold: float = Field(0.0, ge=0, description="fires above this value")
    window_minutes: float = Field(5.0, gt=0, description="error_rate: the messages of this many minutes")
    for_minutes: float = Field(0.0, ge=0, description="fires only once above threshold this long")
    notify: list[NotifierName] | None = Field(None, description="default: every notifier configured")


class AlertsSettings(_Strict):
    check_seconds: float = Field(60.0, gt=0, description="how often the rules are checked")
    email: EmailSettings | None = None
    webhook: WebhookSettings | None = None
    rules: list[AlertRule] = Field(default_factory=list)

    def notifiers(self, rule: AlertRule) -> list[NotifierName]:
        configured: list[NotifierName] = []
        if self.email is not None:
            configured.append("email")
        if self.webhook is not None:
            configured.append("webhook")
        return configured if rule.notify is None else [n for n in rule.notify if n in configured]


def check_alerts(settings: AlertsSettings, loc: Located, channels: Collection[str]) -> list[ConfigProblem]:
    """What the models cannot see alone: channels that exist, names used once, someone to tell."""
    out: list[ConfigProblem] = []
    if settings.email is not None and settings.email.starttls and settings.email.ssl:
        out.append(loc.problem(("alerts", "email", "ssl"), "choose starttls or ssl, not both"))
    seen: set[str] = set()
    for i, rule in enumerate(settings.rules):
        at = ("alerts", "rules", i)
        if rule.name in seen:
            out.append(loc.problem((*at, "name"), f"duplicate rule name {rule.name!r}"))
        seen.add(rule.name)
        if rule.channel != "*" and rule.channel not in channels:
            out.append(loc.problem((*at, "channel"), f'no channel {rule.channel!r} (a channel id, or "*")'))
        if rule.kind == "error_rate" and rule.threshold >= 1:
            out.append(loc.problem((*at, "threshold"), "an error rate is a share from 0 to 1: use below 1"))
        for name in rule.notify or ():
            if getattr(settings, name) is None:
                out.append(loc.problem((*at, "notify"), f"alerts.{name} is not configured"))
        if rule.notify is None and settings.email is None and settings.webhook is None:
            out.append(loc.problem((*at,), "nobody to tell: configure alerts.email or alerts.webhook"))
    return out
