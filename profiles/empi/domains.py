"""Identity domains by any name a message gives them: namespace (HD-1), OID (HD-2), or both.

ITI TF-2 §3.8.4.1.2 and §3.9.4.1.2: a PIX Manager accepts every valid HD combination (namespace
only, universal id only, both); when both are sent they must denote the same domain. The national
ID-card domain is the enterprise key: it resolves to ``NATIONAL`` rather than to a fed domain.
"""

from __future__ import annotations

from dataclasses import dataclass

from profiles.empi.config import Domain, EmpiConfig, SourceRef

__all__ = ["NATIONAL", "DomainConflict", "Domains"]

NATIONAL = "national-id"  # the id under which the enterprise key's identifiers are cross-referenced


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
        self.config_domains: dict[str, Domain] = {d.id: d for d in config.domains}

    def resolve(self, namespace: str, oid: str) -> str | None:
        """The domain id an HD names, None when unknown; DomainConflict when its parts disagree."""
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

    def namespace(self, domain: str) -> str:
        return self.by_id[domain].namespace

    def oid(self, domain: str) -> str:
        return self.by_id[domain].oid
