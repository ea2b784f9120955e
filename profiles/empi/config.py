"""The ``empi:`` section of ``config.yaml``: identity domains, who may feed them, and matching.

Each institution is an identifier domain (an assigning authority: namespace and ISO OID) fed by one
Patient Identity Source (ITI TF-2 §3.8.4.1.1); the national ID-card domain ``2.16.156.10011.1.3``
is the enterprise key: one person per valid GB 11643 number, never fed as a domain of its own
(china-hie.md §7, pix-pdq.md §9)::

    empi:
      id_card_check: warn            # a bad check digit: warn (AA with a warning) or reject (AE)
      domains:
        - id: hospital-a
          namespace: HOSP_A          # CX-4.1 / HD.1
          oid: 1.2.156.112604.1.1    # CX-4.2 / HD.2, type ISO
          sources: [{application: DHC-HIS, facility: HOSP_A}]   # MSH-3 / MSH-4 allowed to feed it
      matching: {auto_link: 0.9, review: 0.7}
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["NATIONAL_ID_OID", "Domain", "EmpiConfig", "Matching", "SourceRef"]

NATIONAL_ID_OID = "2.16.156.10011.1.3"  # 居民身份证号 (WS/T 500 表D.2)
_OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")
Oid = Annotated[str, Field(pattern=_OID.pattern, max_length=64, description="ISO OID, digits and dots")]
Kebab = Annotated[str, Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$", max_length=64)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceRef(_Strict):
    """A Patient Identity Source, as its messages name it: MSH-3 and MSH-4 (namespace part)."""

    application: str = Field(description="MSH-3.1 of the feed")
    facility: str = Field("", description="MSH-4.1 of the feed; empty matches any")

    def matches(self, application: str, facility: str) -> bool:
        return self.application == application and (not self.facility or self.facility == facility)


class Domain(_Strict):
    id: Kebab
    namespace: str = Field(min_length=1, max_length=64, description="HD.1 namespace id (CX-4.1)")
    oid: Oid
    type: str = Field("PI", max_length=5, description="identifier type code (HL7 table 0203)")
    description: str = ""
    sources: list[SourceRef] = Field(
        default_factory=list, description="who may feed this domain (ITI-8); empty: nobody feeds it"
    )
    institution: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        description="the hospital's 组织机构代码 (2.16.156.10011.1.5): the patient ids its V3 messages "
        "carry (root 2.16.156.10011.2.5.1.4, the hospital's code as namespace) are this domain's",
    )


class Matching(_Strict):
    """Probabilistic matching when no valid national ID decides (weights add up to the score's 1.0)."""

    auto_link: float = Field(0.9, gt=0, le=1, description="score from which a record joins a person")
    review: float = Field(0.7, gt=0, le=1, description="score from which a match is queued for review")
    weights: dict[str, float] = Field(
        default_factory=lambda: {
            "name": 0.35,
            "birth_date": 0.25,
            "sex": 0.1,
            "phone": 0.2,
            "address": 0.1,
        },
        description="name, birth_date, sex, phone, address",
    )

    @model_validator(mode="after")
    def _order(self) -> Matching:
        if self.review > self.auto_link:
            raise ValueError("review must not exceed auto_link")
        unknown = set(self.weights) - {"name", "birth_date", "sex", "phone", "address"}
        if unknown:
            raise ValueError(f"unknown weights: {', '.join(sorted(unknown))}")
        return self


class EmpiConfig(_Strict):
    national_id_oid: Oid = Field(NATIONAL_ID_OID, description="the enterprise key's domain")
    national_id_namespace: str = Field("NIC", description="namespace written beside the national OID")
    id_card_check: str = Field("warn", pattern="^(warn|reject)$", description="a bad GB 11643 check digit")
    domains: list[Domain] = Field(default_factory=list)
    matching: Matching = Field(default_factory=Matching)

    @model_validator(mode="after")
    def _unique(self) -> EmpiConfig:
        seen: dict[str, str] = {}
        institutions: dict[str, str] = {}
        ids = [d.id for d in self.domains]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"domain ids must differ: {', '.join(twice)}")
        for d in self.domains:
            for key in (d.id, d.namespace, d.oid):
                if key in seen and seen[key] != d.id:
                    raise ValueError(f"{key!r} names both domain {seen[key]} and domain {d.id}")
                seen[key] = d.id
            if d.institution:
                other = institutions.get(d.institution)
                if other is not None:
                    raise ValueError(
                        f"institution {d.institution!r} is both domain {other} and domain {d.id}"
                    )
                institutions[d.institution] = d.id
            if d.oid == self.national_id_oid:
                raise ValueError(
                    f"domain {d.id}: {d.oid} is the national ID-card domain, the enterprise key; "
                    "it is not configured as a domain"
                )
        return self
