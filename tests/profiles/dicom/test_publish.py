"""XDS-I.b: a quiet study's KOS manifest registered in the XDS registry (RAD-68), replaced when the study
grows, held back while the patient is unknown."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

from pydicom import dcmread
from sqlalchemy import select

from engine.store.db import utcnow
from engine.store.schema import audit_events
from ihe.iti43 import DocumentRequest
from profiles.dicom.jobs import reconcile_now
from profiles.dicom.publish import publish_due
from profiles.xds.actor import XdsActor
from profiles.xds.schema import documents, reference_ids
from tests.profiles.dicom.conftest import Pacs, ct, write_study

LATER = dt.timedelta(seconds=3600)  # "now" for the job: every study is quiet by then


def manifest(pacs: Pacs, unique_id: str) -> object:
    services = pacs.rt.services
    assert services is not None
    xds = XdsActor.of(services)
    with services.reads.connect() as conn:
        found, errors = xds.repository.retrieve(
            conn, [DocumentRequest(xds.config.repository_unique_id, unique_id)]
        )
    assert errors == []
    return dcmread(io.BytesIO(found[0].content))


async def test_a_quiet_study_is_published_and_replaced_when_it_grows(pacs: Pacs, tmp_path: Path) -> None:
    await pacs.feed("A1001")
    study = write_study(tmp_path / "study", 2)
    assert (await pacs.store(*study.files)).statuses == ["Success"] * 2
    services = pacs.rt.services
    assert services is not None
    assert publish_due(services, utcnow()) == []  # not quiet yet
    (first,) = publish_due(services, utcnow() + LATER)
    assert first.study_uid == study.uid and first.replaced == ""
    assert publish_due(services, utcnow() + LATER) == []  # published: nothing more to do

    kos = manifest(pacs, first.manifest_uid)
    assert kos.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.59"
    assert kos.ConceptNameCodeSequence[0].CodeValue == "113030"
    (evidence,) = kos.CurrentRequestedProcedureEvidenceSequence
    assert evidence.StudyInstanceUID == study.uid
    (series,) = evidence.ReferencedSeriesSequence
    assert series.RetrieveLocationUID == "1.2.156.112600.1.2.2" and series.RetrieveAETitle == "HIE_PACS"
    assert {r.ReferencedSOPInstanceUID for r in series.ReferencedSOPSequence} == pacs.instance_uids(study.uid)
    assert kos.PatientID == "A1001"
    assert kos.IssuerOfPatientIDQualifiersSequence[0].UniversalEntityID == "1.2.156.112604.1.1"

    with pacs.db.connect() as conn:
        entry = conn.execute(select(documents).where(documents.c.unique_id == first.manifest_uid)).one()
        refs = set(conn.execute(select(reference_ids.c.value)).scalars())
    assert entry.mime_type == "application/dicom" and entry.status == "Approved"
    assert entry.patient_id == "A1001^^^&1.2.156.112604.1.1&ISO"
    assert any(study.uid in r for r in refs)

    # one more image of the study: a new manifest replaces the old entry
    more = ct(study.uid, study.series, 3)
    extra = tmp_path / "extra.dcm"
    more.save_as(extra, enforce_file_format=True)
    assert (await pacs.store(extra)).statuses == ["Success"]
    (second,) = publish_due(services, utcnow() + LATER)
    assert second.replaced == entry.entry_uuid
    assert len(manifest(pacs, second.manifest_uid).ContentSequence) == 3  # type: ignore[attr-defined]
    with pacs.db.connect() as conn:
        old = conn.execute(
            select(documents.c.status).where(documents.c.unique_id == first.manifest_uid)
        ).one()
        exports = conn.execute(
            select(audit_events.c.event_type).where(audit_events.c.event_id.like("110106%"))
        )
        published = [e for e in exports.scalars() if e.startswith("RAD-68")]
    assert old.status == "Deprecated"
    assert len(published) == 2


async def test_a_study_of_an_unknown_patient_waits_for_the_empi(pacs: Pacs, tmp_path: Path) -> None:
    study = write_study(tmp_path / "study", 1, patient_id="A7007")
    assert (await pacs.store(*study.files)).statuses == ["Success"]
    services = pacs.rt.services
    assert services is not None
    assert publish_due(services, utcnow() + LATER) == []
    await pacs.feed("A7007", "王^小明")
    assert [s for s, _ in reconcile_now(services)] == [study.uid]
    (done,) = publish_due(services, utcnow() + LATER)
    assert done.study_uid == study.uid
