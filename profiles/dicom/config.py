"""The ``dicom:`` section of ``config.yaml``: the regional archive's AE, its folder and its peers.

Hospital PACS systems are *peers*: the AE titles allowed to store, query and retrieve, the address
each is reached at for C-MOVE, and the EMPI identity domain of the patient ids it sends when a
dataset names no Issuer of Patient ID (0010,0021)::

    dicom:
      ae_title: HIE_PACS
      archive_dir: dicom/archive       # under data_dir: <study>/<series>/<instance>.dcm
      peers:
        - ae_title: HOSP_A_PACS
          host: 127.0.0.1              # where C-MOVE sends; also the address it must call from
          port: 11113
          domain: hospital-a           # its PatientID (0010,0020) is this domain's patient id
          may: [store, find, move, get]
      check_peer_address: true         # a peer calling from another address is refused
      study_idle_seconds: 300          # XDS-I.b: a study quiet this long is published
      publish: true                    # XDS-I.b: its KOS manifest registered (RAD-68), newer ones RPLC
      imaging_source_id: 1.2.156.112600.1.2.2   # repositoryUniqueId of the RAD-69 endpoint
      reconcile_every_minutes: 5       # unknown patients looked up in the EMPI again

A calling AE title that is not listed is refused at association (A-ASSOCIATE-RJ, "calling AE title
not recognised", PS3.8 §9.3.4), unless ``accept_unknown_peers`` is set (a test bench).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from profiles.empi.config import Oid

__all__ = ["AeTitle", "DicomConfig", "Peer", "Service"]

Service = Literal["store", "find", "move", "get"]
SERVICES: tuple[Service, ...] = ("store", "find", "move", "get")


def _ae(value: str) -> str:
    # PS3.5 §6.2: AE is 16 characters at most, no backslash or control characters; leading and
    # trailing spaces are not significant
    value = value.strip()
    if not value or len(value) > 16 or any(c == "\\" or ord(c) < 0x20 for c in value):
        raise ValueError("an AE title is 1 to 16 characters, without backslash or control characters")
    return value


AeTitle = Annotated[str, AfterValidator(_ae)]


class Peer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ae_title: AeTitle = Field(description="the peer's AE title (calling AE of its associations)")
    host: str = Field("", description="its address: C-MOVE sends here; it must call from here if checked")
    port: int = Field(0, ge=0, le=65535, description="its Storage SCP port (C-MOVE destination); 0: none")
    domain: str | None = Field(
        None, description="EMPI identity domain of its PatientIDs when a dataset has no Issuer of Patient ID"
    )
    may: list[Service] = Field(default_factory=lambda: list(SERVICES), description="the services it may use")


class DicomConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ae_title: AeTitle = Field("HIE_PACS", description="the archive's own AE title (called AE)")
    archive_dir: Path = Field(Path("dicom/archive"), description="where instances are kept, under data_dir")
    peers: list[Peer] = Field(default_factory=list)
    check_peer_address: bool = Field(False, description="refuse a peer calling from an address not its host")
    accept_unknown_peers: bool = Field(False, description="accept any calling AE title (test benches only)")
    study_idle_seconds: float = Field(300, gt=0, description="XDS-I.b: publish a study quiet this long")
    publish: bool = Field(
        True, description="XDS-I.b: publish each quiet study's manifest in the XDS registry"
    )
    imaging_source_id: Oid = Field(
        "1.2.156.112600.1.2.2",
        description="the Imaging Document Source's repositoryUniqueId (RAD-69) and submissions' sourceId",
    )
    reconcile_every_minutes: float = Field(
        5, gt=0, description="how often studies of patients the EMPI did not know are looked up again"
    )

    def peer(self, ae_title: str) -> Peer | None:
        title = ae_title.strip()
        return next((p for p in self.peers if p.ae_title == title), None)
