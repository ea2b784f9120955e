"""Sending the engine's own audit records to an external Audit Record Repository (ITI-20, ITI TF-2
§3.20; the engine as a Secure Application's audit record creator).

A scheduled job (``atna-forward``, every ``atna.every_seconds``) reads the ``audit_events`` rows
after the mark of the configured ``forward_to`` (``atna_forward_marks``), renders each as a DICOM
PS3.15 A.5 ``AuditMessage`` (``engine.audit.to_dicom_xml``), wraps it in an RFC 5424 SYSLOG-MSG
(facility 10, severity 5, MSGID ``IHE+RFC-3881``: ITI TF-2 §3.20.4.1.2) and sends it: over TLS
octet-counted (RFC 5425), or one datagram each over UDP (RFC 5426). The mark advances only after a
batch was sent; a failed send is tried again from the mark on the next run, so a record is sent at
least once and, unless a send fails halfway, once.

Not sent: records received from other systems (``atna_received``) and the engine's records of its
syslog channels (their messages are audit messages; sending those records to a repository that
forwards to us would echo for ever).

Ids are time-ordered per node (``engine.ids``) but nodes commit independently: a record of another
node may commit a moment after a higher id of this one. Records younger than ``settle_seconds``
are therefore left for the next run, so the mark never passes a record still to commit. Several
engines sharing PostgreSQL run the job each; a session advisory lock lets one send at a time.

A record too large for a UDP datagram (65,507 bytes of IPv4 payload) cannot be sent that way: it
is skipped with a warning naming its id.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import socket
from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Connection, Engine, exists, insert, not_, or_, select, text, update

from engine.audit import to_dicom_xml
from engine.config import AppConfig
from engine.ids import IdGenerator
from engine.plugins import Job
from engine.registry import tls_context
from engine.services import Services
from engine.store.db import utcnow
from engine.store.schema import audit_events
from engine.store.writer import Batch
from profiles.atna import rfc5424, rfc5425
from profiles.atna.config import AtnaConfig
from profiles.atna.schema import forward_marks, received

__all__ = ["FORWARD", "forward_now", "syslog_channels"]

log = logging.getLogger(__name__)

MAX_BATCHES_PER_RUN = 20  # the job ends and runs again, rather than hold its thread for ever
UDP_MAX = 65_507  # RFC 5426 §3.2: an IPv4 datagram's largest payload
_LOCK_KEY = int.from_bytes(hashlib.blake2b(b"hie:atna-forward", digest_size=8).digest(), "big", signed=True)


def syslog_channels(app: AppConfig) -> list[str]:
    """Channels whose records are about audit messages received: a syslog source, or an
    ``atna-repository:`` destination."""
    out = []
    for channel in app.channels:
        scheme = urlsplit(channel.source.url).scheme
        if scheme.startswith("syslog-") or any(
            urlsplit(d.url).scheme == "atna-repository" for d in channel.destinations
        ):
            out.append(channel.id)
    return out


def forward_now(services: Services, app: AppConfig) -> int:
    """Send what was not sent yet; the number of records sent."""
    cfg = app.section("atna", AtnaConfig)
    if not cfg.forward_to:
        return 0
    with _exclusive(services.db) as mine:
        if not mine:
            return 0
        sender = _Sender(cfg, app)
        excluded = syslog_channels(app)
        mark = _mark(services.reads, cfg.forward_to)
        ceiling = _id_at(cfg.settle_seconds)
        total = 0
        for _ in range(MAX_BATCHES_PER_RUN):
            rows = _after(services.reads, mark, ceiling, excluded, cfg.batch_size)
            if not rows:
                break
            sender.send(rows)
            _advance(services, cfg.forward_to, mark, rows[-1]["id"])
            mark = rows[-1]["id"]
            total += len(rows)
            if len(rows) < cfg.batch_size:
                break
    if total:
        log.info("atna: %d audit records sent to %s", total, cfg.forward_to)
    return total


def _run(services: Services, app: AppConfig) -> int:
    return forward_now(services, app)


def _schedule(app: AppConfig) -> tuple[str, dict[str, Any]]:
    return "interval", {"seconds": app.section("atna", AtnaConfig).every_seconds}


FORWARD = Job("atna-forward", _run, _schedule)


@contextlib.contextmanager
def _exclusive(db: Engine) -> Iterator[bool]:
    """One forwarder at a time among the engines sharing a PostgreSQL database (a session advisory
    lock, let go when the run ends or its connection dies); SQLite has one engine process."""
    if db.dialect.name != "postgresql":
        yield True
        return
    with db.connect() as conn:
        got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _LOCK_KEY}).scalar())
        conn.commit()
        try:
            yield got
        finally:
            if got:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _LOCK_KEY})
                conn.commit()


def _id_at(settle_seconds: float) -> int:
    """The highest id a node could have made ``settle_seconds`` ago (``engine.ids`` layout)."""
    when = utcnow() - timedelta(seconds=settle_seconds)
    return ((int(when.timestamp() * 1000) - IdGenerator.timestamp_ms(0) + 1) << 22) - 1


def _mark(db: Engine, target: str) -> int:
    with db.connect() as conn:
        found = conn.execute(select(forward_marks.c.last_id).where(forward_marks.c.target == target)).scalar()
    return int(found) if found is not None else 0


def _after(db: Engine, mark: int, ceiling: int, excluded: Sequence[str], limit: int) -> list[dict[str, Any]]:
    a = audit_events
    conditions = [a.c.id > mark, a.c.id <= ceiling, not_(exists().where(received.c.audit_id == a.c.id))]
    if excluded:
        conditions.append(or_(a.c.channel_id.is_(None), a.c.channel_id.not_in(excluded)))
    query = select(a).where(*conditions).order_by(a.c.id).limit(limit)
    with db.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def _advance(services: Services, target: str, old: int, new: int) -> None:
    """The mark moves to ``new``, through the store's writer (one writer per database)."""

    def work(conn: Connection) -> None:
        values = {"last_id": new, "updated_at": utcnow()}
        t = forward_marks
        done = conn.execute(update(t).where(t.c.target == target, t.c.last_id == old).values(values))
        if not done.rowcount:
            conn.execute(insert(t).values(target=target, **values))

    batch = Batch()
    batch.then(lambda conn: work(conn))
    services.writer.write_sync(batch)


class _Sender:
    def __init__(self, cfg: AtnaConfig, app: AppConfig) -> None:
        url = urlsplit(cfg.forward_to)
        self.url = url
        self.host = url.hostname or ""
        self.port = int(url.port or 0)
        self.udp = url.scheme == "syslog-udp"
        self.tls = None if self.udp else tls_context(app, cfg.tls, server=False)
        self.app_name = cfg.app_name
        self.hostname = socket.gethostname()
        self.procid = str(os.getpid())

    def message(self, row: dict[str, Any]) -> bytes:
        xml = to_dicom_xml(row).encode("utf-8")
        return rfc5424.format_message(xml, hostname=self.hostname, app_name=self.app_name, procid=self.procid)

    def send(self, rows: list[dict[str, Any]]) -> None:
        messages = []
        for row in rows:
            message = self.message(row)
            if self.udp and len(message) > UDP_MAX:
                log.warning(
                    "atna: audit record %s is %d bytes, too large for UDP: not sent", row["id"], len(message)
                )
                continue
            messages.append(message)
        if self.udp:
            self._send_udp(messages)
        else:
            self._send_tls(messages)

    def _send_udp(self, messages: list[bytes]) -> None:
        family, kind, proto, _, address = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)[0]
        with socket.socket(family, kind, proto) as sock:
            for message in messages:
                sock.sendto(message, address)

    def _send_tls(self, messages: list[bytes]) -> None:
        assert self.tls is not None
        with (
            socket.create_connection((self.host, self.port), timeout=30) as raw,
            self.tls.wrap_socket(raw, server_hostname=self.host) as conn,
        ):
            conn.sendall(b"".join(rfc5425.frame(m) for m in messages))
