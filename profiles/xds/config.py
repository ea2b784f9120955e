"""The ``xds:`` section of ``config.yaml``: who the registry and repository are, and their limits::

xds:
  repository_unique_id: 1.2.156.112600.1.2.1   # ITI-41 sets it on every entry; ITI-43 asks for it
  home_community_id: urn:oid:1.2.156.112600.1   # optional; answered in LeafClass and ITI-43
  documents_dir: xds/documents                  # the content store, under the data directory
  max_leaf_class: 1000                          # more entries than this: XDSTooManyResults
  max_object_refs: 10000
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from profiles.empi.config import Oid

__all__ = ["XdsConfig"]


class XdsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    repository_unique_id: Oid = Field(
        "1.2.156.112600.1.2.1", description="this repository's uniqueId (ITI-41 sets it, ITI-43 checks it)"
    )
    home_community_id: str | None = Field(
        None, pattern=r"^urn:oid:[0-2](\.(0|[1-9][0-9]*))+$", description="urn:oid: of the community"
    )
    documents_dir: Path = Field(Path("xds/documents"), description="content store, relative to data_dir")
    max_leaf_class: int = Field(1000, ge=1, description="LeafClass answers longer: XDSTooManyResults")
    max_object_refs: int = Field(10000, ge=1, description="ObjectRef answers longer: XDSTooManyResults")
