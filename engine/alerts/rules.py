"""Checking the alert rules (``engine.alerts.config``) every ``alerts.check_seconds``, in the first worker.

Each check measures every rule, per channel (and destination or source), against the store and this
process's sources; an instance whose value stays above the threshold for ``for_minutes`` fires. A
notification goes out when an instance starts firing and one when it resolves, never while it keeps
firing; each notifier (e-mail, webhook) keeps its own record of what it last told, so one that failed
(the SMTP server down) is tried again at the next check and the other is not sent twice.

The state is kept in memory only. After a restart nothing is remembered: a condition still true
fires again (one new notification, so a restart does not hide a problem), and an alert that cleared
while the engine was down sends no "resolved". Each node sharing a PostgreSQL store checks the
store-based rules (error_rate, queue_depth) itself, so several nodes send the same alert each;
``listener_down`` is about each node's own sources.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from engine.alerts.config import AlertRule, AlertsSettings
from engine.alerts.notifiers import Notification, send
from engine.services import Services
from engine.store.health import backlog, error_counts

__all__ = ["Alerter", "Reading"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reading:
    """One instance of a rule measured: its channel, destination or source, value and how."""

    channel: str
    subject: str
    value: float
    detail: str = ""


@dataclass
class _State:
    above_since: float | None = None  # clock time the value went above the threshold
    firing: bool = False
    fired_at: float = 0.0
    told: dict[str, bool] = field(default_factory=dict)  # notifier -> the firing state it last told


class Alerter:
    """The rules' state and their checks; ``check`` is the scheduled job."""

    def __init__(
        self, settings: AlertsSettings, services: Services, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.settings = settings
        self.services = services
        self.clock = clock
        self.host = socket.gethostname()
        self.state: dict[tuple[str, str, str], _State] = {}  # (rule, channel, subject) -> state
        self.sent: deque[Notification] = deque(maxlen=100)  # the latest notifications that went out

    def channels(self, rule: AlertRule) -> list[str]:
        """The channels a rule covers: the one it names, or every channel this engine runs."""
        known = [c.id for c in self.services.app.channels if c.enabled]
        return known if rule.channel == "*" else [c for c in known if c == rule.channel]

    async def check(self) -> list[Notification]:
        """Measure every rule, move its instances' state, tell what changed. Never raises."""
        now = self.clock()
        out: list[Notification] = []
        for rule in self.settings.rules:
            try:
                readings = await self.measure(rule, now)
            except Exception as exc:  # the store is down: keep the state, try at the next check
                log.error("alert rule %s could not be checked: %s: %s", rule.name, type(exc).__name__, exc)
                continue
            out += await self._update(rule, readings, now)
        return out

    async def measure(self, rule: AlertRule, now: float) -> list[Reading]:
        channels = self.channels(rule)
        if rule.kind == "listener_down":
            sources = self.services.telemetry.sources
            return [
                Reading(c, sources[c].describe(), 0.0 if sources[c].up() else 1.0)
                for c in channels
                if c in sources
            ]
        db = self.services.reads
        if rule.kind == "queue_depth":
            waiting = await asyncio.to_thread(backlog, db)
            pairs = {(q.channel_id, q.destination_id) for q in self.services.telemetry.queues}
            pairs |= set(waiting)
            wanted = set(channels)
            return [
                Reading(c, f"destination {d}", float(counts["queued"] + counts["pending"]))
                for c, d in sorted(pairs)
                if c in wanted
                for counts in (waiting.get((c, d), {"queued": 0, "pending": 0}),)
            ]
        since = datetime.fromtimestamp(now, UTC) - timedelta(minutes=rule.window_minutes)
        counts = await asyncio.to_thread(error_counts, db, channels, since)
        window = f"{rule.window_minutes:g} minutes"
        readings = []
        for c in channels:
            received, errored = counts.get(c, (0, 0))
            rate = errored / received if received else 0.0
            readings.append(Reading(c, "", rate, f"{errored} of {received} messages in the last {window}"))
        return readings

    async def _update(self, rule: AlertRule, readings: list[Reading], now: float) -> list[Notification]:
        seen = {(r.channel, r.subject) for r in readings}
        # an instance no longer measured (its queue emptied out of the store) is below threshold
        for name, channel, subject in list(self.state):
            if name == rule.name and (channel, subject) not in seen:
                readings.append(Reading(channel, subject, 0.0))
        out: list[Notification] = []
        for reading in readings:
            state = self.state.setdefault((rule.name, reading.channel, reading.subject), _State())
            if reading.value > rule.threshold:
                if state.above_since is None:
                    state.above_since = now
                if not state.firing and now - state.above_since >= rule.for_minutes * 60:
                    state.firing, state.fired_at = True, now
            else:
                state.above_since = None
                state.firing = False
            out += await self._tell(rule, state, reading, now)
            if state.above_since is None and not any(state.told.values()):
                del self.state[(rule.name, reading.channel, reading.subject)]  # quiet: nothing to keep
        return out

    async def _tell(self, rule: AlertRule, state: _State, reading: Reading, now: float) -> list[Notification]:
        """Each notifier whose last word differs from the state hears of it; a failure is retried later."""
        due = [n for n in self.settings.notifiers(rule) if state.told.get(n, False) != state.firing]
        if not due:
            return []
        note = Notification(
            status="firing" if state.firing else "resolved",
            rule=rule.name,
            kind=rule.kind,
            channel=reading.channel,
            subject=reading.subject,
            value=reading.value,
            threshold=rule.threshold,
            detail=reading.detail,
            since=datetime.fromtimestamp(state.fired_at or now, UTC),
            at=datetime.fromtimestamp(now, UTC),
            engine=self.services.app.engine.name,
            host=self.host,
        )
        sent = False
        for name in due:
            try:
                await send(name, self.settings.email, self.settings.webhook, note)
            except Exception as exc:
                log.error(
                    "alert %s (%s): the %s notification failed, retried at the next check: %s: %s",
                    rule.name,
                    note.status,
                    name,
                    type(exc).__name__,
                    exc,
                )
                continue
            state.told[name] = state.firing
            sent = True
        if not sent:
            return []
        log.warning("alert %s", note.title)
        self.sent.append(note)
        return [note]
