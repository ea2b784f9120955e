"""What a data steward does to the index by hand: review uncertain matches, link, unlink, restore.

Each operation is one transaction that also writes its history (``empi_events``, the steward as
actor), the ITI-10 outbox rows of every notification channel for the persons whose
cross-references changed, and an ATNA record (110110 Patient Record, action U, the steward as
requestor). Reading a person (``show``) is audited as well (action R): it is PHI access.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, select, update

from engine import audit
from engine.ids import IdGenerator
from engine.store.schema import audit_events
from profiles.empi.domains import Domains
from profiles.empi.index import insert_person
from profiles.empi.schema import events, notifications, persons, records, reviews

__all__ = ["AdminError", "EmpiAdmin", "PersonView"]


class AdminError(ValueError):
    """An operation that cannot be done as asked (unknown record, closed review...)."""


@dataclass
class PersonView:
    person: dict[str, Any]
    records: list[dict[str, Any]]
    history: list[dict[str, Any]]


class EmpiAdmin:
    def __init__(
        self,
        db: Engine,
        domains: Domains,
        ids: IdGenerator,
        *,
        user: str,
        notify_channels: Iterable[str] = (),
    ) -> None:
        self.db = db
        self.domains = domains
        self.ids = ids
        self.user = user
        self.notify_channels = sorted(notify_channels)

    # -- reading ----------------------------------------------------------------------------------
    def open_reviews(self) -> list[dict[str, Any]]:
        with self.db.connect() as conn:
            rows = conn.execute(
                select(
                    reviews,
                    records.c.domain,
                    records.c.value,
                    records.c.name,
                    records.c.birth_date,
                    records.c.sex,
                )
                .join(records, records.c.id == reviews.c.record_id)
                .where(reviews.c.status == "open")
                .order_by(reviews.c.score.desc(), reviews.c.id)
            )
            out = [dict(r._mapping) for r in rows]
            for review in out:
                review["candidate"] = [
                    dict(r._mapping)
                    for r in conn.execute(
                        select(
                            records.c.domain,
                            records.c.value,
                            records.c.name,
                            records.c.birth_date,
                            records.c.sex,
                        )
                        .where(
                            records.c.person_id == review["candidate_person_id"], records.c.status == "active"
                        )
                        .order_by(records.c.domain, records.c.value)
                    )
                ]
        return out

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
            self._audit(conn, "R", [self._cx(r["domain"], r["value"]) for r in linked], "empi show")
        return PersonView(dict(person._mapping), linked, history)

    # -- changing ---------------------------------------------------------------------------------
    def resolve_review(self, review_id: int, *, link: bool) -> None:
        """Link the review's record to its candidate person, or record that they are different people."""
        now = dt.datetime.now(dt.UTC)
        with self.db.begin() as conn:
            review = conn.execute(select(reviews).where(reviews.c.id == review_id)).first()
            if review is None:
                raise AdminError(f"no review {review_id}")
            if review.status != "open":
                raise AdminError(f"review {review_id} is already {review.status}")
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
                self._move(conn, dict(record._mapping), review.candidate_person_id, "review")

    def link(self, domain: str, value: str, to_domain: str, to_value: str) -> None:
        """The record joins the other record's person."""
        with self.db.begin() as conn:
            record = self._record(conn, domain, value)
            target = self._record(conn, to_domain, to_value)
            if record["person_id"] == target["person_id"]:
                raise AdminError(f"{domain} {value} and {to_domain} {to_value} are already one person")
            self._check_national_ids(conn, record["person_id"], target["person_id"])
            self._move(conn, record, target["person_id"], "manual link")

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
                raise AdminError(f"{domain} {value} is the only record of its person")
            person_id = insert_person(conn, self.ids.next(), None, now)
            self._move(conn, record, person_id, "manual unlink")
            return person_id

    def restore(self, domain: str, value: str) -> int:
        """Undo an A40 for one identifier: the subsumed record is active again, as a person of its own."""
        now = dt.datetime.now(dt.UTC)
        with self.db.begin() as conn:
            record = self._record(conn, domain, value, active=False)
            if record["status"] != "merged":
                raise AdminError(f"{domain} {value} was not merged away")
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
            raise AdminError(f"no {'active ' if active else ''}record {value} in domain {domain}")
        return dict(row._mapping)

    def _check_national_ids(self, conn: Connection, a: int, b: int) -> None:
        found = conn.execute(
            select(persons.c.id, persons.c.national_id).where(persons.c.id.in_([a, b]))
        ).all()
        numbers = {r.national_id for r in found if r.national_id}
        if len(numbers) > 1:
            raise AdminError(
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
            old_person = conn.execute(select(persons.c.national_id).where(persons.c.id == old)).first()
            conn.execute(
                update(persons)
                .where(persons.c.id == old)
                .values(status="merged", merged_into=person_id, national_id=None, updated_at=now)
            )
            if old_person is not None and old_person.national_id:
                conn.execute(
                    update(persons)
                    .where(persons.c.id == person_id, persons.c.national_id.is_(None))
                    .values(national_id=old_person.national_id, updated_at=now)
                )
        self._changed(conn, {old, person_id}, [self._cx(record["domain"], record["value"])])

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

    def _audit(self, conn: Connection, action: str, patients: list[str], what: str) -> None:
        event = audit.AuditEvent(
            event_id=audit.PATIENT_RECORD,
            action=action,
            outcome=audit.Outcome.SUCCESS,
            event_time=dt.datetime.now(dt.UTC),
            event_type=f"empi^{what}",
            participants=[audit.participant(self.user, requestor=True)],
            objects=[{"type": 1, "role": 1, "id_type": "2", "id": p} for p in patients],
            user_id=self.user,
        )
        conn.execute(audit_events.insert().values(**event.row(self.ids.next())))

    def _cx(self, domain: str, value: str) -> str:
        return f"{value}^^^{self.domains.namespace(domain)}&{self.domains.oid(domain)}&ISO"
