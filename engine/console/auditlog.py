"""Reading the audit trail for the API: a search over ``audit_events``, newest first, keyset-paged,
and its CSV export. Every value is a bound parameter."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, or_, select, true

from engine.store.queries import as_utc
from engine.store.schema import audit_events

__all__ = ["CSV_COLUMNS", "AuditSearch", "search_audit", "to_csv"]

CSV_COLUMNS = (
    "id",
    "event_time",
    "event_id",
    "event_type",
    "action",
    "outcome",
    "outcome_description",
    "user_id",
    "channel_id",
    "message_id",
    "patient_ids",
    "source_id",
)


@dataclass
class AuditSearch:
    since: datetime | None = None
    until: datetime | None = None
    patient_id: str | None = None  # a value as the messages carry it (PID-3.1), any authority
    user: str | None = None
    event_id: str | None = None  # the code alone (110110) or code^display^system
    before_id: int | None = None
    limit: int | None = 100


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _where(s: AuditSearch) -> ColumnElement[bool]:
    a = audit_events
    cond: list[ColumnElement[bool]] = []
    if s.since:
        cond.append(a.c.event_time >= as_utc(s.since))
    if s.until:
        cond.append(a.c.event_time < as_utc(s.until))
    if s.user:
        cond.append(a.c.user_id == s.user)
    if s.event_id:
        cond.append(or_(a.c.event_id == s.event_id, a.c.event_id.like(_like_escape(s.event_id) + "^%", "\\")))
    if s.patient_id:
        # patient_ids is "value^^^authority value2 ...": the value is a whole word or its first part
        words = " " + a.c.patient_ids + " "
        value = _like_escape(s.patient_id)
        cond.append(or_(words.like(f"% {value} %", "\\"), words.like(f"% {value}^%", "\\")))
    if s.before_id is not None:
        cond.append(a.c.id < s.before_id)
    return and_(true(), *cond)


def search_audit(db: Engine, s: AuditSearch) -> list[dict[str, Any]]:
    query = select(audit_events).where(_where(s)).order_by(audit_events.c.id.desc())
    if s.limit is not None:
        query = query.limit(s.limit)
    out = []
    with db.connect() as conn:
        for r in conn.execute(query):
            row = dict(r._mapping)
            row["event_time"] = as_utc(row["event_time"])
            row["participants"] = json.loads(row["participants"])
            row["objects"] = json.loads(row["objects"])
            out.append(row)
    return out


def _cell(value: Any) -> str:
    if value is None:
        return ""
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    # a cell a spreadsheet would run as a formula (CSV injection) is quoted as text
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def to_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")  # RFC 4180 line ends
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow([_cell(row[c]) for c in CSV_COLUMNS])
    return buf.getvalue()
