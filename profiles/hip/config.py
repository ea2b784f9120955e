"""The ``hip:`` section of ``config.yaml``: the national interoperability interface (the assessment's
``HIPMessageServer(action, message)`` SOAP service, china-hie.md §2)::

hip:
  actions:                          # action -> service; merged over the defaults below
    PatientInfoAdd: PatientInfoRegister    # a vendor's own word for a service
  device_id: HIE-CITY-PLATFORM      # this platform's system id in acknowledgements (2.16.156.10011.2.5.1.3)
  source_id: 1.2.156.112600.9.3     # the XDS Document Source OID of documents registered from uploads
  message_schema: warning           # the message against its assessment schema: error | warning | off
  max_message_bytes: 67108864

Vendors name the services in three ways, and the platform takes all of them (the defaults): the
numeric codes ``S0001``-``S0084`` of the assessment (a public implementation's table), the 2017-era
names (``PatientRegistryAddRequest``, ``ProvideAndRegisterDocumentSet-b``...) and the WS/T 846 names
(``PatientInfoRegister``, ``DocumentRegister``...).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from profiles.empi.config import Oid

__all__ = ["SERVICES", "HipConfig", "Service"]

Service = Literal[
    "PatientInfoRegister",
    "PatientInfoUpdate",
    "PatientInfoMerge",
    "PatientInfoQuery",
    "DocumentRegister",
    "DocumentAccess",
    "DocumentRetrieve",
]
SERVICES: tuple[str, ...] = Service.__args__  # type: ignore[attr-defined]

# S-codes: 个人信息注册/更新/合并/查询 S0001-S0004, 电子病历文档注册/调阅/检索 S0014-S0016
_DEFAULT_ACTIONS: dict[str, str] = {
    "S0001": "PatientInfoRegister",
    "S0002": "PatientInfoUpdate",
    "S0003": "PatientInfoMerge",
    "S0004": "PatientInfoQuery",
    "S0014": "DocumentRegister",
    "S0015": "DocumentRetrieve",
    "S0016": "DocumentAccess",
    "PatientRegistryAddRequest": "PatientInfoRegister",
    "PatientRegistryReviseRequest": "PatientInfoUpdate",
    "PatientRegistryFindCandidatesQuery": "PatientInfoQuery",
    "ProvideAndRegisterDocumentSet-b": "DocumentRegister",
    "GetDocumentSetRetrieveInfo": "DocumentAccess",
    "RetrieveDocumentSet": "DocumentRetrieve",
    **{s: s for s in SERVICES},
}


class HipConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    actions: dict[str, Service] = Field(
        default_factory=dict, description="action -> service, added to (or replacing) the defaults"
    )
    device_id: str = Field("HIE-CITY-PLATFORM", min_length=1, description="this platform's system id")
    source_id: Oid = Field(
        "1.2.156.112600.9.3", description="XDS sourceId of the submissions made for uploaded documents"
    )
    message_schema: Literal["error", "warning", "off"] = Field(
        "warning", description="checking the service message against its assessment schema"
    )
    max_message_bytes: int = Field(64 * 1024 * 1024, ge=1024, description="larger requests are refused")

    @field_validator("actions")
    @classmethod
    def _trimmed(cls, actions: dict[str, str]) -> dict[str, str]:
        return {k.strip(): v for k, v in actions.items()}

    def service_of(self, action: str) -> str | None:
        """The service an action names (None: an action nobody configured)."""
        action = action.strip()
        return self.actions.get(action) or _DEFAULT_ACTIONS.get(action)
