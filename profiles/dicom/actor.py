"""One image archive per engine process, shared by the ``dicom://`` sources and the ``dicom-archive:``
destination: its folder, its configuration and the EMPI it reconciles patients with."""

from __future__ import annotations

import logging

from engine.audit import AuditEvent
from engine.services import Services
from engine.store.schema import audit_events
from engine.store.writer import Batch
from profiles.dicom.archive import Archive
from profiles.dicom.config import DicomConfig
from profiles.dicom.index import PatientResolver, follow_merge
from profiles.empi.actor import EmpiActor

__all__ = ["DicomActor"]

log = logging.getLogger(__name__)


class DicomActor:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.config = services.app.section("dicom", DicomConfig)
        self.archive = Archive(services.app.data_dir / self.config.archive_dir)
        self.archive.prepare()
        empi = EmpiActor.of(services)
        self.resolver = PatientResolver(empi.manager.domains, empi.manager.index, self._peer_domain)
        empi.manager.index.merge_listeners.append(follow_merge)

    def _peer_domain(self, ae_title: str) -> str | None:
        peer = self.config.peer(ae_title)
        return peer.domain if peer is not None else None

    def audit_later(self, channel_id: str, *events: AuditEvent) -> None:
        """Write audit records without waiting for their commit: from an association's thread, or
        from a response stream being closed, where nothing may block on the store."""
        batch = Batch()
        for e in events:
            e.channel_id = e.channel_id or channel_id
            batch.insert(audit_events, e.row(self.services.ids.next()))

        def done(exc: BaseException | None) -> None:
            if exc is not None:
                log.error("channel %s: audit record not stored: %s", channel_id, type(exc).__name__)

        self.services.writer.submit(batch, done)

    @classmethod
    def of(cls, services: Services) -> DicomActor:
        actor = services.actors.get("dicom")
        if actor is None:
            actor = services.actors["dicom"] = cls(services)
        assert isinstance(actor, DicomActor)
        return actor
