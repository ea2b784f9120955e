"""PIX Manager: ITI-8 feeds into the EMPI, ITI-9 queries out of it (ITI TF-1 §5, TF-2 §3.8, §3.9).

The feed arrives as the platform's ``AdtEvent``: a standard IHE feed through the shipped
``ihe-iti8-adt`` mapping, a vendor's dialect through its own mapping, so every HIS version
(v2.3.1-v2.5) is read by the mapping layer and the manager sees one model. The identifiers of
``patient.identifiers`` are PID-3's repetitions in order (ERR-2 names them as ``PID^1^3^<n>``);
an identifier in the national ID-card domain (or ``patient.national_id``) is the enterprise key,
not an identity of a fed domain.

Rules, with the answer each breach gets (pix-pdq.md §2, TF-2 §3.8.4):

* an identifier whose authority is unknown: AE, 204, ``PID^1^3^<n>^4``;
* an identifier without an authority: the domain the sending source feeds, if it feeds exactly
  one (TF-2 §3.8.4.1.2: "filled from the configuration of the sending source"), else AE 101;
* a source feeding a domain that is not its own (one source per domain, §3.8.4.1.1): AE, 204;
* no identifier in a fed domain: AE, 101, ``PID^1^3``;
* a national ID with a wrong check digit: accepted with a warning (ERR-4 ``W``), not used for
  linking; AE 102 when ``empi.id_card_check: reject``; two different national IDs in one
  message: AE 102;
* A40: MRG-1 in another domain than PID-3: AE 204 ``MRG^1^1^1^4``; an unknown MRG-1: AE 204
  ``MRG^1^1^1^1``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, update

from engine.errors import MessageError
from engine.hl7v2.peek import Header
from engine.mapping import gb11643
from ihe import iti8
from ihe.iti9 import PixAnswer, PixQuery, QualifiedId
from profiles.canonical import AdtEvent, Identifier, Patient
from profiles.empi.config import EmpiConfig
from profiles.empi.domains import NATIONAL, DomainConflict, Domains, authority_text
from profiles.empi.index import EmpiIndex, FeedRecord, record_columns
from profiles.empi.schema import notifications, persons, records

__all__ = ["FeedAnswer", "PixManager", "PreparedFeed"]

log = logging.getLogger(__name__)


@dataclass
class FeedAnswer:
    warnings: list[str] = field(default_factory=list)
    changed_persons: set[int] = field(default_factory=set)
    # (CX of the identity, audit action: C created, U updated, D merged away), for ATNA
    identities: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class PreparedFeed:
    """A checked feed (``PixManager.prepare``), ready to be applied (``PixManager.feed_in``)."""

    identities: list[_Local]  # PID-3's identities in fed domains, in order
    subsumed: _Local | None  # an A40's MRG-1
    patient: Patient
    national: str | None
    valid: bool  # the national ID passed its check digit
    columns: dict[str, Any]  # the searchable columns of each record (``record_columns``)
    actor: str  # MSH-3^MSH-4
    warnings: list[str]


@dataclass(frozen=True)
class _Local:
    repetition: int
    domain: str
    value: str


class PixManager:
    def __init__(self, db: Engine, config: EmpiConfig, index: EmpiIndex) -> None:
        self.db = db
        self.config = config
        self.domains = Domains(config)
        self.index = index
        # ITI-10: notification channel -> how to wake its source (called on the event loop)
        self.subscribers: dict[str, Callable[[], None]] = {}

    def subscribe(self, channel_id: str, wake: Callable[[], None]) -> None:
        """A pix-iti10 channel: every change of cross-references gets an outbox row for it."""
        self.subscribers[channel_id] = wake

    def wake_subscribers(self) -> None:
        for wake in self.subscribers.values():
            wake()

    # -- ITI-8 ------------------------------------------------------------------------------------
    def prepare(self, event: AdtEvent, header: Header) -> PreparedFeed:
        """Everything about a feed that needs no database: its checks (raising MessageError, the
        ACK's AE/AR), its identities and their searchable columns. Done on the event loop, so that
        the store's single writer does only what must be serial."""
        trigger = iti8.check_event(header)
        warnings: list[str] = []
        locals_, national = self._identities(event, header)
        valid = national is not None and gb11643.is_valid(national)
        if national is not None and not valid:
            problem = gb11643.check_id_card(national, None, None)
            text = f"national ID {national}: {'; '.join(problem)}"
            if self.config.id_card_check == "reject":
                raise MessageError(text, hl7_code="102", location="PID^1^19")
            warnings.append(f"{text}; kept, not used for linking")
        subsumed = self._subsumed(event, locals_[0]) if trigger == iti8.MERGE else None
        return PreparedFeed(
            locals_,
            subsumed,
            event.patient,
            national,
            valid,
            record_columns(event.patient, national, valid),
            f"{header.sending_application}^{header.sending_facility}",
            warnings,
        )

    def feed_in(self, conn: Connection, feed: PreparedFeed, message_id: int | None) -> FeedAnswer:
        """Apply one prepared feed in the caller's transaction (the one storing its message, on the
        store's writer). A refused feed (MessageError, e.g. an A40's unknown MRG-1) is refused
        before anything is written.

        The caller runs it in a savepoint, done once more if it raced (``savepoint_retrying``):
        several engine processes share one PostgreSQL, and two of them may feed the same new person
        at once; the second INSERT of its national ID waits for the first transaction, fails on the
        unique key, and the feed run again finds what the other process committed.
        """
        answer = FeedAnswer(warnings=list(feed.warnings))
        locals_, subsumed = feed.identities, feed.subsumed
        subsumed_row = None
        if subsumed is not None:  # checked before anything is written
            subsumed_row = self.index.record(conn, locals_[0].domain, subsumed.value)
            if subsumed_row is None or subsumed_row.status != "active":
                raise MessageError(
                    f"A40: MRG-1 {subsumed.value} is not a known identifier of domain {locals_[0].domain}",
                    hl7_code="204",
                    location=iti8.merge_location(1),
                )
        person: int | None = None
        for i, local in enumerate(locals_):
            record = FeedRecord(
                local.domain,
                local.value,
                feed.patient,
                feed.national,
                feed.valid,
                message_id,
                feed.actor,
                feed.columns,
            )
            if i == 0 and subsumed is not None and subsumed_row is not None:
                result = self.index.merge(conn, subsumed_row, record)
                answer.identities.append((self.cx(local.domain, subsumed.value), "D"))
            else:
                result = self.index.feed(conn, record)
                if person is not None and result.linked_by == "new" and result.person_id != person:
                    self._same_person(conn, result.record_id, result.person_id, person)
                    result.changed_persons.add(person)
            person = person if person is not None else result.person_id
            answer.changed_persons |= result.changed_persons
            answer.identities.append((self.cx(local.domain, local.value), "C" if result.created else "U"))
        self._outbox(conn, answer.changed_persons)
        return answer

    def _outbox(self, conn: Connection, changed: set[int]) -> None:
        """ITI-10: one outbox row per notification channel and changed person, in the feed's transaction."""
        if not changed or not self.subscribers:
            return
        now = dt.datetime.now(dt.UTC)
        rows = [
            {
                "id": self.index.next_id(),
                "channel_id": c,
                "person_id": p,
                "created_at": now,
                "claimed_by": None,
            }
            for c in sorted(self.subscribers)
            for p in sorted(changed)
        ]
        conn.execute(notifications.insert(), rows)

    def cx(self, domain: str, value: str) -> str:
        """An identifier written as HL7 CX with its fully qualified authority (audit records)."""
        return QualifiedId(value, self.domains.namespace(domain), self.domains.oid(domain)).cx

    def _identities(self, event: AdtEvent, header: Header) -> tuple[list[_Local], str | None]:
        own = self.domains.fed_by(header.sending_application, header.sending_facility)
        source = f"{header.sending_application}^{header.sending_facility}"
        locals_: list[_Local] = []
        nationals: list[str] = []
        for n, ident in enumerate(event.patient.identifiers, 1):
            domain = self._domain_of(ident, n, own, source)
            if domain == NATIONAL:
                nationals.append(gb11643.normalise(ident.value))
                continue
            if domain not in own:
                raise MessageError(
                    f"{source} is not the identity source of domain {domain} "
                    f"({self.domains.namespace(domain)}); it feeds {', '.join(own) or 'no domain'}",
                    hl7_code="204",
                    location=iti8.identifier_location(n),
                )
            if len(ident.value) > 100:
                raise MessageError(
                    f"PID-3 repetition {n}: the identifier is {len(ident.value)} characters, more than 100",
                    hl7_code="102",
                    location=iti8.identifier_location(n, 1),
                )
            locals_.append(_Local(n, domain, ident.value))
        if event.patient.national_id:
            nationals.append(gb11643.normalise(event.patient.national_id))
        if len(set(nationals)) > 1:
            raise MessageError(
                f"two different national IDs in one message: {', '.join(sorted(set(nationals)))}",
                hl7_code="102",
                location="PID^1^19",
            )
        if not locals_:
            raise MessageError(
                f"PID-3 has no identifier in a domain {source} feeds ({', '.join(own) or 'none configured'})",
                hl7_code="101",
                location="PID^1^3",
            )
        return locals_, (nationals[0] if nationals else None)

    def _domain_of(self, ident: Identifier, n: int, own: list[str], source: str) -> str:
        if ident.system or ident.namespace:
            try:
                domain = self.domains.resolve(ident.namespace or "", ident.system or "")
            except DomainConflict as exc:
                raise MessageError(str(exc), hl7_code="204", location=iti8.identifier_location(n)) from None
            if domain is None:
                name = authority_text(ident.namespace, ident.system)
                raise MessageError(
                    f"PID-3 repetition {n}: unknown assigning authority {name}",
                    hl7_code="204",
                    location=iti8.identifier_location(n),
                )
            return domain
        if ident.type == "NI":
            return NATIONAL
        if len(own) == 1:
            return own[0]
        raise MessageError(
            f"PID-3 repetition {n} has no assigning authority, and {source} feeds "
            f"{len(own)} domains: name one in PID-3.4",
            hl7_code="101",
            location=iti8.identifier_location(n),
        )

    def _subsumed(self, event: AdtEvent, survivor: _Local) -> _Local:
        """MRG-1 of an A40, in the survivor's domain (TF-2 §3.8.4.2: merges stay within a domain)."""
        if not event.prior_identifiers:
            raise MessageError(
                "A40 without MRG-1 (the identifier to merge)", hl7_code="101", location="MRG^1^1"
            )
        prior = event.prior_identifiers[0]
        if prior.system or prior.namespace:
            try:
                domain = self.domains.resolve(prior.namespace or "", prior.system or "")
            except DomainConflict as exc:
                raise MessageError(str(exc), hl7_code="204", location=iti8.merge_location(4)) from None
        else:
            domain = survivor.domain
        if domain != survivor.domain:
            raise MessageError(
                f"A40: MRG-1 is in domain {domain or 'unknown'}, PID-3 in {survivor.domain}; "
                "a merge stays within one domain",
                hl7_code="204",
                location=iti8.merge_location(4),
            )
        return _Local(1, domain, prior.value)

    def _same_person(self, conn: Connection, record_id: int, current: int, person: int) -> None:
        """A second identifier of the same message belongs to the first one's person."""
        conn.execute(update(records).where(records.c.id == record_id).values(person_id=person))
        conn.execute(
            update(persons).where(persons.c.id == current).values(status="merged", merged_into=person)
        )

    # -- ITI-9 ------------------------------------------------------------------------------------
    def query(self, query: PixQuery) -> PixAnswer:
        """The six cases of TF-2 §3.9.4.2.2.6 (see ``ihe.iti9``)."""
        answer = PixAnswer()
        hd = query.person.authority
        try:
            domain = self.domains.resolve(hd.namespace, hd.universal_id)
        except DomainConflict as exc:
            domain = None
            reason = str(exc)
        else:
            reason = f"unknown assigning authority {authority_text(hd.namespace, hd.universal_id)}"
        if domain is None:  # case 4
            answer.errors.append(MessageError(reason, hl7_code="204", location="QPD^1^3^1^4"))
            return answer
        wanted, answer.errors = self.domains.returned(query.domains, 4)  # case 5
        if answer.errors:
            return answer
        with self.db.connect() as conn:
            identity = self._identity_of(conn, domain, query.person.value)
        if identity is None:  # case 3
            answer.errors.append(
                MessageError(
                    f"identifier {query.person.value} is not known in domain {domain}",
                    hl7_code="204",
                    location="QPD^1^3^1^1",
                )
            )
            return answer
        national, xrefs = identity
        queried = QualifiedId(query.person.value, self.domains.namespace(domain), self.domains.oid(domain))
        answer.identifiers = [  # never the queried-for identifier (case 1)
            i for i in self.domains.qualified(national, xrefs, wanted) if i != queried
        ]
        return answer  # several in one domain come consecutively (case 6): ordered by domain

    def _identity_of(
        self, conn: Connection, domain: str, value: str
    ) -> tuple[str | None, list[tuple[str, str]]] | None:
        if domain == NATIONAL:
            row = self.index.person_by_national_id(conn, gb11643.normalise(value))
            return self.index.identity(conn, row.id) if row is not None else None
        # a subsumed (merged-away) identifier is unknown: case 3 (TF-2 §3.8.4.2)
        return self.index.identity_of_record(conn, domain, value)
