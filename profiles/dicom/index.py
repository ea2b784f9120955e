"""The archive's index: an instance received becomes rows of study, series and instance, and its
patient is reconciled with the EMPI.

Reconciliation (the PACS's Patient ID (0010,0020) and Issuer of Patient ID (0010,0021) to the
platform's person): the issuer, or its Universal Entity ID (0010,0024) when the PACS sends the
qualifiers, names an EMPI identity domain by namespace or OID; a dataset without either is in the
sending peer's own domain (``dicom.peers[].domain``). An id the EMPI knows gives the study its
``person_id``. One it does not know leaves the study ``unknown``: kept, answered Success, and
listed for review (``hie dicom unreconciled``) until the EMPI learns the patient and
``reconcile`` (run by ``hie dicom reconcile`` and every few minutes by the engine) finds him.

Writes run on the store's writer thread, in the transaction that stores the C-STORE message. Study
and series rows are created with an insert that ignores a row another process made first
(PostgreSQL, several workers), then updated, so concurrent associations of one study never fail
on its key.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Table, bindparam, select, update
from sqlalchemy.dialects import postgresql, sqlite

from engine.mapping import gb11643
from profiles.dicom.archive import InstanceInfo
from profiles.dicom.schema import instances, series, studies
from profiles.empi.domains import NATIONAL, DomainConflict, Domains
from profiles.empi.index import EmpiIndex

__all__ = ["Indexed", "PatientResolver", "follow_merge", "index_instance", "reconcile"]

KNOWN, UNKNOWN = "known", "unknown"


@dataclass(frozen=True)
class Indexed:
    new: bool  # False: the instance was in the archive already (sent again): replaced
    patient_status: str  # known | unknown
    person_id: int | None
    domain: str | None


class PatientResolver:
    """(Patient ID, issuer) of a dataset -> (domain, EMPI person)."""

    def __init__(self, domains: Domains, index: EmpiIndex, peer_domain: Callable[[str], str | None]) -> None:
        self.domains = domains
        self.index = index
        self.peer_domain = peer_domain

    def domain(self, issuer: str, issuer_oid: str, source_ae: str) -> str | None:
        if not issuer and not issuer_oid:
            return self.peer_domain(source_ae)
        try:
            return self.domains.resolve(issuer, issuer_oid)
        except DomainConflict:
            return None

    def person(self, conn: Connection, domain: str | None, patient_id: str) -> int | None:
        if domain is None or not patient_id:
            return None
        if domain == NATIONAL:
            found = self.index.person_by_national_id(conn, gb11643.normalise(patient_id))
            return int(found.id) if found is not None else None
        record = self.index.record(conn, domain, patient_id)
        if record is None or record.status != "active":
            return None
        return int(record.person_id)


# Statements built once: an instance is indexed with six or seven of them, and building a
# statement (``.values(...)``, ``.where(...)``) costs SQLAlchemy more than running it.
_STUDY = select(studies.c.patient_status, studies.c.person_id, studies.c.domain).where(
    studies.c.study_uid == bindparam("b_study")
)
_INSTANCE = select(instances.c.sop_instance_uid).where(instances.c.sop_instance_uid == bindparam("b_sop"))
_ADD_INSTANCE = instances.insert()
_REPLACE_INSTANCE = update(instances).where(instances.c.sop_instance_uid == bindparam("b_sop"))
_COUNT_IN_SERIES = (
    update(series)
    .where(series.c.series_uid == bindparam("b_series"))
    .values(instances=series.c.instances + 1)
)
_IGNORING: dict[tuple[str, str], Any] = {}
_STUDY_UPDATES: dict[tuple[bool, bool], Any] = {}


def _insert_ignoring_existing(conn: Connection, table: Table, row: dict[str, Any]) -> None:
    key = (conn.dialect.name, table.name)
    statement = _IGNORING.get(key)
    if statement is None:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        statement = _IGNORING[key] = dialect.insert(table).on_conflict_do_nothing()
    conn.execute(statement, row)


def _study_update(counted: bool, patient: bool) -> Any:
    """UPDATE studies: last received, and the count of instances (a new one) and its patient (when
    it was not known)."""
    statement = _STUDY_UPDATES.get((counted, patient))
    if statement is None:
        values: dict[str, Any] = {"last_received_at": bindparam("b_now")}
        if counted:
            values["instances"] = studies.c.instances + 1
        if patient:
            values |= {
                "domain": bindparam("b_domain"),
                "person_id": bindparam("b_person"),
                "patient_status": bindparam("b_status"),
            }
        statement = update(studies).where(studies.c.study_uid == bindparam("b_study")).values(**values)
        _STUDY_UPDATES[(counted, patient)] = statement
    return statement


def index_instance(
    conn: Connection,
    info: InstanceInfo,
    *,
    path: str,
    size: int,
    message_id: int | None,
    source_ae: str,
    resolver: PatientResolver,
    now: dt.datetime,
) -> Indexed:
    study = conn.execute(_STUDY, {"b_study": info.study_uid}).first()
    if study is None or study.patient_status != KNOWN:
        domain = resolver.domain(info.issuer, info.issuer_oid, source_ae)
        person = resolver.person(conn, domain, info.patient_id)
    else:
        domain, person = study.domain, study.person_id
    status = KNOWN if person is not None else UNKNOWN
    if study is None:
        _insert_ignoring_existing(
            conn,
            studies,
            {
                "study_uid": info.study_uid,
                "patient_id": info.patient_id,
                "issuer": info.issuer or info.issuer_oid,
                "domain": domain,
                "person_id": person,
                "patient_status": status,
                "patient_name": info.patient_name,
                "birth_date": info.birth_date,
                "sex": info.sex,
                "study_date": info.study_date,
                "study_time": info.study_time,
                "accession_number": info.accession_number,
                "study_id": info.study_id,
                "description": info.study_description,
                "referring_physician": info.referring_physician,
                "source_ae": source_ae,
                "instances": 0,
                "first_received_at": now,
                "last_received_at": now,
                "published_at": None,
                "manifest_uid": None,
            },
        )
    _insert_ignoring_existing(
        conn,
        series,
        {
            "series_uid": info.series_uid,
            "study_uid": info.study_uid,
            "modality": info.modality,
            "series_number": info.series_number,
            "description": info.series_description,
            "body_part": info.body_part,
            "instances": 0,
        },
    )
    row = {
        "series_uid": info.series_uid,
        "study_uid": info.study_uid,
        "sop_class_uid": info.sop_class_uid,
        "transfer_syntax": info.transfer_syntax,
        "instance_number": info.instance_number,
        "path": path,
        "size": size,
        "message_id": message_id,
        "source_ae": source_ae,
        "received_at": now,
    }
    existing = conn.execute(_INSTANCE, {"b_sop": info.sop_instance_uid}).first()
    if existing is None:
        conn.execute(_ADD_INSTANCE, {"sop_instance_uid": info.sop_instance_uid, **row})
        conn.execute(_COUNT_IN_SERIES, {"b_series": info.series_uid})
    else:
        conn.execute(_REPLACE_INSTANCE, {"b_sop": info.sop_instance_uid, **row})
    patient = study is None or study.patient_status != KNOWN
    params: dict[str, Any] = {"b_study": info.study_uid, "b_now": now}
    if patient:
        params |= {"b_domain": domain, "b_person": person, "b_status": status}
    conn.execute(_study_update(existing is None, patient), params)
    return Indexed(new=existing is None, patient_status=status, person_id=person, domain=domain)


def reconcile(conn: Connection, resolver: PatientResolver) -> list[tuple[str, int]]:
    """Studies whose patient the EMPI did not know, looked up again: (study, person) found now."""
    found: list[tuple[str, int]] = []
    rows = conn.execute(
        select(studies.c.study_uid, studies.c.patient_id, studies.c.issuer, studies.c.source_ae).where(
            studies.c.patient_status == UNKNOWN
        )
    ).all()
    for row in rows:
        oid = row.issuer if row.issuer and row.issuer[0].isdigit() and "." in row.issuer else ""
        domain = resolver.domain("" if oid else row.issuer, oid, row.source_ae)
        person = resolver.person(conn, domain, row.patient_id)
        if person is None:
            continue
        conn.execute(
            update(studies)
            .where(studies.c.study_uid == row.study_uid)
            .values(domain=domain, person_id=person, patient_status=KNOWN)
        )
        found.append((row.study_uid, person))
    return found


def follow_merge(conn: Connection, merged: int, survivor: int) -> None:
    """ITI-8 A40 merged two persons: their studies are the survivor's from now on."""
    conn.execute(update(studies).where(studies.c.person_id == merged).values(person_id=survivor))
