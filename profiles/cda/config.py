"""The ``cda:`` section of ``config.yaml``: how strictly uploaded documents are checked::

cda:
  rules_dir: cda-rules              # optional: the platform's own rule files, read after the shipped ones
  severities:                       # optional: a rule's severity changed, or turned off
    idcard.invalid: error           # reject a bad ID-card check character (default: warning)
    schema.document: warning        # the per-document schemas only warn
    header.language: off
  max_document_bytes: 20971520      # a larger document is refused (xml.too-large)
  oid_roots: ["2.16.156.", "2.16.840.1.113883.", "1.2.156.", "1.3.6.1.4.1."]
  # upload statistics (hie report uploads): what hospitals must upload, and when the day is rolled up
  required: [C0002, C0049, C0053]   # the document types every institution must upload
  institutions:
    - code: 12320100MB1234567X
      name: 某市第一人民医院
      declared: [C0002, C0006, C0007, C0049, C0053]
      # its patient id in documents, by root in order of preference (病案号, 健康档案号, 住院号,
      # 门诊号): a document of a patient the EMPI does not know registers the patient
      patient_id_roots: [2.16.156.10011.1.13, 2.16.156.10011.1.2, 2.16.156.10011.1.12, 2.16.156.10011.1.11]
  timezone: Asia/Shanghai           # the day an upload counts for
  rollup_at: "00:30"                # the daily roll-up of the day before (local time)
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from profiles.cda.checks import DEFAULT_ROOTS

__all__ = ["CdaConfig", "Institution"]

_CODE = re.compile(r"^C\d{4}$")
_OID = re.compile(r"^[0-2](\.(0|[1-9][0-9]*))+$")


class Institution(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: str = Field(min_length=1, description="组织机构代码 (the custodian id under 2.16.156.10011.1.5)")
    name: str = Field("", description="for the report")
    declared: list[str] = Field(default_factory=list, description="the document types it undertook to upload")
    patient_id_roots: list[str] = Field(
        default_factory=list,
        description="which of a document's patientRole ids is its patient id, by root, in order of "
        "preference (2.16.156.10011.1.13 病案号, .1.2 健康档案号...): with them, a document of a "
        "patient the EMPI does not know registers the patient, under the first it carries",
    )

    @field_validator("patient_id_roots")
    @classmethod
    def _oids(cls, roots: list[str]) -> list[str]:
        wrong = [r for r in roots if not _OID.match(r)]
        if wrong:
            raise ValueError(f"not OIDs: {', '.join(wrong)}")
        return roots

    @field_validator("declared")
    @classmethod
    def _codes(cls, codes: list[str]) -> list[str]:
        return _document_codes(codes)


def _document_codes(codes: list[str]) -> list[str]:
    wrong = [c for c in codes if not _CODE.match(c)]
    if wrong:
        raise ValueError(f"document types are C0001-C0053, not {', '.join(wrong)}")
    return codes


class CdaConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules_dir: Path | None = Field(
        None, description="a folder of rule files read after the shipped ones (relative to config.yaml)"
    )
    severities: dict[str, Literal["error", "warning", "off"]] = Field(
        default_factory=dict, description="rule id -> error | warning | off"
    )
    max_document_bytes: int = Field(20 * 1024 * 1024, ge=1024, description="larger documents are refused")
    oid_roots: list[str] = Field(list(DEFAULT_ROOTS), description="the OID roots codes and ids may use")
    required: list[str] = Field(
        default_factory=list, description="document types every institution must upload"
    )
    institutions: list[Institution] = Field(default_factory=list, description="the uploading institutions")
    timezone: str = Field("Asia/Shanghai", description="the time zone of the days uploads are counted in")
    rollup_at: str = Field("00:30", pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", description="HH:MM, local")

    @field_validator("required")
    @classmethod
    def _required(cls, codes: list[str]) -> list[str]:
        return _document_codes(codes)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {name!r} (an IANA name such as Asia/Shanghai)") from None
        return name

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)
