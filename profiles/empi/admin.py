"""What a data steward does to the index by hand: review uncertain matches, link, unlink, merge,
restore; and find records by identifier, national ID or name (the web console's search).

Each operation is one transaction that also writes its history (``empi_events``, the steward as
actor), the ITI-10 outbox rows of every notification channel for the persons whose
cross-references changed, and an ATNA record (110110 Patient Record, action U, the steward as
requestor). Reading a person (``show``) is audited as well (action R): it is PHI access. The review
queue and the search do not audit themselves: their caller records what is shown before showing it
(``read_event``; the console does so through its audit writer).

A refusal is an ``AdminError``: ``AdminNotFound`` for an unknown record or review, ``AdminConflict``
for what the index's state forbids (a closed review, two national IDs, the only record of a person).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, and_, func, or_, select, update

from engine import audit
from engine.ids import IdGenerator
from engine.mapping import gb11643
from engine.store.schema import audit_events
from profiles.empi.domains import Domains
from profiles.empi.index import insert_person
from profiles.empi.matching import name_key, pinyin_key
from profiles.empi.schema import events, notifications, persons, records, reviews

__all__ = ["AdminConflict", "AdminError", "AdminNotFound", "EmpiAdmin", "MergeListener", "PersonView"]

# called as (conn, merged person, surviving person) in the transaction that empties a person: what
# other actors keep per person (XDS registry entries, DICOM studies) follows the survivor
MergeListener = Callable[[Connection, int, int], None]
_SHOWN = (  # what the review queue and the search show of a record
    records.c.domain,
    records.c.value,
    records.c.name,
    records.c.birth_date,
    records.c.sex,
    records.c.national_id,
    records.c.phone,
    records.c.city,
)


class AdminError(ValueError):
    """An operation that cannot be done as asked (unknown domain, record, closed review...)."""


class AdminNotFound(AdminError):
    """No such record (active, where it must be) or review."""


class AdminConflict(AdminError):
    """The index's state forbids it: a closed review, already one person, two national IDs..."""


_NATIONAL_ID = re.compile(r"^(\d{15}|\d{17}[\dX])$")


def _like_prefix(value: str) -> str:
    """A LIKE pattern for values starting with ``value`` (its own % and _ taken literally)."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


@dataclass
class PersonView:
    person: dict[str, Any]
    records: list[dict[str, Any]]
    history: list[dict[str, Any]]
    # (domain, value) of every record the history names, linked to the person now or not
    named: dict[int, tuple[str, str]] = field(default_factory=dict)


class EmpiAdmin:
    def __init__(
        self,
        db: Engine,
        domains: Domains,
        ids: IdGenerator,
        *,
        user: str,
        notify_channels: Iterable[str] = (),
        network: str = "",
        merge_listeners: Iterable[MergeListener] = (),
    ) -> None:
        self.db = db
        self.domains = domains
        self.ids = ids
        self.user = user
        self.notify_channels = sorted(notify_channels)
        self.network = network  # the steward's address, for the audit records (the console's caller)
        self.merge_listeners = list(merge_listeners)

    # -- reading ----------------------------------------------------------------------------------
    def open_reviews(
        self, *, limit: int | None = None, after: tuple[float, int] | None = None
    ) -> list[dict[str, Any]]:
        """The open reviews, best score first (then oldest first), each with its record's
        demographics and the candidate person's active records (``candidate``); ``limit`` at a
        time, those after the (score, id) ``after`` of the previous page's last one."""
        query = (
            select(reviews, records.c.status.label("record_status"), *_SHOWN)
            .join(records, records.c.id == reviews.c.record_id)
            .where(reviews.c.status == "open")
            .order_by(reviews.c.score.desc(), reviews.c.id)
        )
        if after is not None:
            score, last = after
            query = query.where(
                or_(reviews.c.score < score, and_(reviews.c.score == score, reviews.c.id > last))
            )
        if limit is not None:
            query = query.limit(limit)
        with self.db.connect() as conn:
            out = [dict(r._mapping) for r in conn.execute(query)]
            for review in out:
                review["candidate"] = [
                    dict(r._mapping)
                    for r in conn.execute(
                        select(records.c.id, *_SHOWN)
                        .where(
                            records.c.person_id == review["candidate_person_id"], records.c.status == "active"
                        )
                        .order_by(records.c.domain, records.c.value)
                    )
                ]
        return out

    def count_open_reviews(self) -> int:
        with self.db.connect() as conn:
            found = conn.execute(select(func.count()).where(reviews.c.status == "open")).scalar_one()
        return int(found)

    def find_records(self, q: str, *, limit: int, before: int | None = None) -> list[dict[str, Any]]:
        """Records, active or merged away, newest first (``limit`` at a time, ids below ``before``):
        those whose identifier is ``q`` in any domain (or ``domain:value``), whose national ID is
        ``q``, or whose name starts with ``q`` (Hanzi as written; Latin letters against the name's
        pinyin, so ``ouyang m`` finds 欧阳明轩 and OUYANG MINGHUI)."""
        text = q.strip()
        known = self.domains.config_domains
        wanted: list[Any] = [and_(records.c.domain.in_(list(known)), records.c.value == text)]
        domain, colon, value = text.partition(":")
        if colon and domain in known and value:
            wanted.append(and_(records.c.domain == domain, records.c.value == value))
        number = gb11643.normalise(text)
        if _NATIONAL_ID.match(number):
            wanted.append(records.c.national_id == number)
        key = name_key(text)
        if key and not key.isascii():
            wanted.append(records.c.name_key.like(_like_prefix(key), escape="\\"))
        elif key:
            wanted.append(records.c.name_pinyin.like(_like_prefix(pinyin_key(text) or key), escape="\\"))
        found: dict[int, dict[str, Any]] = {}
        with self.db.connect() as conn:
            # one query per way of matching, each on its index, rather than one OR over them all
            for condition in wanted:
                query = select(
                    records.c.id, records.c.person_id, records.c.status, records.c.merged_into, *_SHOWN
                ).where(condition)
                if before is not None:
                    query = query.where(records.c.id < before)
                for row in conn.execute(query.order_by(records.c.id.desc()).limit(limit)):
                    found[row.id] = dict(row._mapping)
        return [found[i] for i in sorted(found, reverse=True)[:limit]]

    def show(self, domain: str, value: str) -> PersonView:
        with self.db.begin() as conn:
            record = self._record(conn, domain, value)
            person = conn.execute(select(persons).where(persons.c.id == record["person_id"])).first()
            assert person is not None
            linked = [
                dict(r._mapping)
                for r in conn.execute(
                    select(records)
                    .where(records.c.person_id == person.id)
                    .order_by(records.c.domain, records.c.value)
                )
            ]
            ids = [r["id"] for r in linked]
            history = [
                dict(r._mapping)
                for r in conn.execute(
                    select(events)
                    .where((events.c.record_id.in_(ids)) | (events.c.person_id == person.id))
                    .order_by(events.c.id)
                )
            ]
            named = {r["id"]: (r["domain"], r["value"]) for r in linked}
            elsewhere = sorted({e["record_id"] for e in history if e["record_id"] is not None} - set(named))
            if elsewhere:
                for row in conn.execute(
                    select(records.c.id, records.c.domain, records.c.value).where(records.c.id.in_(elsewhere))
                ):
                    named[row.id] = (row.domain, row.value)
            self._audit(conn, "R", [self._cx(r["domain"], r["value"]) for r in linked], "empi show")
        return PersonView(dict(person._mapping), linked, history, named)

    def patient_ref(self, domain: str, value: str) -> str:
        """A record as an audit record names a patient: ``value^^^namespace&oid&ISO``."""
        return self._cx(domain, value)

    def read_event(self, patients: Iterable[str], what: str) -> audit.AuditEvent:
        """110110 Patient Record, action R: the steward is shown these patients (``patient_ref``)."""
        unique = list(dict.fromkeys(patients))
        return self._event_of("R", unique, what)

    # -- changing ---------------------------------------------------------------------------------
    def resolve_review(self, review_id: int, *, link: bool) -> None:
        """Link the review's record to its candidate person, or record that they are different people."""
        now = dt.datetime.now(dt.UTC)
        with self.db.begin() as conn:
            review = conn.execute(select(reviews).where(reviews.c.id == review_id)).first()
            if review is None:
                raise AdminNotFound(f"no review {review_id}")
            if review.status != "open":
                raise AdminConflict(f"review {review_id} is already {review.status}")
            status = "linked" if link else "rejected"
            conn.execute(
                update(reviews)
                .where(reviews.c.id == review_id)
                .values(status=status, resolved_at=now, resolved_by=self.user[:100])
            )
            record = conn.execute(select(records).where(records.c.id == review.record_id)).first()
            assert record is not None
            self._event(
                conn, f"review-{status}", record.id, review.candidate_person_id, review_id, review.score
            )
            if link:
                if record.status != "active":
                    raise AdminConflict(
                        f"{record.domain} {record.value} was merged away since the review was opened"
                    )
                if record.person_id == review.candidate_person_id:  # linked by hand meanwhile
                    self._audit(conn, "U", [self._cx(record.domain, record.value)], "empi review linked")
                    return
                self._check_national_ids(conn, record.person_id, review.candidate_person_id)
                self._move(conn, dict(record._mapping), review.candidate_person_id, "review")
            else:
                self._audit(conn, "U", [self._cx(record.domain, record.value)], "empi review rejected")

    def link(self, domain: str, value: str, to_domain: str, to_value: str) -> None:
        """The record joins the other record's person."""
        with self.db.begin() as conn:
            record = self._record(conn, domain, value)
            target = self._record(conn, to_domain, to_value)
            if record["person_id"] == target["person_id"]:
                raise AdminConflict(f"{domain} {value} and {to_domain} {to_value} are already one person")
            self._check_national_ids(conn, record["person_id"], target["person_id"])
            self._move(conn, record, target["person_id"], "manual link")

    def merge(self, domain: str, value: str, to_domain: str, to_value: str) -> dict[str, Any]:
        """Every active record of the person of ``domain``/``value`` joins the person of
        ``to_domain``/``to_value``, which takes over its national ID if it has none; the first
        person is merged into the second. Returns the surviving person, the merged one, and the
        (domain, value) of each record moved."""
        now = dt.datetime.now(dt.UTC)
        with self.db.begin() as conn:
            record = self._record(conn, domain, value)
            target = self._record(conn, to_domain, to_value)
            old, survivor = record["person_id"], target["person_id"]
            if old == survivor:
                raise AdminConflict(f"{domain} {value} and {to_domain} {to_value} are already one person")
            self._check_national_ids(conn, old, survivor)
            moving = conn.execute(
                select(records.c.id, records.c.domain, records.c.value)
                .where(records.c.person_id == old, records.c.status == "active")
                .order_by(records.c.domain, records.c.value)
            ).all()
            conn.execute(
                update(records)
                .where(records.c.person_id == old, records.c.status == "active")
                .values(person_id=survivor, updated_at=now)
            )
            for row in moving:
                self._event(conn, "unlink", row.id, old, survivor, None, "manual merge")
                self._event(conn, "link", row.id, survivor, old, None, "manual merge")
            self._event(conn, "merge", None, survivor, old, None, "manual merge")
            self._person_merged(conn, old, survivor, now)
            moved = [(r.domain, r.value) for r in moving]
            self._changed(conn, {old, survivor}, [self._cx(d, v) for d, v in [*moved, (to_domain, to_value)]])
        return {"person_id": survivor, "merged_person_id": old, "moved": moved}

    def unlink(self, domain: str, value: str) -> int:
        """The record leaves its person for a new one of its own; returns the new person's id."""
        now = dt.datetime.now(dt.UTC)
        with self.db.begin() as conn:
            record = self._record(conn, domain, value)
            alone = conn.execute(
                select(records.c.id).where(
                    records.c.person_id == record["person_id"],
                    records.c.status == "active",
                    records.c.id != record["id"],
                )
            ).first()
            if alone is None:
                raise AdminConflict(f"{domain} {value} is the only record of its person")
            person_id = insert_person(conn, self.ids.next(), None, now)
            self._move(conn, record, person_id, "manual unlink")
            return person_id

    def restore(self, domain: str, value: str) -> int:
        """Undo an A40 for one identifier: the subsumed record is active again, as a person of its own."""
        now = dt.datetime.now(dt.UTC)
        with self.db.begin() as conn:
            record = self._record(conn, domain, value, active=False)
            if record["status"] != "merged":
                raise AdminConflict(f"{domain} {value} was not merged away")
            person_id = insert_person(conn, self.ids.next(), None, now)
            conn.execute(
                update(records)
                .where(records.c.id == record["id"])
                .values(status="active", merged_into=None, person_id=person_id, updated_at=now)
            )
            self._event(conn, "unmerge", record["id"], person_id, record["merged_into"], None)
            self._changed(conn, {person_id}, [self._cx(domain, value)])
            return person_id

    # -- helpers ----------------------------------------------------------------------------------
    def _record(self, conn: Connection, domain: str, value: str, *, active: bool = True) -> dict[str, Any]:
        if domain not in self.domains.config_domains:
            raise AdminError(f"unknown domain {domain!r} (known: {', '.join(self.domains.config_domains)})")
        row = conn.execute(
            select(records).where(records.c.domain == domain, records.c.value == value)
        ).first()
        if row is None or (active and row.status != "active"):
            raise AdminNotFound(f"no {'active ' if active else ''}record {value} in domain {domain}")
        return dict(row._mapping)

    def _check_national_ids(self, conn: Connection, a: int, b: int) -> None:
        found = conn.execute(
            select(persons.c.id, persons.c.national_id).where(persons.c.id.in_([a, b]))
        ).all()
        numbers = {r.national_id for r in found if r.national_id}
        if len(numbers) > 1:
            raise AdminConflict(
                f"the two persons carry different valid national IDs ({', '.join(sorted(numbers))})"
            )

    def _move(self, conn: Connection, record: dict[str, Any], person_id: int, why: str) -> None:
        now = dt.datetime.now(dt.UTC)
        old = record["person_id"]
        conn.execute(
            update(records).where(records.c.id == record["id"]).values(person_id=person_id, updated_at=now)
        )
        self._event(conn, "unlink", record["id"], old, person_id, None, why)
        self._event(conn, "link", record["id"], person_id, old, None, why)
        left = conn.execute(
            select(records.c.id).where(records.c.person_id == old, records.c.status == "active")
        ).first()
        if left is None:  # nothing left: the person is merged into where its record went
            self._person_merged(conn, old, person_id, now)
        self._changed(conn, {old, person_id}, [self._cx(record["domain"], record["value"])])

    def _person_merged(self, conn: Connection, old: int, survivor: int, now: dt.datetime) -> None:
        """``old`` has no active record left: merged into ``survivor``, which takes over its
        national ID if it has none, and what other actors keep per person."""
        old_person = conn.execute(select(persons.c.national_id).where(persons.c.id == old)).first()
        conn.execute(
            update(persons)
            .where(persons.c.id == old)
            .values(status="merged", merged_into=survivor, national_id=None, updated_at=now)
        )
        if old_person is not None and old_person.national_id:
            conn.execute(
                update(persons)
                .where(persons.c.id == survivor, persons.c.national_id.is_(None))
                .values(national_id=old_person.national_id, updated_at=now)
            )
        for listener in self.merge_listeners:
            listener(conn, old, survivor)

    def _changed(self, conn: Connection, person_ids: set[int], patients: list[str]) -> None:
        now = dt.datetime.now(dt.UTC)
        rows = [
            {"id": self.ids.next(), "channel_id": c, "person_id": p, "created_at": now, "claimed_by": None}
            for c in self.notify_channels
            for p in sorted(person_ids)
        ]
        if rows:
            conn.execute(notifications.insert(), rows)
        self._audit(conn, "U", patients, "empi change")

    def _event(
        self,
        conn: Connection,
        kind: str,
        record_id: int | None,
        person_id: int | None,
        other: int | None,
        score: float | None,
        why: str | None = None,
    ) -> None:
        conn.execute(
            events.insert().values(
                id=self.ids.next(),
                at=dt.datetime.now(dt.UTC),
                kind=kind,
                record_id=record_id,
                person_id=person_id,
                other_id=other,
                score=score,
                detail=json.dumps({"why": why}) if why else None,
                message_id=None,
                actor=self.user[:100],
            )
        )

    def _event_of(self, action: str, patients: list[str], what: str) -> audit.AuditEvent:
        return audit.AuditEvent(
            event_id=audit.PATIENT_RECORD,
            action=action,
            outcome=audit.Outcome.SUCCESS,
            event_time=dt.datetime.now(dt.UTC),
            event_type=f"empi^{what}",
            participants=[audit.participant(self.user, requestor=True, network=self.network)],
            objects=[{"type": 1, "role": 1, "id_type": "2", "id": p} for p in patients],
            user_id=self.user,
        )

    def _audit(self, conn: Connection, action: str, patients: list[str], what: str) -> None:
        event = self._event_of(action, patients, what)
        conn.execute(audit_events.insert().values(**event.row(self.ids.next())))

    def _cx(self, domain: str, value: str) -> str:
        return f"{value}^^^{self.domains.namespace(domain)}&{self.domains.oid(domain)}&ISO"
