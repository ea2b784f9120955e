"""The XDS affinity domain's patient ids, resolved through the EMPI (ITI TF-3 §4.2.3.2.16, xds.md §4).

XDS metadata names a patient as ``ID^^^&OID&ISO`` (CX with components 1 and 4 only). The OID must be
an identity domain the EMPI knows (the platform's: usually the national ID-card domain
``2.16.156.10011.1.3``, or any configured hospital domain); the id must be an active identifier of
it. A subsumed (merged-away) identifier is unknown, as ITI-8 A40 made it: the registry answers
XDSUnknownPatientId, and entries follow the surviving person (``documents.person_id``).
"""

from __future__ import annotations

from sqlalchemy import Connection

from engine.mapping import gb11643
from ihe._ebxml import PATIENT_CX
from profiles.empi.domains import NATIONAL, Domains
from profiles.empi.index import EmpiIndex

__all__ = ["AffinityPatients"]


class AffinityPatients:
    def __init__(self, domains: Domains, index: EmpiIndex) -> None:
        self.domains = domains
        self.index = index

    def person_of(self, conn: Connection, patient_id: str) -> int | None:
        """The EMPI person of an affinity-domain patient id; None when the EMPI does not know it."""
        m = PATIENT_CX.match(patient_id)
        if m is None:
            return None
        domain = self.domains.resolve("", m["oid"])
        if domain is None:
            return None
        if domain == NATIONAL:
            person = self.index.person_by_national_id(conn, gb11643.normalise(m["id"]))
            return int(person.id) if person is not None else None
        record = self.index.record(conn, domain, m["id"])
        return int(record.person_id) if record is not None and record.status == "active" else None
