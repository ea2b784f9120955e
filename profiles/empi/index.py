"""The EMPI's operations on its tables: feed a record, link it to a person, merge, cross-reference.

Every function takes an open connection inside a transaction that the caller commits, so a feed and
the history it writes (``empi_events``) are one atomic change: a feed that is acknowledged is in
the index, a feed that fails leaves nothing behind.

Linking a fed record to a person, in order:

1. a **valid national ID** (GB 11643 check passed) decides: the person with that number, or a new
   one. Two records with different valid numbers are never linked.
2. otherwise **blocking** (same birth date and sex, same phone, or same name key) finds at most
   ``_CANDIDATES`` active records, each scored (``matching.score``). At or above ``auto_link``, with
   a phone or address agreeing as well as name and birth date, the record joins that person; at or
   above ``review`` it gets a person of its own and a review entry (``hie empi review``); below,
   simply a person of its own. Candidates whose person carries a different valid national ID are
   skipped.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Row, Select, and_, bindparam, or_, select, update

from engine.store.writer import insert_rows
from profiles.canonical import Patient
from profiles.empi.config import Matching
from profiles.empi.matching import Demographics, name_key, phone_key, pinyin_key, score
from profiles.empi.schema import events, persons, records, reviews

__all__ = ["EmpiIndex", "FeedRecord", "FeedResult", "demographics_of", "insert_person", "record_columns"]

_CANDIDATES = 50

# Statements built once: a feed runs a dozen of them on the store's writer thread, and building a
# statement per call (``.values(...)``, ``.where(column == value)``) cost more than executing it.
# what a feed needs of an identity it meets again (not its demographics: each column of a result
# costs psycopg and SQLAlchemy work, on the writer's thread)
_RECORD: Select[Any] = select(
    records.c.id, records.c.status, records.c.person_id, records.c.merged_into
).where(records.c.domain == bindparam("d"), records.c.value == bindparam("v"))
_PERSON_BY_NATIONAL_ID = select(persons).where(
    persons.c.national_id == bindparam("n"), persons.c.status == "active"
)
_PERSON = select(persons).where(persons.c.id == bindparam("p"))
_IDENTITY = (
    select(persons.c.national_id, records.c.domain, records.c.value)
    .select_from(persons)
    .outerjoin(records, and_(records.c.person_id == persons.c.id, records.c.status == "active"))
    .where(persons.c.id == bindparam("p"))
    .order_by(records.c.domain, records.c.value)
)
# ITI-9's question in one query: the person of an active record, its national ID and its records
_XREF = records.alias("xref")
_IDENTITY_OF_RECORD = (
    select(persons.c.national_id, _XREF.c.domain, _XREF.c.value)
    .select_from(records)
    .join(persons, persons.c.id == records.c.person_id)
    .outerjoin(_XREF, and_(_XREF.c.person_id == persons.c.id, _XREF.c.status == "active"))
    .where(
        records.c.domain == bindparam("d"), records.c.value == bindparam("v"), records.c.status == "active"
    )
    .order_by(_XREF.c.domain, _XREF.c.value)
)
_INSERT_PERSON = persons.insert()
_INSERT_EVENT = events.insert()
_INSERT_REVIEW = reviews.insert()
_RECORD_ID = records.c.id == bindparam("b_id")
_REVIVE = update(records).where(_RECORD_ID).values(status="active", merged_into=None)
_MOVE_RECORD = update(records).where(_RECORD_ID)
_CLAIM_NATIONAL_ID = (
    update(persons)
    .where(persons.c.id == bindparam("b_id"), persons.c.national_id.is_(None))
    .values(national_id=bindparam("n"))
)


@dataclass(frozen=True)
class FeedRecord:
    """One identity as a feed gives it: domain, identifier, demographics, and what the feed was."""

    domain: str  # Domain.id
    value: str
    patient: Patient
    national_id: str | None  # normalised; None when the feed has none
    national_id_valid: bool
    message_id: int | None
    actor: str  # the source that fed it (MSH-3^MSH-4)
    columns: dict[str, Any]  # its searchable columns (``record_columns``), computed before the transaction


@dataclass
class FeedResult:
    record_id: int
    person_id: int
    created: bool
    linked_by: str  # national-id | match | new | kept
    changed_persons: set[int] = field(default_factory=set)  # persons whose cross-references changed


def demographics_of(patient: Patient, national_id: str | None) -> dict[str, Any]:
    """The searchable columns of a record, from the canonical Patient."""
    name = patient.name.text if patient.name is not None else None
    if not name and patient.name is not None and (patient.name.family or patient.name.given):
        name = f"{patient.name.family or ''}{patient.name.given or ''}"
    phone = next((t.value for t in patient.telecoms if t.system in (None, "phone", "sms")), None)
    address = patient.addresses[0] if patient.addresses else None
    family = (patient.name.family if patient.name else None) or None
    given = (patient.name.given if patient.name else None) or None
    mother = patient.mother_maiden_name
    mother_name = (mother.text or f"{mother.family or ''}{mother.given or ''}") if mother else None
    account = patient.account_number
    return {
        "national_id": national_id,
        "name": (name or "")[:100] or None,
        "name_key": (name_key(name) or "")[:100] or None,
        "name_pinyin": (pinyin_key(name) or "")[:200] or None,
        "family": (name_key(family) or "")[:50] or None,
        "given": (name_key(given) or "")[:50] or None,
        "family_pinyin": (pinyin_key(family) or "")[:100] or None,
        "given_pinyin": (pinyin_key(given) or "")[:100] or None,
        "birth_date": patient.birth_date,
        "sex": patient.sex.code[:2] if patient.sex is not None else None,
        "phone": phone_key(phone),
        "city": ((address.city if address else None) or "")[:50] or None,
        "address": ((address.text if address else None) or "")[:200] or None,
        "street": ((address.street if address else None) or "")[:100] or None,
        "province": ((address.province if address else None) or "")[:50] or None,
        "postal_code": ((address.postal_code if address else None) or "")[:20] or None,
        "country": ((address.country if address else None) or "")[:10] or None,
        "account_number": (account.value[:100] or None) if account else None,
        "account_namespace": ((account.namespace or "")[:64] or None) if account else None,
        "account_oid": ((account.system or "")[:64] or None) if account else None,
        "mother_key": (name_key(mother_name) or "")[:100] or None,
        "mother_pinyin": (pinyin_key(mother_name) or "")[:200] or None,
        "demographics": patient.model_dump_json(exclude_none=True, exclude_defaults=True),
    }


def record_columns(patient: Patient, national_id: str | None, valid: bool) -> dict[str, Any]:
    """The columns of a fed record: its demographics and whether its national ID passed its check."""
    columns = demographics_of(patient, national_id)
    columns["national_id_valid"] = "" if not national_id else ("Y" if valid else "N")
    return columns


def insert_person(conn: Connection, person_id: int, national_id: str | None, now: dt.datetime) -> int:
    """A new active person (with its enterprise key, when it has a valid one); returns its id."""
    conn.execute(_INSERT_PERSON, _person_row(person_id, national_id, now))
    return person_id


def _person_row(person_id: int, national_id: str | None, now: dt.datetime) -> dict[str, Any]:
    return {
        "id": person_id,
        "national_id": national_id,
        "status": "active",
        "merged_into": None,
        "created_at": now,
        "updated_at": now,
    }


# rows of a feed written together at its end, by table name
_Pending = dict[str, list[dict[str, Any]]]


def _compared(row: Row[Any] | dict[str, Any]) -> Demographics:
    get = row.get if isinstance(row, dict) else row._mapping.get
    return Demographics(
        name=get("name_key"),
        pinyin=get("name_pinyin"),
        birth_date=get("birth_date"),
        sex=get("sex"),
        phone=get("phone"),
        city=get("city"),
    )


class EmpiIndex:
    def __init__(self, matching: Matching, next_id: Callable[[], int]) -> None:
        self.matching = matching
        self.next_id = next_id
        # called as (conn, merged person, surviving person) inside the merge's transaction: what
        # other actors keep per person (the XDS registry's entries) follows the survivor
        self.merge_listeners: list[Callable[[Connection, int, int], None]] = []

    # -- reading ----------------------------------------------------------------------------------
    def record(self, conn: Connection, domain: str, value: str) -> Row[Any] | None:
        """The record of ``domain``/``value``, active or merged: its id, status, person and
        ``merged_into``."""
        return conn.execute(_RECORD, {"d": domain, "v": value}).first()

    def person_by_national_id(self, conn: Connection, national_id: str) -> Row[Any] | None:
        return conn.execute(_PERSON_BY_NATIONAL_ID, {"n": national_id}).first()

    def person(self, conn: Connection, person_id: int) -> Row[Any] | None:
        return conn.execute(_PERSON, {"p": person_id}).first()

    def identity(self, conn: Connection, person_id: int) -> tuple[str | None, list[tuple[str, str]]]:
        """The person's national ID and the (domain, value) of each of its active records, in domain
        then value order, in one query."""
        rows = conn.execute(_IDENTITY, {"p": person_id}).all()
        national = rows[0].national_id if rows else None
        return national, [(r.domain, r.value) for r in rows if r.domain is not None]

    def identity_of_record(
        self, conn: Connection, domain: str, value: str
    ) -> tuple[str | None, list[tuple[str, str]]] | None:
        """``identity`` of the person of the active record ``domain``/``value``, in one query; None
        when no active record has that identifier (unknown, or subsumed by an A40)."""
        rows = conn.execute(_IDENTITY_OF_RECORD, {"d": domain, "v": value}).all()
        if not rows:
            return None
        return rows[0].national_id, [(r.domain, r.value) for r in rows if r.domain is not None]

    # -- feeding ----------------------------------------------------------------------------------
    def feed(self, conn: Connection, feed: FeedRecord) -> FeedResult:
        """Create or update the record of ``feed`` and (re)link it. The caller commits."""
        now = dt.datetime.now(dt.UTC)
        columns = feed.columns
        existing = self.record(conn, feed.domain, feed.value)
        if existing is not None and existing.status != "active":
            # A fed identifier that an A40 subsumed comes back to life: that is a new identity
            # in the domain, not an update of the survivor.
            conn.execute(_REVIVE, {"b_id": existing.id, "updated_at": now})
            self._event(conn, "unmerge", existing.id, existing.person_id, None, None, None, feed)
        if existing is None:
            # a new identity's rows (its person, record, event, review) written together at the end:
            # one statement on PostgreSQL instead of one round trip each
            pending: _Pending = {persons.name: [], records.name: [], events.name: [], reviews.name: []}
            record_id = self.next_id()
            person_id, linked_by, found_score, review = self._link(conn, None, columns, feed, now, pending)
            pending[records.name].append(
                {
                    "id": record_id,
                    "domain": feed.domain,
                    "value": feed.value,
                    "person_id": person_id,
                    "status": "active",
                    "merged_into": None,
                    "message_id": feed.message_id,
                    "created_at": now,
                    "updated_at": now,
                    **columns,
                }
            )
            self._event(conn, "create", record_id, person_id, None, found_score, linked_by, feed, pending)
            if review is not None:
                self._open_review(conn, record_id, review, now, feed, pending)
            insert_rows(conn, [(t, pending[t.name]) for t in (persons, records, events, reviews)])
            return FeedResult(record_id, person_id, True, linked_by, {person_id})
        conn.execute(
            _MOVE_RECORD, {"b_id": existing.id, "message_id": feed.message_id, "updated_at": now, **columns}
        )
        self._event(conn, "update", existing.id, existing.person_id, None, None, None, feed)
        result = FeedResult(existing.id, existing.person_id, False, "kept")
        self._relink_on_new_national_id(conn, existing, columns, feed, now, result)
        return result

    def _link(
        self,
        conn: Connection,
        record_id: int | None,
        columns: dict[str, Any],
        feed: FeedRecord,
        now: dt.datetime,
        pending: _Pending | None = None,
    ) -> tuple[int, str, float | None, tuple[int, float, str] | None]:
        """(person, how, score, review candidate) for a record not linked yet; a new person's row
        goes to ``pending`` when given (written by the caller), else is inserted now."""
        if feed.national_id and feed.national_id_valid:
            found = self.person_by_national_id(conn, feed.national_id)
            if found is not None:
                return found.id, "national-id", None, None
        best = self._best_candidate(conn, record_id, columns, feed)
        if best is not None:
            person_id, value, why, strong = best
            if value >= self.matching.auto_link and strong:
                if feed.national_id and feed.national_id_valid:
                    self._claim_national_id(conn, person_id, feed.national_id, now)
                return person_id, "match", value, None
            if value >= self.matching.review:
                new_person = self._new_person(conn, feed, now, pending)
                return new_person, "new", value, (person_id, value, why)
        return self._new_person(conn, feed, now, pending), "new", None, None

    def _new_person(
        self, conn: Connection, feed: FeedRecord, now: dt.datetime, pending: _Pending | None = None
    ) -> int:
        nid = feed.national_id if feed.national_id and feed.national_id_valid else None
        if pending is None:
            return insert_person(conn, self.next_id(), nid, now)
        person_id = self.next_id()
        pending[persons.name].append(_person_row(person_id, nid, now))
        return person_id

    def _claim_national_id(
        self, conn: Connection, person_id: int, national_id: str, now: dt.datetime
    ) -> None:
        conn.execute(_CLAIM_NATIONAL_ID, {"b_id": person_id, "n": national_id, "updated_at": now})

    def _best_candidate(
        self, conn: Connection, record_id: int | None, columns: dict[str, Any], feed: FeedRecord
    ) -> tuple[int, float, str, bool] | None:
        """The best-scoring person among the blocked candidates: (person, score, why, strong)."""
        by_birth = columns["birth_date"] is not None and columns["sex"] is not None
        by_phone, by_name = bool(columns["phone"]), bool(columns["name_key"])
        if not (by_birth or by_phone or by_name):
            return None
        query = _candidates(by_birth, by_phone, by_name, record_id is not None)
        params = {
            "birth_date": columns["birth_date"],
            "sex": columns["sex"],
            "phone": columns["phone"],
            "name_key": columns["name_key"],
            "record_id": record_id,
        }
        mine = _compared(columns)
        valid_mine = feed.national_id if feed.national_id and feed.national_id_valid else None
        best: tuple[int, float, str, bool] | None = None
        for row in conn.execute(query, params):
            theirs = row.person_national_id
            if valid_mine and theirs and theirs != valid_mine:
                continue  # never link two different valid national IDs
            floor = max(self.matching.review, best[1] if best is not None else 0.0)
            value, parts = score(mine, _compared(row), self.matching.weights, floor)
            strong = parts.get("phone") == 1.0 or parts.get("address") == 1.0
            if best is None or value > best[1]:
                why = json.dumps({"scores": parts, "record": row.id}, sort_keys=True)
                best = (row.person_id, value, why, strong)
        return best

    def _relink_on_new_national_id(
        self,
        conn: Connection,
        existing: Row[Any],
        columns: dict[str, Any],
        feed: FeedRecord,
        now: dt.datetime,
        result: FeedResult,
    ) -> None:
        """An update that brings a valid national ID its person does not have: move or claim."""
        if not (feed.national_id and feed.national_id_valid):
            return
        person = self.person(conn, existing.person_id)
        if person is None or person.national_id == feed.national_id:
            return
        owner = self.person_by_national_id(conn, feed.national_id)
        if person.national_id is None and owner is None:
            self._claim_national_id(conn, person.id, feed.national_id, now)
            return
        # the record belongs with the number's person (or a new one): unlink it from this person
        target = owner.id if owner is not None else self._new_person(conn, feed, now)
        conn.execute(_MOVE_RECORD, {"b_id": existing.id, "person_id": target, "updated_at": now})
        self._event(conn, "unlink", existing.id, person.id, target, None, "national-id changed", feed)
        self._event(conn, "link", existing.id, target, person.id, None, "national-id", feed)
        result.person_id, result.linked_by = target, "national-id"
        result.changed_persons |= {person.id, target}

    # -- merging (ITI-8 A40) -----------------------------------------------------------------------
    def merge(self, conn: Connection, subsumed: Row[Any], survivor_feed: FeedRecord) -> FeedResult:
        """``subsumed`` (MRG-1) is replaced by the survivor (PID-3) in the same domain.

        The survivor is fed (created if new); the subsumed record is kept, marked merged into it,
        so its history stays readable and a query on it answers "unknown" (ITI TF-2 §3.8.4.2).
        When the two were different persons, the subsumed one's other records move to the
        survivor's person, which takes over its national ID if it had none.
        """
        now = dt.datetime.now(dt.UTC)
        result = self.feed(conn, survivor_feed)
        survivor_person = result.person_id
        conn.execute(
            _MOVE_RECORD,
            {"b_id": subsumed.id, "status": "merged", "merged_into": result.record_id, "updated_at": now},
        )
        self._event(conn, "merge", subsumed.id, survivor_person, result.record_id, None, None, survivor_feed)
        result.changed_persons |= {survivor_person, subsumed.person_id}
        old_person = subsumed.person_id
        if old_person != survivor_person:
            others = conn.execute(
                select(records.c.id).where(records.c.person_id == old_person, records.c.status == "active")
            ).all()
            if others:
                conn.execute(
                    update(records)
                    .where(records.c.person_id == old_person, records.c.status == "active")
                    .values(person_id=survivor_person, updated_at=now)
                )
                for (rid,) in others:
                    self._event(conn, "link", rid, survivor_person, old_person, None, "merge", survivor_feed)
            old = self.person(conn, old_person)
            conn.execute(
                update(persons)
                .where(persons.c.id == old_person)
                .values(status="merged", merged_into=survivor_person, national_id=None, updated_at=now)
            )
            if old is not None and old.national_id:
                self._claim_national_id(conn, survivor_person, old.national_id, now)
            for listener in self.merge_listeners:
                listener(conn, old_person, survivor_person)
        return result

    # -- history ----------------------------------------------------------------------------------
    def _open_review(
        self,
        conn: Connection,
        record_id: int,
        review: tuple[int, float, str],
        now: dt.datetime,
        feed: FeedRecord,
        pending: _Pending | None = None,
    ) -> None:
        candidate, value, why = review
        review_id = self.next_id()
        row = {
            "id": review_id,
            "record_id": record_id,
            "candidate_person_id": candidate,
            "score": value,
            "detail": why,
            "status": "open",
            "created_at": now,
            "resolved_at": None,
            "resolved_by": None,
        }
        if pending is None:
            conn.execute(_INSERT_REVIEW, row)
        else:
            pending[reviews.name].append(row)
        self._event(conn, "review-opened", record_id, candidate, review_id, value, why, feed, pending)

    def _event(
        self,
        conn: Connection,
        kind: str,
        record_id: int | None,
        person_id: int | None,
        other_id: int | None,
        value: float | None,
        detail: str | None,
        feed: FeedRecord,
        pending: _Pending | None = None,
    ) -> None:
        row = {
            "id": self.next_id(),
            "at": dt.datetime.now(dt.UTC),
            "kind": kind,
            "record_id": record_id,
            "person_id": person_id,
            "other_id": other_id,
            "score": value,
            "detail": detail,
            "message_id": feed.message_id,
            "actor": feed.actor[:100],
        }
        if pending is None:
            conn.execute(_INSERT_EVENT, row)
        else:
            pending[events.name].append(row)


_candidate_queries: dict[tuple[bool, bool, bool, bool], Any] = {}


def _candidates(by_birth: bool, by_phone: bool, by_name: bool, excluding: bool) -> Any:
    """The blocking query for the keys a feed has (built once per combination): active records
    with the same birth date and sex, the same phone or the same name key, with their person's
    national ID; ``excluding`` leaves the record itself out."""
    key = (by_birth, by_phone, by_name, excluding)
    query = _candidate_queries.get(key)
    if query is None:
        blocks = []
        if by_birth:
            blocks.append(
                and_(records.c.birth_date == bindparam("birth_date"), records.c.sex == bindparam("sex"))
            )
        if by_phone:
            blocks.append(records.c.phone == bindparam("phone"))
        if by_name:
            blocks.append(records.c.name_key == bindparam("name_key"))
        r = records
        query = (
            select(
                r.c.id,
                r.c.person_id,
                r.c.name_key,
                r.c.name_pinyin,
                r.c.birth_date,
                r.c.sex,
                r.c.phone,
                r.c.city,
                persons.c.national_id.label("person_national_id"),
            )
            .join(persons, persons.c.id == r.c.person_id)
            .where(r.c.status == "active", or_(*blocks))
            .limit(_CANDIDATES)
        )
        if excluding:
            query = query.where(records.c.id != bindparam("record_id"))
        _candidate_queries[key] = query
    return query
