"""Reading the store: search, one message with every stage, statistics. Used by the CLI and the API.

Times: the store keeps UTC. SQLite drops the offset of a bound datetime, so every datetime given to
these functions is converted to UTC first (a naive one is taken as UTC already), and every datetime
returned is timezone-aware UTC on both backends.

Search status semantics (``Search.status``): ``received``, ``filtered`` and ``errored`` are states of
the message itself (``errored`` also matches a message one of whose deliveries is dead-lettered);
``queued``, ``pending`` and ``sent`` match a message that has a delivery in that state. With
``Search.destination`` the delivery states refer to that destination's delivery only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, exists, func, or_, select, true

from engine.store import textindex
from engine.store.schema import attempts, audit_events, deliveries, identifiers, messages

__all__ = [
    "DELIVERY_STATUSES",
    "MESSAGE_STATUSES",
    "SEARCH_STATUSES",
    "STAT_COLUMNS",
    "Search",
    "as_utc",
    "get_message",
    "matching_ids",
    "originals",
    "search",
    "stats",
]

MESSAGE_STATUSES = ("received", "filtered", "errored")
DELIVERY_STATUSES = ("queued", "pending", "sent", "filtered", "errored")
SEARCH_STATUSES = ("received", "filtered", "errored", "queued", "pending", "sent")
STAT_COLUMNS = ("received", "filtered", "queued", "sent", "errored")

_SUMMARY = (
    messages.c.id,
    messages.c.channel_id,
    messages.c.received_at,
    messages.c.status,
    messages.c.content_type,
    messages.c.control_id,
    messages.c.message_type,
    messages.c.sending_application,
    messages.c.sending_facility,
    messages.c.error,
    messages.c.reprocessed_from,
)


@dataclass
class Search:
    channel: str | None = None
    status: str | None = None  # one of SEARCH_STATUSES
    since: datetime | None = None  # received at or after
    until: datetime | None = None  # received before
    control_id: str | None = None
    patient_id: str | None = None  # any stored identifier (PID-3, PID-2, PID-4, PID-19, MRG-1)
    message_type: str | None = None  # ADT^A01 exactly; ADT: every ADT event; ADT^A0*: a pattern
    sending_facility: str | None = None
    destination: str | None = None  # has a delivery to this destination
    text: str | None = None  # free text in the content (textindex: 3 characters or more)
    before_id: int | None = None  # keyset pagination: messages older than this id
    limit: int | None = 50  # None: no limit

    def is_empty(self) -> bool:
        """True when no filter is set (paging and limit do not count)."""
        return not any(
            (
                self.channel,
                self.status,
                self.since,
                self.until,
                self.control_id,
                self.patient_id,
                self.message_type,
                self.sending_facility,
                self.destination,
                self.text,
            )
        )


def as_utc(value: datetime) -> datetime:
    """Aware UTC; a naive datetime is taken to be UTC already (that is how SQLite returns them)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _aware(row: dict[str, Any]) -> dict[str, Any]:
    for key, value in row.items():
        if isinstance(value, datetime):
            row[key] = as_utc(value)
    return row


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _type_condition(wanted: str) -> ColumnElement[bool]:
    col = messages.c.message_type
    if "*" in wanted:
        return col.like(_like_escape(wanted).replace("*", "%"), escape="\\")
    if "^" in wanted:
        return col == wanted
    # a message code alone: ADT matches ADT^A01, ADT^A08... and a bare ADT, but not ADTX^...
    return or_(col == wanted, col.like(_like_escape(wanted) + "^%", escape="\\"))


def _where(s: Search) -> list[ColumnElement[bool]]:
    m, d = messages, deliveries
    cond: list[ColumnElement[bool]] = []
    if s.channel:
        cond.append(m.c.channel_id == s.channel)
    if s.since:
        cond.append(m.c.received_at >= as_utc(s.since))
    if s.until:
        cond.append(m.c.received_at < as_utc(s.until))
    if s.control_id:
        cond.append(m.c.control_id == s.control_id)
    if s.message_type:
        cond.append(_type_condition(s.message_type))
    if s.sending_facility:
        cond.append(m.c.sending_facility == s.sending_facility)
    if s.patient_id:
        # IN (ids of the patient's messages), not a correlated EXISTS: SQLite would walk every message
        # newest first and probe each, where this reads the patient's few rows through ix_identifiers_value
        cond.append(m.c.id.in_(select(identifiers.c.message_id).where(identifiers.c.value == s.patient_id)))
    if s.text:  # raises textindex.TextSearchError (a ValueError) when too short to search
        cond.append(textindex.matches(m.c.id, s.text, below=s.before_id))
    if s.before_id is not None:
        cond.append(m.c.id < s.before_id)
    dest_cond: list[ColumnElement[bool]] = [d.c.message_id == m.c.id]
    if s.destination:
        dest_cond.append(d.c.destination == s.destination)
    status = s.status
    if status is None:
        if s.destination:
            cond.append(exists().where(*dest_cond))
    elif status not in SEARCH_STATUSES:
        raise ValueError(f"unknown status {status!r} (known: {', '.join(SEARCH_STATUSES)})")
    elif status == "received":
        cond.append(m.c.status == "received")
        if s.destination:
            cond.append(exists().where(*dest_cond))
    elif s.destination:  # that destination's delivery is in this state
        cond.append(exists().where(*dest_cond, d.c.status == status))
    elif status == "errored":  # the message failed, or one of its deliveries did
        cond.append(or_(m.c.status == "errored", exists().where(*dest_cond, d.c.status == "errored")))
    elif status == "filtered":
        cond.append(m.c.status == "filtered")
    else:
        cond.append(exists().where(*dest_cond, d.c.status == status))
    return cond


def _all(conds: Sequence[ColumnElement[bool]]) -> ColumnElement[bool]:
    return and_(true(), *conds)


def search(db: Engine, s: Search) -> list[dict[str, Any]]:
    """Newest first, metadata only (no content): listing never reads a patient's data.

    Each row has the message's summary columns and ``deliveries``: a list of
    ``{destination, status, attempts, last_error}`` in destination order.
    """
    query = select(*_SUMMARY).where(_all(_where(s))).order_by(messages.c.id.desc())
    if s.limit is not None:
        query = query.limit(s.limit)
    with db.connect() as conn:
        rows = [_aware(dict(r._mapping)) for r in conn.execute(query)]
        per: dict[int, list[dict[str, Any]]] = {}
        if rows:
            ids = [r["id"] for r in rows]
            d = deliveries
            for chunk in _chunks(ids, 500):
                for mid, dest, status, tries, error in conn.execute(
                    select(d.c.message_id, d.c.destination, d.c.status, d.c.attempts, d.c.last_error)
                    .where(d.c.message_id.in_(chunk))
                    .order_by(d.c.id)
                ):
                    per.setdefault(mid, []).append(
                        {"destination": dest, "status": status, "attempts": tries, "last_error": error}
                    )
        for r in rows:
            r["deliveries"] = per.get(r["id"], [])
    return rows


def matching_ids(db: Engine, s: Search) -> list[int]:
    """Ids of every message matching ``s`` (``limit`` honoured when set), oldest first."""
    query = select(messages.c.id).where(_all(_where(s))).order_by(messages.c.id.desc())
    if s.limit is not None:
        query = query.limit(s.limit)
    with db.connect() as conn:
        ids = [int(i) for i in conn.execute(query).scalars()]
    ids.reverse()
    return ids


def get_message(db: Engine, ident: int) -> dict[str, Any] | None:
    """One message with every stage: raw, content, each delivery with its attempts, identifiers."""
    with db.connect() as conn:
        row = conn.execute(select(messages).where(messages.c.id == ident)).first()
        if row is None:
            return None
        out = _aware(dict(row._mapping))
        out["identifiers"] = [
            dict(r._mapping)
            for r in conn.execute(
                select(
                    identifiers.c.value, identifiers.c.authority, identifiers.c.id_type, identifiers.c.field
                ).where(identifiers.c.message_id == ident)
            )
        ]
        dels = [
            _aware(dict(r._mapping))
            for r in conn.execute(
                select(deliveries).where(deliveries.c.message_id == ident).order_by(deliveries.c.id)
            )
        ]
        for d in dels:
            d["attempt_log"] = [
                _aware(dict(r._mapping))
                for r in conn.execute(
                    select(attempts).where(attempts.c.delivery_id == d["id"]).order_by(attempts.c.attempt)
                )
            ]
        out["deliveries"] = dels
        copies = select(messages.c.id).where(messages.c.reprocessed_from == ident).order_by(messages.c.id)
        out["reprocessed_as"] = [int(i) for i in conn.execute(copies).scalars()]
        audited = select(func.count()).select_from(audit_events).where(audit_events.c.message_id == ident)
        out["audit_count"] = conn.execute(audited).scalar_one()
    return out


def originals(db: Engine, ids: Iterable[int], *, with_raw: bool = True) -> dict[int, dict[str, Any]]:
    """What reprocessing needs of each message: its channel, raw bytes, content type, header, identifiers.

    ``has_raw`` tells whether the raw bytes are still there (retention prunes them); ``raw`` itself is
    read only ``with_raw``. Ids not in the store are missing from the answer.
    """
    m = messages
    cols = [
        m.c.id,
        m.c.channel_id,
        m.c.content_type,
        m.c.charset,
        m.c.control_id,
        m.c.message_type,
        m.c.raw.is_not(None).label("has_raw"),
    ]
    if with_raw:
        cols.append(m.c.raw)
    out: dict[int, dict[str, Any]] = {}
    with db.connect() as conn:
        for chunk in _chunks(list(ids), 500):
            for r in conn.execute(select(*cols).where(m.c.id.in_(chunk))):
                row = dict(r._mapping)
                row["has_raw"] = bool(row["has_raw"])
                out[int(r.id)] = {**row, "identifiers": []}
            for mid, value, authority in conn.execute(
                select(identifiers.c.message_id, identifiers.c.value, identifiers.c.authority).where(
                    identifiers.c.message_id.in_(chunk)
                )
            ):
                if mid in out:
                    out[mid]["identifiers"].append({"value": value, "authority": authority})
    return out


def stats(
    db: Engine, *, channel: str | None = None, since: datetime | None = None
) -> dict[str, dict[str, int]]:
    """Per channel: counts for ``STAT_COLUMNS`` and the two parts of ``errored``.

    ``received`` counts every message stored (whatever became of it), ``filtered`` the messages a
    filter dropped; ``queued`` (queued or pending) and ``sent`` count deliveries; ``errored`` is
    ``errored_messages`` (stored as errored: unreadable, rejected, step failure) plus
    ``errored_deliveries`` (dead-lettered). ``since``: messages received, deliveries created since then.
    """
    m, d = messages, deliveries
    out: dict[str, dict[str, int]] = {}

    def slot(ch: str) -> dict[str, int]:
        return out.setdefault(
            ch, {**dict.fromkeys(STAT_COLUMNS, 0), "errored_messages": 0, "errored_deliveries": 0}
        )

    mcond: list[ColumnElement[bool]] = [m.c.channel_id == channel] if channel else []
    dcond: list[ColumnElement[bool]] = [d.c.channel_id == channel] if channel else []
    if since:
        mcond.append(m.c.received_at >= as_utc(since))
        dcond.append(d.c.created_at >= as_utc(since))
    with db.connect() as conn:
        for ch, status, n in conn.execute(
            select(m.c.channel_id, m.c.status, func.count())
            .where(_all(mcond))
            .group_by(m.c.channel_id, m.c.status)
        ):
            s = slot(ch)
            s["received"] += n
            if status == "filtered":
                s["filtered"] += n
            elif status == "errored":
                s["errored_messages"] += n
        for ch, status, n in conn.execute(
            select(d.c.channel_id, d.c.status, func.count())
            .where(_all(dcond))
            .group_by(d.c.channel_id, d.c.status)
        ):
            s = slot(ch)
            if status in ("queued", "pending"):
                s["queued"] += n
            elif status == "sent":
                s["sent"] += n
            elif status == "errored":
                s["errored_deliveries"] += n
    for s in out.values():
        s["errored"] = s["errored_messages"] + s["errored_deliveries"]
    return out


def _chunks(items: Sequence[int], size: int) -> Iterable[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
