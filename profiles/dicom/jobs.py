"""The archive's scheduled work: studies whose patient the EMPI did not know are looked up again.

A PACS often sends a study before the hospital's HIS has fed the patient to the EMPI (ITI-8). Those
studies are kept as ``unknown`` and retried every ``dicom.reconcile_every_minutes``; once the EMPI
knows the patient the study is the person's, and ``hie dicom unreconciled`` no longer lists it.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Connection

from engine.config import AppConfig
from engine.plugins import Job
from engine.services import Services
from engine.store.writer import Batch
from profiles.dicom.actor import DicomActor
from profiles.dicom.config import DicomConfig
from profiles.dicom.index import reconcile

__all__ = ["RECONCILE", "reconcile_now"]

log = logging.getLogger(__name__)


def reconcile_now(services: Services) -> list[tuple[str, int]]:
    """Look every unknown study's patient up again, in the writer's next transaction."""
    actor = DicomActor.of(services)
    found: list[tuple[str, int]] = []

    def work(conn: Connection) -> None:
        found[:] = reconcile(conn, actor.resolver)

    batch = Batch()
    batch.then(work)
    services.writer.write_sync(batch)
    if found:
        log.info("dicom: %d studies reconciled with the EMPI", len(found))
    return found


def _run(services: Services, app: AppConfig) -> int:
    return len(reconcile_now(services))


def _schedule(app: AppConfig) -> tuple[str, dict[str, Any]]:
    return "interval", {"minutes": app.section("dicom", DicomConfig).reconcile_every_minutes}


RECONCILE = Job("dicom-reconcile", _run, _schedule)
