"""The ``atna:`` section of ``config.yaml``: sending the engine's own audit records to an external
Audit Record Repository (ITI-20, ITI TF-2 §3.20)::

    atna:
      forward_to: syslog-tls://arr.example.org:6514   # or syslog-udp://host:514; empty: not sent
      tls: arr-client            # a tls: entry (client certificate: ATNA's mutual TLS)
      app_name: HIE              # APP-NAME of the syslog messages
      every_seconds: 5           # how often the forwarder looks for new records
      batch_size: 500            # records per send (and per advance of the mark)
      settle_seconds: 5          # records younger than this wait for the next run (see forward.py)

Records received from other systems are never sent back, nor the engine's records of receiving
them (Import and Export of a syslog channel's messages): a repository that forwards to this one
would otherwise echo them forever.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

from engine.errors import ConfigProblem

if TYPE_CHECKING:
    from engine.config import AppConfig

__all__ = ["AtnaConfig", "atna_problems"]


class AtnaConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    forward_to: str = Field("", description="syslog-tls://host:port or syslog-udp://host:port; empty: off")
    tls: str | None = Field(None, description="name of a tls: entry for syslog-tls (client certificate)")
    app_name: str = Field("HIE", min_length=1, max_length=48, description="APP-NAME of the messages sent")
    every_seconds: float = Field(5.0, gt=0, description="seconds between two runs of the forwarder")
    batch_size: int = Field(500, ge=1, le=10000, description="records sent before the mark advances")
    settle_seconds: float = Field(
        5.0, ge=0, description="records younger than this are left for the next run (other nodes' commits)"
    )

    @field_validator("forward_to")
    @classmethod
    def _target(cls, value: str) -> str:
        if not value:
            return value
        url = urlsplit(value)
        if url.scheme not in ("syslog-tls", "syslog-udp"):
            raise ValueError("forward_to must be syslog-tls://host:port or syslog-udp://host:port")
        try:
            port = url.port
        except ValueError as exc:
            raise ValueError(f"bad port in {value}: {exc}") from None
        if not url.hostname or port is None:
            raise ValueError(f"forward_to needs a host and a port: {value}")
        return value


def atna_problems(app: AppConfig) -> list[ConfigProblem]:
    """What ``hie check`` reports of the ``atna:`` section beyond its fields: the TLS material."""
    cfg = app.section("atna", AtnaConfig)
    where = str(app.path)
    if cfg.tls is not None and cfg.tls not in app.tls:
        return [ConfigProblem(where, None, "atna.tls", f"no TLS settings named {cfg.tls!r} in config.yaml")]
    if cfg.forward_to.startswith("syslog-tls:") and cfg.tls is None:
        return [
            ConfigProblem(
                where, None, "atna.tls", "forward_to syslog-tls needs tls: <name> (ATNA's mutual TLS)"
            )
        ]
    return []
