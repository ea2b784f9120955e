"""Bulk load of an existing patient index (``hie empi load FILE.csv``): the first day of the EMPI.

A city starts with the identities its hospitals already have: millions of rows, far too many to
send as ITI-8 feeds. The CSV has a header and one identity per line::

    domain,value,national_id,name,family,given,birth_date,sex,phone,city
    hospital-a,A1001,320102198503120311,欧阳明轩,欧阳,明轩,1985-03-12,1,13851234567,南京市

Rows that carry a valid national ID-card number are linked by it (one person per number, across
the whole file and what the index already holds); a row without one, or with an invalid one, is
a person of its own (the number is kept on the record, flagged invalid). No probabilistic matching
runs here: that is the feed's job. Rows are written in transactions of ``batch`` rows, with one
``load`` history event per record; a bad row is reported with its line number and skipped, and
the load goes on. An identity already in the index is left as it is (reported as skipped). The
database's statistics are refreshed as the tables grow and at the end (``ANALYZE``; on PostgreSQL
``VACUUM (ANALYZE)`` of the index's tables).
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from engine.mapping import gb11643
from engine.store.writer import insert_rows
from profiles.canonical import Address, Coded, ContactPoint, HumanName, Identifier, Patient
from profiles.empi.domains import Domains
from profiles.empi.index import demographics_of
from profiles.empi.schema import events, persons, records

__all__ = ["COLUMNS", "LoadReport", "load_csv"]

COLUMNS = ("domain", "value", "national_id", "name", "family", "given", "birth_date", "sex", "phone", "city")
_SEX_SYSTEM = "2.16.156.10011.2.3.3.4"


@dataclass
class LoadReport:
    records: int = 0
    persons: int = 0
    skipped: int = 0
    problems: list[str] = field(default_factory=list)  # "line N: why", the first 100


def load_csv(
    db: Engine,
    domains: Domains,
    path: Path,
    next_id: Callable[[], int],
    *,
    batch: int = 5000,
    actor: str = "hie empi load",
    progress: Callable[[int], None] | None = None,
) -> LoadReport:
    report = LoadReport()
    known_people: dict[str, int] = {}  # national ID -> person, for this run (the index is asked once)
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = csv.DictReader(handle)
        missing = [c for c in ("domain", "value") if c not in (rows.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: the header has no {', '.join(missing)} column")
        for n, chunk in enumerate(_chunks(rows, batch)):
            _write_chunk(db, domains, chunk, next_id, known_people, report, actor)
            if progress is not None:
                progress(len(chunk))
            if n in _ANALYZE_AFTER:  # a planner that believes the tables empty scans them whole
                _analyze(db)
    if report.records:
        # fresh statistics, so that the planner picks the selective index for each query (a
        # family name alone matches a few percent of a city; a birth date, a few dozen people)
        _finish(db)
    return report


_ANALYZE_AFTER = frozenset({0, 9, 99})  # chunks after which the statistics are refreshed mid-load


def _analyze(db: Engine) -> None:
    with db.begin() as conn:
        conn.exec_driver_sql("ANALYZE")


def _finish(db: Engine) -> None:
    """The statistics, and on PostgreSQL a VACUUM of the index's tables too: it marks the new rows
    visible to every transaction (index-only scans need it), so the autovacuum that millions of
    inserted rows set off does not run over those tables while the first queries and feeds come."""
    if db.dialect.name != "postgresql":
        _analyze(db)
        return
    with db.connect() as conn:
        auto = conn.execution_options(isolation_level="AUTOCOMMIT")  # VACUUM runs outside a transaction
        for table in (persons, records, events):
            auto.exec_driver_sql(f'VACUUM (ANALYZE) "{table.name}"')


def _chunks(rows: csv.DictReader[str], size: int) -> Iterator[list[tuple[int, dict[str, str]]]]:
    chunk: list[tuple[int, dict[str, str]]] = []
    for row in rows:
        chunk.append((rows.line_num, row))
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _write_chunk(
    db: Engine,
    domains: Domains,
    chunk: list[tuple[int, dict[str, str]]],
    next_id: Callable[[], int],
    known_people: dict[str, int],
    report: LoadReport,
    actor: str,
) -> None:
    now = dt.datetime.now(dt.UTC)
    new_persons: list[dict[str, Any]] = []
    new_records: list[dict[str, Any]] = []
    new_events: list[dict[str, Any]] = []
    with db.begin() as conn:
        by_domain: dict[str, list[str]] = {}
        for _, r in chunk:
            by_domain.setdefault(r.get("domain", ""), []).append(r.get("value", ""))
        existing: set[tuple[str, str]] = set()
        for domain, values in by_domain.items():  # (domain = ?, value IN ...): the unique key's index
            existing |= {
                (domain, r.value)
                for r in conn.execute(
                    select(records.c.value).where(records.c.domain == domain, records.c.value.in_(values))
                )
            }
        numbers = {gb11643.normalise(r.get("national_id") or "") for _, r in chunk} - {""} - set(known_people)
        if numbers:
            for found in conn.execute(
                select(persons.c.id, persons.c.national_id).where(persons.c.national_id.in_(numbers))
            ):
                known_people[found.national_id] = found.id
        seen: set[tuple[str, str]] = set()
        for line, row in chunk:
            try:
                patient, domain, value, number, valid = _patient(domains, row)
            except ValueError as exc:
                report.skipped += 1
                if len(report.problems) < 100:
                    report.problems.append(f"line {line}: {exc}")
                continue
            if (domain, value) in existing or (domain, value) in seen:
                report.skipped += 1
                continue
            seen.add((domain, value))
            person_id = known_people.get(number) if valid else None
            if person_id is None:
                person_id = next_id()
                new_persons.append(
                    {
                        "id": person_id,
                        "national_id": number if valid else None,
                        "status": "active",
                        "merged_into": None,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
                if valid:
                    known_people[number] = person_id
            record_id = next_id()
            columns = demographics_of(patient, number or None)
            columns["national_id_valid"] = "" if not number else ("Y" if valid else "N")
            new_records.append(
                {
                    "id": record_id,
                    "domain": domain,
                    "value": value,
                    "person_id": person_id,
                    "status": "active",
                    "merged_into": None,
                    "message_id": None,
                    "created_at": now,
                    "updated_at": now,
                    **columns,
                }
            )
            new_events.append(
                {
                    "id": next_id(),
                    "at": now,
                    "kind": "load",
                    "record_id": record_id,
                    "person_id": person_id,
                    "other_id": None,
                    "score": None,
                    "detail": None,
                    "message_id": None,
                    "actor": actor,
                }
            )
        # the writer's fast path: positional executemany on SQLite, few multi-row statements on
        # PostgreSQL, without SQLAlchemy's work per row and column
        insert_rows(conn, [(persons, new_persons), (records, new_records), (events, new_events)])
    report.persons += len(new_persons)
    report.records += len(new_records)


def _patient(domains: Domains, row: dict[str, str]) -> tuple[Patient, str, str, str, bool]:
    domain = (row.get("domain") or "").strip()
    value = (row.get("value") or "").strip()
    if domain not in domains.config_domains:
        raise ValueError(f"unknown domain {domain!r}")
    if not value or len(value) > 100:
        raise ValueError(f"the identifier must have 1 to 100 characters, not {len(value)}")
    number = gb11643.normalise(row.get("national_id") or "")
    valid = bool(number) and gb11643.is_valid(number)
    birth = None
    if row.get("birth_date"):
        try:
            birth = dt.date.fromisoformat(row["birth_date"].strip())
        except ValueError:
            raise ValueError(f"birth_date {row['birth_date']!r} is not YYYY-MM-DD") from None
    sex = (row.get("sex") or "").strip()
    if sex and sex not in ("0", "1", "2", "9"):
        raise ValueError(f"sex {sex!r} is not a GB/T 2261.1 code (0, 1, 2, 9)")
    name = (row.get("name") or "").strip() or None
    patient = Patient(
        identifiers=[
            Identifier(value=value, system=domains.oid(domain), namespace=domains.namespace(domain))
        ],
        name=HumanName(text=name, family=row.get("family") or None, given=row.get("given") or None),
        sex=Coded(code=sex, system=_SEX_SYSTEM) if sex else None,
        birth_date=birth,
        telecoms=[ContactPoint(value=row["phone"], system="phone")] if row.get("phone") else [],
        addresses=[Address(city=row["city"])] if row.get("city") else [],
    )
    return patient, domain, value, number, valid
