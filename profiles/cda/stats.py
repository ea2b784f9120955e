"""Upload statistics: what each institution uploaded, per day and per month (china-hie.md §11).

The roll-up (``rollup_day``) turns one local day of ``cda_uploads`` into ``cda_upload_days`` (per
institution and document type: received, accepted, rejected) and ``cda_upload_rejections`` (per
institution and rule: how many rejected documents it was a reason of), and one day of
``cda_upload_records`` into ``cda_record_days`` (per institution and service), replacing what was
there, so running it twice is harmless. The engine runs it every night for the day before (``cda.rollup_at``,
a scheduled job); ``hie report uploads`` rolls up whatever days of its month are missing, and today,
before it reads.

The monthly table (``monthly``), one row per institution, as the platform's bulletin shows it:

* required / declared document types (``cda.required``, each institution's ``declared``) and how
  many of them it uploaded (an accepted document of the type that month): completeness is uploaded
  required types ÷ required types;
* documents received, accepted, rejected, and the rules that rejected most;
* records (data sets that are not documents: patients registered, updated, merged through the
  national interface) received and stored (入库: accepted);
* upload days: days with at least one accepted document or record;
* outpatient visits (accepted 门(急)诊病历, C0002) and discharges (accepted 出院记录 C0049 or
  出院小结 C0053, whichever the institution sends more of: one of them per discharge).
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, delete, func, insert, select

from engine.config import AppConfig
from engine.plugins import Job
from engine.services import Services
from engine.store.db import utcnow
from profiles.cda.config import CdaConfig
from profiles.cda.schema import record_days, records, rollups, upload_days, upload_rejections, uploads

__all__ = ["ROLLUP", "MonthRow", "day_bounds", "monthly", "rollup_day", "rollup_month"]

OUTPATIENT = "C0002"
DISCHARGE = ("C0049", "C0053")


def day_bounds(day: dt.date, zone: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """The UTC instants a local day starts and ends at."""
    start = dt.datetime.combine(day, dt.time(), zone)
    return start.astimezone(dt.UTC), (start + dt.timedelta(days=1)).astimezone(dt.UTC)


def rollup_day(conn: Connection, day: dt.date, zone: ZoneInfo) -> int:
    """Roll up ``day`` (in ``zone``) in the caller's transaction; returns the uploads counted."""
    start, end = day_bounds(day, zone)
    u = uploads
    rows = conn.execute(
        select(u.c.institution, u.c.institution_name, u.c.document_code, u.c.status, u.c.rules).where(
            u.c.received_at >= start, u.c.received_at < end
        )
    ).all()
    counts: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    names: dict[str, str] = {}
    reasons: dict[str, Counter[str]] = defaultdict(Counter)
    for r in rows:
        names[r.institution] = r.institution_name or names.get(r.institution, "")
        tally = counts[(r.institution, r.document_code)]
        tally["received"] += 1
        tally[r.status] += 1
        if r.status == "rejected":
            for rule in set((r.rules or "unknown").split(",")):
                reasons[r.institution][rule] += 1
    key = day.isoformat()
    for table in (upload_days, upload_rejections, record_days, rollups):
        conn.execute(delete(table).where(table.c.day == key))
    rolled = len(rows) + _rollup_records(conn, key, start, end)
    now = utcnow()
    conn.execute(insert(rollups).values(day=key, uploads=rolled, rolled_up_at=now))
    if counts:
        conn.execute(
            insert(upload_days),
            [
                {
                    "day": key,
                    "institution": institution,
                    "document_code": code,
                    "institution_name": names[institution],
                    "received": tally["received"],
                    "accepted": tally["accepted"],
                    "rejected": tally["rejected"],
                    "rolled_up_at": now,
                }
                for (institution, code), tally in counts.items()
            ],
        )
    found = [
        {"day": key, "institution": institution, "rule": rule[:100], "documents": n}
        for institution, rules in reasons.items()
        for rule, n in rules.items()
    ]
    if found:
        conn.execute(insert(upload_rejections), found)
    return rolled


def _rollup_records(conn: Connection, key: str, start: dt.datetime, end: dt.datetime) -> int:
    r = records
    tallies: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    rows = conn.execute(
        select(r.c.institution, r.c.service, r.c.status).where(
            r.c.received_at >= start, r.c.received_at < end
        )
    ).all()
    for row in rows:
        tally = tallies[(row.institution, row.service)]
        tally["received"] += 1
        tally[row.status] += 1
    if tallies:
        conn.execute(
            insert(record_days),
            [
                {
                    "day": key,
                    "institution": institution,
                    "service": service,
                    "received": t["received"],
                    "accepted": t["accepted"],
                    "rejected": t["rejected"],
                }
                for (institution, service), t in tallies.items()
            ],
        )
    return len(rows)


def _month_days(month: str) -> list[dt.date]:
    year, number = (int(p) for p in month.split("-"))
    return [dt.date(year, number, d) for d in range(1, calendar.monthrange(year, number)[1] + 1)]


def rollup_month(db: Engine, month: str, zone: ZoneInfo, *, today: dt.date | None = None) -> int:
    """Roll up the days of ``month`` not rolled up yet, and today (which is still growing): how many
    days were rolled up."""
    today = today or dt.datetime.now(zone).date()
    days = [d for d in _month_days(month) if d <= today]
    with db.connect() as conn:
        done = set(conn.execute(select(rollups.c.day).where(rollups.c.day.like(f"{month}-%"))).scalars())
        firsts = [conn.execute(select(func.min(t.c.received_at))).scalar() for t in (uploads, records)]
    known = [f for f in firsts if f is not None]
    first_day = min(known).astimezone(zone).date() if known else today
    todo = [d for d in days if d >= first_day and (d.isoformat() not in done or d >= today)]
    for day in todo:
        with db.begin() as conn:
            rollup_day(conn, day, zone)
    return len(todo)


@dataclass
class MonthRow:
    institution: str
    name: str
    required: list[str]
    declared: list[str]
    uploaded_types: set[str] = field(default_factory=set)  # accepted at least once this month
    received: int = 0
    accepted: int = 0
    rejected: int = 0
    records_received: int = 0
    records_accepted: int = 0
    days: set[str] = field(default_factory=set)  # days with an accepted document or record
    by_type: Counter[str] = field(default_factory=Counter)  # accepted documents per type
    reasons: Counter[str] = field(default_factory=Counter)

    @property
    def required_uploaded(self) -> int:
        return len(set(self.required) & self.uploaded_types)

    @property
    def declared_uploaded(self) -> int:
        return len(set(self.declared) & self.uploaded_types)

    @property
    def completeness(self) -> float | None:
        return self.required_uploaded / len(self.required) if self.required else None

    @property
    def outpatient(self) -> int:
        return self.by_type[OUTPATIENT]

    @property
    def discharges(self) -> int:
        return max(self.by_type[c] for c in DISCHARGE)

    def top_reasons(self, n: int = 3) -> str:
        return "; ".join(f"{rule} {count}" for rule, count in self.reasons.most_common(n))


def monthly(conn: Connection, month: str, config: CdaConfig) -> list[MonthRow]:
    """The month's table from the roll-up: every configured institution, and every other one that
    uploaded."""
    table: dict[str, MonthRow] = {
        i.code: MonthRow(i.code, i.name, list(config.required), list(i.declared)) for i in config.institutions
    }
    d = upload_days
    for r in conn.execute(select(d).where(d.c.day.like(f"{month}-%")).order_by(d.c.day)):
        row = table.get(r.institution)
        if row is None:
            row = table[r.institution] = MonthRow(
                r.institution, r.institution_name, list(config.required), []
            )
        row.name = row.name or r.institution_name
        row.received += r.received
        row.accepted += r.accepted
        row.rejected += r.rejected
        if r.accepted:
            row.days.add(r.day)
            row.uploaded_types.add(r.document_code)
            row.by_type[r.document_code] += r.accepted
    x = upload_rejections
    for r in conn.execute(select(x).where(x.c.day.like(f"{month}-%"))):
        if r.institution in table:
            table[r.institution].reasons[r.rule] += r.documents
    k = record_days
    for r in conn.execute(select(k).where(k.c.day.like(f"{month}-%"))):
        row = table.get(r.institution)
        if row is None:
            row = table[r.institution] = MonthRow(r.institution, "", list(config.required), [])
        row.records_received += r.received
        row.records_accepted += r.accepted
        if r.accepted:
            row.days.add(r.day)
    return sorted(table.values(), key=lambda row: row.institution)


def _rollup_yesterday(services: Services, app: AppConfig) -> int:
    """The nightly job: the day before, in the platform's time zone."""
    zone = app.section("cda", CdaConfig).zone
    day = dt.datetime.now(zone).date() - dt.timedelta(days=1)
    with services.db.begin() as conn:
        return rollup_day(conn, day, zone)


def _schedule(app: AppConfig) -> tuple[str, dict[str, Any]]:
    config = app.section("cda", CdaConfig)
    hour, minute = (int(p) for p in config.rollup_at.split(":"))
    return "cron", {"hour": hour, "minute": minute, "timezone": config.zone}


ROLLUP = Job("cda-upload-rollup", _rollup_yesterday, _schedule)
