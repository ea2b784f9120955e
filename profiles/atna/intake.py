"""What both syslog sources do with one SYSLOG-MSG: a channel message, or an errored record.

A message whose HEADER is RFC 5424 becomes a channel message like any other (stored durably, with
its deliveries and the engine's Import record, in one group commit of the store's writer: no
fsync of its own), indexed by

* control id: a 128-bit BLAKE2b hash of the SYSLOG-MSG (the MSGID is the same ``IHE+RFC-3881`` in
  every audit message, and UDP may deliver a datagram twice: equal hashes find the copies);
* message type ``SYSLOG^ITI-20``; sending application APP-NAME, sending facility HOSTNAME.

Bytes that are not RFC 5424 are kept as an errored record naming what is wrong
(``receiver.reject_unframed``), and nothing more happens to them: syslog has no answer to send.
Whether the MSG is an audit message is the ``atna-repository:`` destination's question.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from typing import Any
from urllib.parse import SplitResult

from engine.connectors.base import Receiver
from engine.hl7v2.peek import Header
from engine.message import ContentType
from profiles.atna import rfc5424

__all__ = ["MESSAGE_TYPE", "Intake", "control_id", "port_problem"]

log = logging.getLogger(__name__)

MESSAGE_TYPE = ("SYSLOG", "ITI-20")


def control_id(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def port_problem(url: SplitResult) -> str | None:
    """``hie check``: a syslog URL names its port (there is no default port)."""
    try:
        port = url.port
    except ValueError as exc:
        return f"bad port in {url.geturl()}: {exc}"
    return None if port is not None else f"{url.scheme} URL needs a port: {url.geturl()}"


class Intake:
    """Hands SYSLOG-MSGs to the channel; counts what it could not take."""

    def __init__(self, receiver: Receiver, us: str) -> None:
        self.receiver = receiver
        self.us = us
        self.in_flight = 0
        self.received = 0
        self.refused = 0  # not RFC 5424: kept as errored records
        self.dropped = 0  # not even kept (a flood beyond max_pending)
        self._warned_at = 0.0

    def submit(self, data: bytes, peer: str) -> asyncio.Task[None]:
        """Store ``data`` (one SYSLOG-MSG) from ``peer``; the task ends once it is committed."""
        self.in_flight += 1
        task = asyncio.ensure_future(self._take(data, peer))
        task.add_done_callback(self._done)
        return task

    def keep_broken(self, data: bytes, peer: str, reason: str) -> asyncio.Task[None]:
        """Bytes that never became a SYSLOG-MSG (a broken frame): an errored record."""
        self.in_flight += 1
        task = asyncio.ensure_future(self._reject(data, peer, reason))
        task.add_done_callback(self._done)
        return task

    def drop(self, peer: str, why: str) -> None:
        """A message not even kept (the flood limit): counted, and logged at most every 10 s."""
        self.dropped += 1
        now = time.monotonic()
        if now - self._warned_at >= 10.0:
            self._warned_at = now
            log.warning(
                "channel %s: syslog message from %s dropped: %s (%d dropped so far)",
                self.receiver.channel_id,
                peer,
                why,
                self.dropped,
            )

    async def _take(self, data: bytes, peer: str) -> None:
        try:
            message = rfc5424.parse(data)
        except rfc5424.SyslogFormatError as exc:
            await self._reject(data, peer, str(exc))
            return
        header = Header(
            "|",
            "^",
            "~",
            "&",
            sending_application=message.app_name[:100],
            sending_facility=message.hostname[:100],
            receiving_application=self.us,
            timestamp=message.timestamp.isoformat() if message.timestamp else "",
            message_code=MESSAGE_TYPE[0],
            trigger_event=MESSAGE_TYPE[1],
            control_id=control_id(data),
        )
        outcome, stored = await self.receiver.receive(
            data, peer, content_type=ContentType.TEXT, header=header
        )
        self.received += 1
        if outcome.error is not None:
            # the reason is in the store; the log names the record only (no payload above DEBUG)
            log.info(
                "channel %s: syslog message %s from %s: %s",
                self.receiver.channel_id,
                stored.id if stored else "-",
                peer,
                outcome.status.value,
            )

    async def _reject(self, data: bytes, peer: str, reason: str) -> None:
        self.refused += 1
        log.warning("channel %s: %s (%s)", self.receiver.channel_id, reason, peer)
        await self.receiver.reject_unframed(data, peer, reason)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self.in_flight -= 1
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "channel %s: a syslog message was not stored: %s",
                self.receiver.channel_id,
                type(task.exception()).__name__,
            )
