"""The Audit Record Repository as an engine plugin (``profiles.plugin`` lists it):

* sources ``syslog-udp://host:port`` (RFC 5426) and ``syslog-tls://host:port`` (RFC 5425, with the
  channel's ``tls:`` entry), each syslog message a channel message (``profiles.atna.intake``);
* destination ``atna-repository:``, which keeps each audit message in ``audit_events``;
* the ``atna:`` section and the ``atna-forward`` job, which sends the engine's own records to an
  external repository;
* the tables ``atna_received`` and ``atna_forward_marks``, an Alembic branch of their own.
"""

from __future__ import annotations

from pathlib import Path

from engine.plugins import Plugin
from profiles.atna.config import AtnaConfig, atna_problems
from profiles.atna.destination import AtnaRepositoryDestination
from profiles.atna.forward import FORWARD
from profiles.atna.syslog_tls import SyslogTlsSource
from profiles.atna.syslog_udp import SyslogUdpSource

__all__ = ["ATNA"]

ATNA = Plugin(
    name="atna",
    sections={"atna": AtnaConfig},
    sources=[SyslogUdpSource, SyslogTlsSource],
    destinations=[AtnaRepositoryDestination],
    checks=[atna_problems],
    jobs=[FORWARD],
    migrations=Path(__file__).parent / "migrations",
)
