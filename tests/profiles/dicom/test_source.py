"""The archive's SCP with dcmtk as the hospital PACS: verification, storage, what is kept and indexed,
patient reconciliation, and every bad input of the issue, each answered in DICOM's own terms while
the server keeps serving."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.uid import generate_uid
from pynetdicom import AE, _config
from sqlalchemy import select

from engine.store.schema import audit_events, messages
from profiles.dicom.index import reconcile
from profiles.dicom.source import DicomSource, DicomSourceOptions
from tests.profiles.dicom.conftest import CT, Pacs, ct, dcmtk, write_study


def audit_ids(pacs: Pacs) -> list[str]:
    with pacs.db.connect() as conn:
        return list(conn.execute(select(audit_events.c.event_id)).scalars())


async def test_echo_from_a_known_peer_and_refusal_of_an_unknown_one(pacs: Pacs) -> None:
    run = await dcmtk(*pacs.scu("echoscu", "-v"))
    assert run.code == 0 and "Success" in run.out
    stranger = await dcmtk(*pacs.scu("echoscu", aet="STRANGER"))
    assert stranger.code != 0
    assert "Calling AE Title Not Recognized" in stranger.out or "rejected" in stranger.out.lower()
    await asyncio.sleep(0.3)  # the alert is written without waiting
    assert any(e.startswith("110113") for e in audit_ids(pacs))
    # the accepted association is audited from its start to its release
    with pacs.db.connect() as conn:
        kinds = list(
            conn.execute(
                select(audit_events.c.event_type, audit_events.c.participants)
                .where(audit_events.c.event_id.like("110114%"))
                .order_by(audit_events.c.event_time)
            )
        )
    assert [k.event_type for k in kinds] == ["110122^Login^DCM", "110123^Logout^DCM"]
    assert all("HOSP_A_PACS" in k.participants for k in kinds)
    assert (await dcmtk(*pacs.scu("echoscu"))).code == 0  # still serving


async def test_a_study_is_archived_indexed_and_audited(pacs: Pacs, tmp_path: Path) -> None:
    study = write_study(tmp_path / "study", 3)
    run = await pacs.store(*study.files)
    assert run.statuses == ["Success"] * 3, run.out
    assert pacs.instance_uids(study.uid) == {str(dcmread(f).SOPInstanceUID) for f in study.files}
    row = pacs.study(study.uid)
    assert row is not None
    assert row["instances"] == 3 and row["patient_id"] == "A1001" and row["source_ae"] == "HOSP_A_PACS"
    assert row["patient_name"] == "Ouyang^Mingxuan=欧阳^明轩"
    # kept as received, byte for byte after the file meta, under study/series/instance
    for f in study.files:
        ds = dcmread(f)
        kept = pacs.archive / study.uid / study.series / f"{ds.SOPInstanceUID}.dcm"
        assert dcmread(kept).PixelData == ds.PixelData
        assert kept.read_bytes().endswith(f.read_bytes()[-64:])
    with pacs.db.connect() as conn:
        stored = conn.execute(select(messages.c.raw).where(messages.c.channel_id == "pacs-store")).scalars()
        summaries = [json.loads(r) for r in stored]
    assert {s["sop_instance_uid"] for s in summaries} == pacs.instance_uids(study.uid)
    assert all("PixelData" not in s and s["calling_ae"] == "HOSP_A_PACS" for s in summaries)
    assert sum(e.startswith("110104") for e in audit_ids(pacs)) == 3
    # sent again: replaced, not counted twice
    assert (await pacs.store(study.files[0])).statuses == ["Success"]
    assert pacs.study(study.uid)["instances"] == 3  # type: ignore[index]


async def test_an_unknown_patient_is_kept_for_review_then_reconciled(pacs: Pacs, tmp_path: Path) -> None:
    study = write_study(tmp_path / "study", 2)
    assert (await pacs.store(*study.files)).statuses == ["Success"] * 2
    row = pacs.study(study.uid)
    assert row is not None and row["patient_status"] == "unknown" and row["person_id"] is None
    await pacs.feed("A1001")
    with pacs.db.begin() as conn:
        found = reconcile(conn, pacs.rt.services.actors["dicom"].resolver)
    assert [s for s, _ in found] == [study.uid]
    row = pacs.study(study.uid)
    assert row is not None and row["patient_status"] == "known" and row["person_id"] is not None


async def test_a_known_patient_is_reconciled_on_arrival_by_issuer(pacs: Pacs, tmp_path: Path) -> None:
    await pacs.feed("A2002", "林^秀英")
    # the issuer names hospital A's domain; the peer's own domain would be the same here, so the
    # second study comes from hospital B's PACS, whose domain does not know A2002
    by_issuer = write_study(tmp_path / "a", 1, patient_id="A2002", issuer="HOSP_A")
    by_peer = write_study(tmp_path / "b", 1, patient_id="A2002")
    assert (await pacs.store(*by_issuer.files, aet="HOSP_B_PACS")).statuses == ["Success"]
    assert (await pacs.store(*by_peer.files, aet="HOSP_B_PACS")).statuses == ["Success"]
    assert pacs.study(by_issuer.uid)["patient_status"] == "known"  # type: ignore[index]
    assert pacs.study(by_peer.uid)["patient_status"] == "unknown"  # type: ignore[index]


async def test_a_dataset_without_study_uid_fails_and_the_rest_is_stored(pacs: Pacs, tmp_path: Path) -> None:
    study = write_study(tmp_path / "study", 2)
    bad = ct(generate_uid(), generate_uid(), 9)
    del bad.StudyInstanceUID
    bad_file = tmp_path / "no-study.dcm"
    bad.save_as(bad_file, enforce_file_format=True)
    run = await pacs.store(study.files[0], bad_file, study.files[1])
    assert run.statuses == ["Success", "Error: CannotUnderstand", "Success"]
    assert len(pacs.instance_uids(study.uid)) == 2  # the others of the same association
    with pacs.db.connect() as conn:
        errored = conn.execute(
            select(messages.c.error).where(
                messages.c.channel_id == "pacs-store", messages.c.status == "errored"
            )
        ).scalars()
        reasons = list(errored)
    assert any("Study Instance UID" in (r or "") for r in reasons)


async def test_an_unsupported_sop_class_is_refused_in_negotiation(pacs: Pacs, tmp_path: Path) -> None:
    nm = ct(generate_uid(), generate_uid(), 1)
    nm.SOPClassUID = nm.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.20"  # NM Image
    path = tmp_path / "nm.dcm"
    nm.save_as(path, enforce_file_format=True)
    run = await pacs.store(path)
    assert "No presentation context for: (NM)" in run.out
    assert (await dcmtk(*pacs.scu("echoscu"))).code == 0


def _scu(port: int, aet: str = "HOSP_A_PACS") -> object:
    ae = AE(ae_title=aet)
    ae.add_requested_context(CT, ["1.2.840.10008.1.2.1"])
    return ae.associate("127.0.0.1", port, ae_title="HIE_PACS")


async def test_a_truncated_dataset_fails_without_harm(pacs: Pacs, tmp_path: Path) -> None:
    whole = ct(generate_uid(), generate_uid(), 1, rows=64)
    path = tmp_path / "whole.dcm"
    whole.save_as(path, enforce_file_format=True)
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(path.read_bytes()[:-3000])  # the pixel data cut short

    def send() -> tuple[int, int]:
        before = _config.STORE_SEND_CHUNKED_DATASET
        _config.STORE_SEND_CHUNKED_DATASET = True  # send the file's bytes as they are
        try:
            assoc = _scu(pacs.port)
            assert assoc.is_established  # type: ignore[attr-defined]
            broken = assoc.send_c_store(cut)  # type: ignore[attr-defined]
            fine = assoc.send_c_store(path)  # type: ignore[attr-defined]
            assoc.release()  # type: ignore[attr-defined]
            return int(broken.Status), int(fine.Status)
        finally:
            _config.STORE_SEND_CHUNKED_DATASET = before  # the forwarding destination sets it too

    broken, fine = await asyncio.to_thread(send)
    assert broken == 0xC000 and fine == 0x0000
    assert pacs.instance_uids(str(whole.StudyInstanceUID)) == {str(whole.SOPInstanceUID)}


async def test_an_association_aborted_halfway_keeps_what_was_acknowledged(pacs: Pacs, tmp_path: Path) -> None:
    study = write_study(tmp_path / "study", 3)

    def send_two_then_abort() -> list[int]:
        assoc = _scu(pacs.port)
        statuses = [int(assoc.send_c_store(dcmread(f)).Status) for f in study.files[:2]]  # type: ignore[attr-defined]
        assoc.abort()  # type: ignore[attr-defined]
        return statuses

    assert await asyncio.to_thread(send_two_then_abort) == [0, 0]
    assert len(pacs.instance_uids(study.uid)) == 2
    assert (await pacs.store(study.files[2])).statuses == ["Success"]
    assert len(pacs.instance_uids(study.uid)) == 3


@pytest.mark.pacs(channel_extra="  idle_timeout: 1\n  acse_timeout: 1\n")
async def test_a_peer_that_never_releases_is_let_go(pacs: Pacs) -> None:
    def hold() -> bool:
        assoc = _scu(pacs.port)
        assert assoc.is_established  # type: ignore[attr-defined]
        for _ in range(50):  # we send nothing and never release; the archive aborts after 1 s
            if assoc.is_aborted:  # type: ignore[attr-defined]
                return True
            time.sleep(0.1)
        assoc.abort()  # type: ignore[attr-defined]
        return False

    assert await asyncio.to_thread(hold)
    # a connection that never even asks for an association is closed too
    with socket.create_connection(("127.0.0.1", pacs.port), timeout=10) as raw:
        raw.settimeout(10)
        assert await asyncio.to_thread(raw.recv, 1) == b""
    assert (await dcmtk(*pacs.scu("echoscu"))).code == 0


@pytest.mark.pacs(dicom_extra="  check_peer_address: true\n")
async def test_a_peer_calling_from_another_address_is_aborted(pacs: Pacs, tmp_path: Path) -> None:
    # HOSP_A_PACS must call from 127.0.0.1; HIE_CLI has no host, so it is not checked
    assert (await dcmtk(*pacs.scu("echoscu"))).code == 0
    source = pacs.rt.sources["pacs-store"]
    assert isinstance(source, DicomSource)
    source.actor.config.peers[0].host = "127.0.0.2"
    assert (await dcmtk(*pacs.scu("echoscu"))).code != 0
    await asyncio.sleep(0.3)
    assert any(e.startswith("110113") for e in audit_ids(pacs))


@pytest.mark.pacs(channel_extra="  max_associations: 1\n")
async def test_associations_beyond_the_limit_are_rejected_as_transient(pacs: Pacs) -> None:
    def held_then_second() -> tuple[bool, bool]:
        first = _scu(pacs.port)
        try:
            second = _scu(pacs.port)
            refused = bool(second.is_rejected)  # type: ignore[attr-defined]
            if second.is_established:  # type: ignore[attr-defined]
                second.release()  # type: ignore[attr-defined]
            return bool(first.is_established), refused  # type: ignore[attr-defined]
        finally:
            first.release()  # type: ignore[attr-defined]

    assert await asyncio.to_thread(held_then_second) == (True, True)
    assert (await dcmtk(*pacs.scu("echoscu"))).code == 0  # the one slot is free again


def test_a_storage_class_the_archive_does_not_know_is_a_configuration_problem() -> None:
    from pydantic import ValidationError

    assert DicomSourceOptions(sop_classes=["CTImageStorage", "1.2.840.10008.5.1.4.1.1.20"]).sop_classes
    with pytest.raises(ValidationError, match="NoSuchStorage"):
        DicomSourceOptions(sop_classes=["NoSuchStorage"])


async def test_a_transfer_syntax_not_offered_is_refused_in_negotiation(pacs: Pacs) -> None:
    def propose() -> tuple[list[str], list[str]]:
        ae = AE(ae_title="HOSP_A_PACS")
        ae.add_requested_context(CT, ["1.2.840.10008.1.2.2"])  # Explicit VR Big Endian (retired)
        ae.add_requested_context(CT, ["1.2.840.10008.1.2.1"])
        assoc = ae.associate("127.0.0.1", pacs.port, ae_title="HIE_PACS")
        try:
            accepted = [str(c.transfer_syntax[0]) for c in assoc.accepted_contexts]
            rejected = [str(c.transfer_syntax[0]) for c in assoc.rejected_contexts]
        finally:
            assoc.release()
        return accepted, rejected

    accepted, rejected = await asyncio.to_thread(propose)
    assert accepted == ["1.2.840.10008.1.2.1"] and rejected == ["1.2.840.10008.1.2.2"]
