"""The ``cda:`` section of ``config.yaml``: how strictly uploaded documents are checked::

cda:
  rules_dir: cda-rules              # optional: the platform's own rule files, read after the shipped ones
  severities:                       # optional: a rule's severity changed, or turned off
    idcard.invalid: error           # reject a bad ID-card check character (default: warning)
    schema.document: warning        # the per-document schemas only warn
    header.language: off
  max_document_bytes: 20971520      # a larger document is refused (xml.too-large)
  oid_roots: ["2.16.156.", "2.16.840.1.113883.", "1.2.156.", "1.3.6.1.4.1."]
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from profiles.cda.checks import DEFAULT_ROOTS

__all__ = ["CdaConfig"]


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
