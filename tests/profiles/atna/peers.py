"""What the ATNA tests send and listen with: syslog messages, a UDP sender, channel files."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

from sqlalchemy import select

from profiles.atna.rfc5424 import format_message
from profiles.atna.schema import received
from tests.conftest import DATA

QUERY = (DATA / "atna" / "query-110112.xml").read_bytes()
PATIENT = "B200017^^^&1.2.156.112605.1.1&ISO"


def syslog(msg: bytes, *, app: str = "EMR_B", host: str = "emr.hosp-b.example") -> bytes:
    """An ITI-20 syslog message as another system sends it."""
    return format_message(msg, hostname=host, app_name=app, procid="2231")


def query(patient: str) -> bytes:
    """The sample 110112 Query record, about ``patient`` (a made-up id)."""
    return QUERY.replace(b"B200017", patient.encode())


def udp_channel(port: int, cid: str = "arr", *, more: str = "") -> str:
    return (
        f"id: {cid}\nsource: {{url: 'syslog-udp://127.0.0.1:{port}'{more}}}\n"
        "ack: after_delivery\nack_from: repository\n"
        "destinations:\n  - {id: repository, url: 'atna-repository:'}\n"
    )


def tls_channel(port: int, cid: str = "arr-tls", *, more: str = "") -> str:
    return (
        f"id: {cid}\nsource: {{url: 'syslog-tls://127.0.0.1:{port}', tls: srv{more}}}\n"
        "ack: after_delivery\nack_from: repository\n"
        "destinations:\n  - {id: repository, url: 'atna-repository:'}\n"
    )


def _send_udp(port: int, datagrams: list[bytes], per_second: float) -> None:
    gap = 1.0 / per_second if per_second else 0.0
    start = time.monotonic()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for i, datagram in enumerate(datagrams):
            sock.sendto(datagram, ("127.0.0.1", port))
            if gap:
                wait = start + (i + 1) * gap - time.monotonic()
                if wait > 0:
                    time.sleep(wait)


async def send_udp(port: int, *datagrams: bytes, per_second: float = 0.0) -> None:
    """Send from a thread (the engine's loop keeps reading meanwhile), ``per_second`` at most."""
    await asyncio.to_thread(_send_udp, port, list(datagrams), per_second)


def received_rows(rt: Any) -> list[dict[str, Any]]:
    """``atna_received``, oldest first."""
    with rt.services.db.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(received).order_by(received.c.audit_id))]
