"""Identity domains by any name a message gives them: namespace (HD-1), OID (HD-2), or both.

ITI TF-2 §3.8.4.1.2 and §3.9.4.1.2: a PIX Manager accepts every valid HD combination (namespace
only, universal id only, both); when both are sent they must denote the same domain. The national
ID-card domain is the enterprise key: it resolves to ``NATIONAL`` rather than to a fed domain.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from engine.errors import MessageError
from ihe._hl7v2 import Hd
from ihe.iti9 import QualifiedId
from profiles.empi.config import Domain, EmpiConfig, SourceRef

__all__ = ["NATIONAL", "V3_PATIENT_ID", "DomainConflict", "Domains", "authority_text"]

NATIONAL = "national-id"  # the id under which the enterprise key's identifiers are cross-referenced
# The root of a hospital's own patient id in the national V3 services (本地系统的患者ID): shared by
# every hospital, which is told apart by its 组织机构代码 as the namespace (china-hie.md §3).
V3_PATIENT_ID = "2.16.156.10011.2.5.1.4"


class DomainConflict(ValueError):
    """The namespace and the OID of one HD name two different domains."""


@dataclass(frozen=True)
class _Known:
    id: str
    namespace: str
    oid: str
    type: str


class Domains:
    def __init__(self, config: EmpiConfig) -> None:
        self.national = _Known(NATIONAL, config.national_id_namespace, config.national_id_oid, "NI")
        self.by_id: dict[str, _Known] = {NATIONAL: self.national}
        self.sources: dict[str, list[SourceRef]] = {}
        for d in config.domains:
            self.by_id[d.id] = _Known(d.id, d.namespace, d.oid, d.type)
            self.sources[d.id] = list(d.sources)
        self._by_namespace = {k.namespace: k for k in self.by_id.values()}
        self._by_oid = {k.oid: k for k in self.by_id.values()}
        self._by_institution = {d.institution: d.id for d in config.domains if d.institution}
        self.config_domains: dict[str, Domain] = {d.id: d for d in config.domains}

    def resolve(self, namespace: str, oid: str) -> str | None:
        """The domain id an HD names, None when unknown; DomainConflict when its parts disagree.
        A V3 patient id (``2.16.156.10011.2.5.1.4`` with a hospital's 组织机构代码) is the domain
        whose ``institution`` that code is."""
        if oid == V3_PATIENT_ID:
            return self._by_institution.get(namespace)
        by_ns = self._by_namespace.get(namespace) if namespace else None
        by_oid = self._by_oid.get(oid) if oid else None
        if namespace and oid and by_ns is not None and by_oid is not None and by_ns is not by_oid:
            raise DomainConflict(
                f"namespace {namespace!r} is domain {by_ns.id}, but OID {oid} is domain {by_oid.id}"
            )
        if oid and by_oid is None:
            return None  # an OID we do not know: the namespace alone must not make it known
        found = by_oid or by_ns
        return found.id if found is not None else None

    def fed_by(self, application: str, facility: str) -> list[str]:
        """The domains this Patient Identity Source (MSH-3, MSH-4) may feed."""
        return [d for d, refs in self.sources.items() if any(r.matches(application, facility) for r in refs)]

    def returned(
        self, requested: Iterable[tuple[int, Hd]], field: int
    ) -> tuple[set[str] | None, list[MessageError]]:
        """What-domains-returned of a query (ITI-9 QPD-4, ITI-21 QPD-8): the domain ids (None: all),
        and one error per repetition naming a domain we do not know (204 at ``QPD^1^<field>^<rep>``)."""
        wanted: set[str] = set()
        errors: list[MessageError] = []
        given = False
        for rep, hd in requested:
            given = True
            try:
                found = self.resolve(hd.namespace, hd.universal_id)
            except DomainConflict:
                found = None
            if found is None:
                name = authority_text(hd.namespace, hd.universal_id)
                errors.append(
                    MessageError(
                        f"QPD-{field} repetition {rep}: unknown domain {name}",
                        hl7_code="204",
                        location=f"QPD^1^{field}^{rep}",
                    )
                )
            else:
                wanted.add(found)
        return (wanted if given else None), errors

    def qualified(
        self, national_id: str | None, xrefs: Iterable[tuple[str, str]], wanted: set[str] | None = None
    ) -> list[QualifiedId]:
        """A person's identifiers, fully qualified: the national ID first, then each (domain, value)
        in the order given; only those of the ``wanted`` domains (all of them when None)."""
        out: list[QualifiedId] = []
        if national_id and (wanted is None or NATIONAL in wanted):
            out.append(QualifiedId(national_id, self.national.namespace, self.national.oid))
        for domain, value in xrefs:
            if wanted is None or domain in wanted:
                out.append(QualifiedId(value, self.namespace(domain), self.oid(domain)))
        return out

    def namespace(self, domain: str) -> str:
        return self.by_id[domain].namespace

    def oid(self, domain: str) -> str:
        return self.by_id[domain].oid


def authority_text(namespace: str | None, oid: str | None) -> str:
    """An assigning authority as a message wrote it, for error texts: ``HOSP_A&1.2.156.1``."""
    return "&".join(x for x in (namespace, oid) if x)
