"""FindDocuments and FindDocumentsByReferenceId over the registry tables (ITI TF-2 §3.18.4.1.2.3.7.1,
§3.18.4.1.2.3.7.14).

One SELECT on ``xds_documents`` by patient and status (its index), each other parameter a condition:
single-valued codes as ``IN`` the alternatives; eventCodeList and confidentialityCode, which may be
repeated, one ``EXISTS`` on the code table per repetition (OR within, AND across); times as
``From <= t < To`` on the 14-digit padded DTM (an entry without the time is left out by that
parameter only when it is a creation time: service times absent are not filtered,
§3.18.4.1.2.3.6); authors as LIKE on each stored author line; referenceIdList as an ``EXISTS``.

More than ``limit`` entries for a LeafClass answer is XDSTooManyResults (the consumer should ask for
ObjectRefs, then GetDocuments by pages, §3.18.4.1.2.6); ObjectRef answers may be ten times longer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, exists, or_, select

from ihe._ebxml import STABLE
from ihe.iti18 import StoredQuery
from profiles.xds.registry import dtm14
from profiles.xds.schema import document_codes, documents, reference_ids

__all__ = ["Found", "TooManyResults", "author_line", "find_documents", "statuses"]

_DE = "$XDSDocumentEntry"
_SINGLE_CODES = {
    f"{_DE}ClassCode": documents.c.class_code,
    f"{_DE}TypeCode": documents.c.type_code,
    f"{_DE}PracticeSettingCode": documents.c.practice_setting_code,
    f"{_DE}HealthcareFacilityTypeCode": documents.c.facility_type_code,
    f"{_DE}FormatCode": documents.c.format_code,
}
_RANGES = {
    "CreationTime": documents.c.creation_time,
    "ServiceStartTime": documents.c.service_start_time,
    "ServiceStopTime": documents.c.service_stop_time,
}


class TooManyResults(Exception):
    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} DocumentEntries match: ask for ObjectRef, then GetDocuments")
        self.limit = limit


@dataclass(frozen=True)
class Found:
    entry_uuid: str
    metadata: str  # the ExtrinsicObject, for LeafClass
    status: str = "Approved"  # its status now (the stored metadata says the status it was registered with)


def author_line(column: Any, pattern: str) -> Any:
    """The LIKE ``pattern`` matching one whole line of the stored authors (one author per line)."""
    return or_(
        column.like(pattern),
        column.like(f"%\n{pattern}"),
        column.like(f"{pattern}\n%"),
        column.like(f"%\n{pattern}\n%"),
    )


def statuses(query: StoredQuery, parameter: str = f"{_DE}Status") -> list[str]:
    """A status parameter's values as the status columns keep them (``Approved``)."""
    return [v.rsplit(":", 1)[-1] for v in query.values(parameter)]


def find_documents(
    conn: Connection, query: StoredQuery, *, limit: int = 1000, person: int | None = None
) -> list[Found]:
    """``person``: the EMPI's person of the patient id asked about; its entries are found whichever
    of its ids they were registered under, and those of persons merged into it (ITI-8 A40)."""
    d = documents
    conditions: list[Any] = [
        d.c.person_id == person if person is not None else d.c.patient_id == query.value(f"{_DE}PatientId"),
        d.c.status.in_(statuses(query)),
        d.c.object_type.in_(query.values(f"{_DE}Type") or [STABLE]),
    ]
    for name, column in _SINGLE_CODES.items():
        if name in query.params:
            conditions.append(column.in_(query.values(name)))
    for attribute in ("EventCodeList", "ConfidentialityCode"):
        for alternatives in query.params.get(f"{_DE}{attribute}", []):  # each repetition: AND
            conditions.append(
                exists().where(
                    document_codes.c.document_id == d.c.id,
                    document_codes.c.attribute == attribute[0].lower() + attribute[1:],
                    document_codes.c.code.in_(alternatives),
                )
            )
    for name, column in _RANGES.items():
        start, stop = query.value(f"{_DE}{name}From"), query.value(f"{_DE}{name}To")
        if start:
            conditions.append(column >= dtm14(start))
        if stop:
            conditions.append(column < dtm14(stop))
    authors = query.values(f"{_DE}AuthorPerson")
    if authors:
        conditions.append(or_(*(author_line(d.c.author_persons, a) for a in authors)))
    references = query.values(f"{_DE}ReferenceIdList")
    if references:
        conditions.append(
            exists().where(reference_ids.c.document_id == d.c.id, reference_ids.c.value.in_(references))
        )
    cap = limit if query.return_type == "LeafClass" else limit * 10
    rows = conn.execute(
        select(
            d.c.entry_uuid,
            d.c.metadata if query.return_type == "LeafClass" else d.c.entry_uuid.label("m"),
            d.c.status,
        )
        .where(and_(*conditions))
        .order_by(d.c.creation_time.desc(), d.c.id)
        .limit(cap + 1)
    ).all()
    if len(rows) > cap:
        raise TooManyResults(cap)
    return [Found(r[0], r[1] if query.return_type == "LeafClass" else "", r[2]) for r in rows]
