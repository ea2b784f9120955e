"""Reading the store: search, one message with every stage, statistics. Used by the CLI and the API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, exists, func, or_, select

from engine.store.schema import attempts, audit_events, deliveries, identifiers, messages

__all__ = ["MESSAGE_STATUSES", "DELIVERY_STATUSES", "Search", "get_message", "search", "stats"]

MESSAGE_STATUSES = ("received", "filtered", "errored")
DELIVERY_STATUSES = ("queued", "pending", "sent", "filtered", "errored")

_SUMMARY = (
    messages.c.id, messages.c.channel_id, messages.c.received_at, messages.c.status, messages.c.control_id,
    messages.c.message_type, messages.c.sending_application, messages.c.sending_facility, messages.c.error,
    messages.c.reprocessed_from,
)


@dataclass
class Search:
    channel: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    control_id: str | None = None
    patient_id: str | None = None
    message_type: str | None = None
    sending_facility: str | None = None
    destination: str | None = None
    before_id: int | None = None  # keyset pagination: messages older than this id
    limit: int = 50


def _where(s: Search) -> list[Any]:
    m, d = messages, deliveries
    cond: list[Any] = []
    if s.channel:
        cond.append(m.c.channel_id == s.channel)
    if s.since:
        cond.append(m.c.received_at >= s.since)
    if s.until:
        cond.append(m.c.received_at < s.until)
    if s.control_id:
        cond.append(m.c.control_id == s.control_id)
    if s.message_type:
        cond.append(m.c.message_type.like(s.message_type.replace("*", "%") + ("" if "^" in s.message_type else "%")))
    if s.sending_facility:
        cond.append(m.c.sending_facility == s.sending_facility)
    if s.patient_id:
        cond.append(exists().where(identifiers.c.message_id == m.c.id, identifiers.c.value == s.patient_id))
    if s.before_id:
        cond.append(m.c.id < s.before_id)
    dest_cond = [d.c.message_id == m.c.id]
    if s.destination:
        dest_cond.append(d.c.destination == s.destination)
    if s.status:
        if s.status == "errored":  # the message failed, or one of its deliveries did
            cond.append(or_(m.c.status == "errored", exists().where(*dest_cond, d.c.status == "errored")))
        elif s.status in MESSAGE_STATUSES:
            cond.append(m.c.status == s.status)
        else:
            cond.append(exists().where(*dest_cond, d.c.status == s.status))
    elif s.destination:
        cond.append(exists().where(*dest_cond))
    return cond


def search(db: Engine, s: Search) -> list[dict[str, Any]]:
    """Newest first, metadata only (no content): listing never reads a patient's data."""
    query = select(*_SUMMARY).where(and_(True, *_where(s))).order_by(messages.c.id.desc()).limit(s.limit)
    with db.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(query)]
        if rows:
            ids = [r["id"] for r in rows]
            per: dict[int, list[str]] = {}
            for mid, dest, status in conn.execute(
                select(deliveries.c.message_id, deliveries.c.destination, deliveries.c.status)
                .where(deliveries.c.message_id.in_(ids)).order_by(deliveries.c.id)
            ):
                per.setdefault(mid, []).append(f"{dest}:{status}")
            for r in rows:
                r["deliveries"] = per.get(r["id"], [])
    return rows


def get_message(db: Engine, ident: int) -> dict[str, Any] | None:
    """One message with every stage: raw, content, each delivery with its attempts, identifiers."""
    with db.connect() as conn:
        row = conn.execute(select(messages).where(messages.c.id == ident)).first()
        if row is None:
            return None
        out = dict(row._mapping)
        out["identifiers"] = [dict(r._mapping) for r in conn.execute(
            select(identifiers.c.value, identifiers.c.authority, identifiers.c.id_type, identifiers.c.field)
            .where(identifiers.c.message_id == ident))]
        dels = [dict(r._mapping) for r in conn.execute(
            select(deliveries).where(deliveries.c.message_id == ident).order_by(deliveries.c.id))]
        for d in dels:
            d["attempt_log"] = [dict(r._mapping) for r in conn.execute(
                select(attempts).where(attempts.c.delivery_id == d["id"]).order_by(attempts.c.attempt))]
        out["deliveries"] = dels
        out["audit_count"] = conn.execute(
            select(func.count()).select_from(audit_events).where(audit_events.c.message_id == ident)).scalar_one()
    return out


def stats(db: Engine, *, channel: str | None = None, since: datetime | None = None) -> dict[str, dict[str, int]]:
    """Per channel: received, filtered, errored messages; queued, sent, errored deliveries."""
    m, d = messages, deliveries
    out: dict[str, dict[str, int]] = {}

    def slot(ch: str) -> dict[str, int]:
        return out.setdefault(ch, {"received": 0, "filtered": 0, "queued": 0, "sent": 0, "errored": 0})

    mcond = [m.c.channel_id == channel] if channel else []
    dcond = [d.c.channel_id == channel] if channel else []
    if since:
        mcond.append(m.c.received_at >= since)
        dcond.append(d.c.created_at >= since)
    with db.connect() as conn:
        for ch, status, n in conn.execute(
            select(m.c.channel_id, m.c.status, func.count()).where(and_(True, *mcond))
            .group_by(m.c.channel_id, m.c.status)
        ):
            s = slot(ch)
            s["received"] += n
            if status in ("filtered", "errored"):
                s[status] += n
        for ch, status, n in conn.execute(
            select(d.c.channel_id, d.c.status, func.count()).where(and_(True, *dcond))
            .group_by(d.c.channel_id, d.c.status)
        ):
            s = slot(ch)
            if status in ("queued", "pending"):
                s["queued"] += n
            elif status == "sent":
                s["sent"] += n
            elif status == "errored":
                s["errored"] += n
    return out
