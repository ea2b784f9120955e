"""XDS-I.b publication: the Imaging Document Source registers each quiet study's manifest (RAD-68).

A study is *quiet* when no instance of it has arrived for ``dicom.study_idle_seconds``; the job
(every few seconds to a minute, in the first worker) then builds its KOS manifest
(``profiles.dicom.manifest``) and provides it to this engine's XDS.b repository and registry, as
RAD-68 is ITI-41 with a manifest (RAD TF-3 §4.68; xds.md §7):

* DocumentEntry: ``mimeType`` application/dicom; formatCode the KOS SOP class
  (``1.2.840.10008.5.1.4.1.1.88.59`` in ``1.2.840.10008.2.6.1``); typeCode LOINC 18748-4
  "Diagnostic imaging study"; eventCodeList the modalities (DCM); referenceIdList the Study
  Instance UID (``urn:ihe:iti:xds:2016:studyInstanceUID``) and the accession number
  (``urn:ihe:iti:xds:2013:accession``), so FindDocumentsByReferenceId finds it; uniqueId the KOS
  SOP Instance UID; patientId the affinity domain's id of the study's patient;
* a study that changed after it was published (new instances arrived) is published again; the new
  entry replaces the old one (RPLC), which the registry deprecates.

A study whose patient the EMPI does not know yet is not published: the registry would refuse it
(XDSUnknownPatientId). It is published once reconciliation finds the patient. A refusal by the
registry is logged (with its XDS error codes, not the patient) and tried again at the next run.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, or_, select, update

from engine.config import AppConfig
from engine.plugins import Job
from engine.services import Services
from engine.store.db import utcnow
from engine.store.schema import audit_events
from engine.store.writer import Batch
from ihe.iti41 import DocumentMetadata, provide_request
from profiles.dicom import audit
from profiles.dicom.actor import DicomActor
from profiles.dicom.config import DicomConfig
from profiles.dicom.index import KNOWN
from profiles.dicom.manifest import ManifestInstance, ManifestStudy, build_manifest, manifest_bytes
from profiles.dicom.schema import instances, series, studies
from profiles.empi.actor import EmpiActor
from profiles.xds.actor import XdsActor
from profiles.xds.package import Package
from profiles.xds.schema import documents

__all__ = ["PUBLISH", "Published", "due", "publish_due", "publish_study"]

log = logging.getLogger(__name__)

_LOINC = "2.16.840.1.113883.6.1"
_DCM = "1.2.840.10008.2.16.4"
_SNOMED = "2.16.840.1.113883.6.96"
CLASS_CODE = f"18726-0^^{_LOINC}^^Radiology studies (set)"
TYPE_CODE = f"18748-4^^{_LOINC}^^Diagnostic imaging study"
FORMAT_CODE = "1.2.840.10008.5.1.4.1.1.88.59^^1.2.840.10008.2.6.1^^Key Object Selection Document"
PRACTICE = f"394914008^^{_SNOMED}^^Radiology"
BATCH = 100  # studies per run: a backlog is worked off over several runs


@dataclass(frozen=True)
class Published:
    study_uid: str
    manifest_uid: str
    replaced: str  # the entryUUID of the manifest it replaced, "" for the first


def due(conn: Connection, now: dt.datetime, idle_seconds: float) -> list[str]:
    """Studies quiet for ``idle_seconds`` whose current content is not published, patient known."""
    quiet_since = now - dt.timedelta(seconds=idle_seconds)
    stmt = (
        select(studies.c.study_uid)
        .where(
            studies.c.patient_status == KNOWN,
            studies.c.last_received_at <= quiet_since,
            or_(studies.c.published_at.is_(None), studies.c.published_at < studies.c.last_received_at),
        )
        .order_by(studies.c.last_received_at)
        .limit(BATCH)
    )
    return list(conn.execute(stmt).scalars())


def _read(conn: Connection, study_uid: str) -> tuple[Any, list[ManifestInstance], list[str], str]:
    study = conn.execute(select(studies).where(studies.c.study_uid == study_uid)).one()
    rows = conn.execute(
        select(instances.c.series_uid, instances.c.sop_class_uid, instances.c.sop_instance_uid)
        .where(instances.c.study_uid == study_uid)
        .order_by(instances.c.series_uid, instances.c.instance_number, instances.c.sop_instance_uid)
    ).all()
    modalities = conn.execute(
        select(series.c.modality)
        .where(series.c.study_uid == study_uid)
        .distinct()
        .order_by(series.c.modality)
    ).scalars()
    previous = ""
    if study.manifest_uid:
        found = conn.execute(
            select(documents.c.entry_uuid).where(
                and_(documents.c.unique_id == study.manifest_uid, documents.c.status == "Approved")
            )
        ).first()
        previous = str(found.entry_uuid) if found is not None else ""
    members = [ManifestInstance(r.series_uid, r.sop_class_uid, r.sop_instance_uid) for r in rows]
    return study, members, [m for m in modalities if m], previous


def publish_study(services: Services, study_uid: str) -> Published | None:
    """Build, provide and register one study's manifest; None when the registry refused it."""
    actor = DicomActor.of(services)
    xds = XdsActor.of(services)
    domains = EmpiActor.of(services).manager.domains
    config = actor.config
    with services.reads.connect() as conn:
        study, members, modalities, previous = _read(conn, study_uid)
    snapshot = study.last_received_at
    oid = domains.oid(study.domain)
    manifest = build_manifest(
        ManifestStudy(
            study_uid=study_uid,
            patient_id=study.patient_id,
            issuer_oid=oid,
            issuer_namespace=domains.namespace(study.domain),
            patient_name=study.patient_name,
            birth_date=study.birth_date,
            sex=study.sex,
            study_date=study.study_date,
            study_time=study.study_time,
            accession_number=study.accession_number,
            study_id=study.study_id,
            referring_physician=study.referring_physician,
            instances=members,
        ),
        retrieve_ae=config.ae_title,
        retrieve_location_uid=config.imaging_source_id,
        now=dt.datetime.now(dt.UTC),
    )
    manifest_uid = str(manifest.SOPInstanceUID)
    patient = f"{study.patient_id}^^^&{oid}&ISO"
    references = [f"{study_uid}^^^^urn:ihe:iti:xds:2016:studyInstanceUID"]
    if study.accession_number:
        references.append(f"{study.accession_number}^^^&{oid}&ISO^urn:ihe:iti:xds:2013:accession")
    meta = DocumentMetadata(
        patient_id=patient,
        source_id=config.imaging_source_id,
        mime_type="application/dicom",
        title=f"{'/'.join(modalities) or 'DICOM'} {study.study_date} {study.description}".strip(),
        unique_id=manifest_uid,
        class_code=CLASS_CODE,
        type_code=TYPE_CODE,
        format_code=FORMAT_CODE,
        practice_setting_code=PRACTICE,
        content_type_code=TYPE_CODE,
        event_codes=[f"{m}^^{_DCM}^^{m}" for m in modalities],
        reference_ids=references,
        replaces=previous,
    )
    request = provide_request(meta, inline=manifest_bytes(manifest))
    provided = xds.repository.provide(request, Package(b""))
    if provided.errors:
        log.warning("dicom: manifest of a study not provided: %s", ", ".join(e.code for e in provided.errors))
        return None
    refused: list[str] = []

    def work(conn: Connection) -> None:
        registered = xds.repository.register_in(conn, provided, None)
        if registered.errors:
            refused[:] = [e.code for e in registered.errors]
            return
        conn.execute(
            update(studies)
            .where(studies.c.study_uid == study_uid)
            .values(published_at=snapshot, manifest_uid=manifest_uid)
        )
        event = audit.manifest_published(
            us=config.ae_title,
            registry=xds.config.repository_unique_id,
            patient=patient,
            study_uid=study_uid,
            submission_set=meta.submission_set_unique_id,
            manifest_uid=manifest_uid,
        )
        conn.execute(audit_events.insert().values(**event.row(services.ids.next())))

    batch = Batch()
    batch.then(work)
    services.writer.write_sync(batch)
    if refused:
        log.warning("dicom: manifest of a study refused by the registry: %s", ", ".join(refused))
        return None
    return Published(study_uid, manifest_uid, previous)


def publish_due(services: Services, now: dt.datetime | None = None) -> list[Published]:
    config = services.app.section("dicom", DicomConfig)
    if not config.publish:
        return []
    with services.reads.connect() as conn:
        uids = due(conn, now or utcnow(), config.study_idle_seconds)
    done = [p for p in (publish_study(services, uid) for uid in uids) if p is not None]
    if done:
        log.info("dicom: %d study manifests published (RAD-68)", len(done))
    return done


def _run(services: Services, app: AppConfig) -> int:
    return len(publish_due(services))


def _schedule(app: AppConfig) -> tuple[str, dict[str, Any]]:
    idle = app.section("dicom", DicomConfig).study_idle_seconds
    return "interval", {"seconds": max(1.0, min(60.0, idle / 4))}


PUBLISH = Job("dicom-xdsi-publish", _run, _schedule)
