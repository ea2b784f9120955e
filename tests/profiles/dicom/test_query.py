"""C-FIND, C-MOVE and C-GET on the archive with dcmtk's findscu, movescu (to dcmtk's storescp as the
Move Destination) and getscu: the keys matched and returned, the hierarchy, and the failures."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path

from pydicom import dcmread
from sqlalchemy import select

from engine.store.schema import audit_events
from tests.profiles.dicom.conftest import Pacs, Study, dcmtk, write_study

_ELEMENT = re.compile(r"\([0-9a-f]{4},[0-9a-f]{4}\) \w\w \[([^\]]*)\]\s+#\s+\d+, \d+ (\w+)")


async def find(
    pacs: Pacs, *keys: str, root: str = "-S", aet: str = "HOSP_A_PACS"
) -> tuple[int, list[dict[str, str]]]:
    """findscu; its exit code and each answer's attributes (keyword -> value)."""
    args: list[str | Path] = [root, "-v"]
    for k in keys:
        args += ["-k", k]
    run = await dcmtk(*pacs.scu("findscu", *args, aet=aet))
    answers = [
        {keyword: value.strip(" \x00") for value, keyword in _ELEMENT.findall(block)}
        for block in run.out.split("Find Response:")[1:]
    ]
    return run.code, [a for a in answers if a]


async def two_studies(pacs: Pacs, tmp_path: Path) -> tuple[Study, Study]:
    first = write_study(tmp_path / "one", 2, study_date="20261101")
    second = write_study(tmp_path / "two", 3, study_date="20261203", modality="MR")
    assert (await pacs.store(*first.files, *second.files)).statuses == ["Success"] * 5
    return first, second


async def test_study_level_matching_and_returned_keys(pacs: Pacs, tmp_path: Path) -> None:
    first, second = await two_studies(pacs, tmp_path)
    code, answers = await find(
        pacs,
        "QueryRetrieveLevel=STUDY",
        "PatientID=A1001",
        "StudyInstanceUID",
        "PatientName",
        "ModalitiesInStudy",
        "NumberOfStudyRelatedInstances",
        "StudyDate",
    )
    assert code == 0
    by_uid = {a["StudyInstanceUID"]: a for a in answers}
    assert set(by_uid) == {first.uid, second.uid}
    assert by_uid[second.uid]["ModalitiesInStudy"] == "MR"
    assert by_uid[second.uid]["NumberOfStudyRelatedInstances"] == "3"
    assert by_uid[first.uid]["PatientName"] == "Ouyang^Mingxuan=欧阳^明轩"  # UTF-8 in, UTF-8 out
    # a date range, a wildcard on the name (any case), a list of UIDs
    _, late = await find(pacs, "QueryRetrieveLevel=STUDY", "StudyDate=20261201-", "StudyInstanceUID")
    assert [a["StudyInstanceUID"] for a in late] == [second.uid]
    _, named = await find(pacs, "QueryRetrieveLevel=STUDY", "PatientName=ouyang*", "StudyInstanceUID")
    assert len(named) == 2
    _, listed = await find(pacs, "QueryRetrieveLevel=STUDY", f"StudyInstanceUID={first.uid}\\1.2.3")
    assert [a["StudyInstanceUID"] for a in listed] == [first.uid]
    _, nobody = await find(pacs, "QueryRetrieveLevel=STUDY", "PatientID=NOBODY", "StudyInstanceUID")
    assert nobody == []


async def test_series_image_and_patient_levels(pacs: Pacs, tmp_path: Path) -> None:
    first, _ = await two_studies(pacs, tmp_path)
    _, series = await find(
        pacs, "QueryRetrieveLevel=SERIES", f"StudyInstanceUID={first.uid}", "SeriesInstanceUID", "Modality"
    )
    assert [(s["SeriesInstanceUID"], s["Modality"]) for s in series] == [(first.series, "CT")]
    _, images = await find(
        pacs,
        "QueryRetrieveLevel=IMAGE",
        f"StudyInstanceUID={first.uid}",
        f"SeriesInstanceUID={first.series}",
        "SOPInstanceUID",
        "InstanceNumber",
    )
    assert [i["InstanceNumber"] for i in images] == ["1", "2"]
    assert {i["SOPInstanceUID"] for i in images} == pacs.instance_uids(first.uid)
    _, patients = await find(
        pacs, "QueryRetrieveLevel=PATIENT", "PatientID=A1001", "NumberOfPatientRelatedStudies", root="-P"
    )
    assert [(p["PatientID"], p["NumberOfPatientRelatedStudies"]) for p in patients] == [("A1001", "2")]


async def test_a_query_the_archive_cannot_answer_fails_clearly(pacs: Pacs, tmp_path: Path) -> None:
    await two_studies(pacs, tmp_path)
    # a series query without its study: hierarchical queries need the unique keys above
    run = await dcmtk(
        *pacs.scu("findscu", "-S", "-v", "-k", "QueryRetrieveLevel=SERIES", "-k", "Modality=CT")
    )
    assert "Received Final Find Response (Error: DataSetDoesNotMatchSOPClass)" in run.out
    # the study root has no patient level
    run = await dcmtk(*pacs.scu("findscu", "-S", "-v", "-k", "QueryRetrieveLevel=PATIENT", "-k", "PatientID"))
    assert "Received Final Find Response (Error: DataSetDoesNotMatchSOPClass)" in run.out
    with pacs.db.connect() as conn:
        queries = conn.execute(select(audit_events.c.outcome).where(audit_events.c.event_id.like("110112%")))
        outcomes = list(queries.scalars())
    assert outcomes.count(4) == 2  # each refused query audited as a failure


async def test_a_peer_that_may_not_query_is_refused(pacs: Pacs, tmp_path: Path) -> None:
    config = pacs.rt.services.actors["dicom"].config  # type: ignore[union-attr]
    config.peers[0].may = ["store"]
    run = await dcmtk(*pacs.scu("findscu", "-S", "-v", "-k", "QueryRetrieveLevel=STUDY", "-k", "PatientID"))
    assert "Received Final Find Response (Failed: UnableToProcess)" in run.out


async def test_c_move_to_a_known_peer_and_to_an_unknown_one(pacs: Pacs, tmp_path: Path) -> None:
    first, _ = await two_studies(pacs, tmp_path)
    found = re.search(r"HOSP_B_PACS, host: 127\.0\.0\.1, port: (\d+)", pacs.config.read_text())
    assert found is not None
    port = int(found.group(1))
    received = tmp_path / "received"
    received.mkdir()
    storescp = await asyncio.create_subprocess_exec(
        "storescp",
        "-aet",
        "HOSP_B_PACS",
        "-od",
        str(received),
        str(port),
        env={**os.environ, "TCP_NODELAY": "1"},
    )
    try:
        await asyncio.sleep(0.5)
        run = await dcmtk(
            *pacs.scu(
                "movescu",
                "-S",
                "-v",
                "-aem",
                "HOSP_B_PACS",
                "-k",
                "QueryRetrieveLevel=STUDY",
                "-k",
                f"StudyInstanceUID={first.uid}",
            )
        )
        assert "Move Response" in run.out and "Success" in run.out, run.out
    finally:
        storescp.terminate()
        await storescp.wait()
    got = {str(dcmread(f).SOPInstanceUID) for f in received.iterdir()}
    assert got == pacs.instance_uids(first.uid)
    unknown = await dcmtk(
        *pacs.scu(
            "movescu",
            "-S",
            "-v",
            "-aem",
            "NOWHERE",
            "-k",
            "QueryRetrieveLevel=STUDY",
            "-k",
            f"StudyInstanceUID={first.uid}",
        )
    )
    assert "MoveDestinationUnknown" in unknown.out or "A801" in unknown.out.upper()
    with pacs.db.connect() as conn:
        moved = conn.execute(select(audit_events.c.objects).where(audit_events.c.event_type.like("C-MOVE%")))
        assert first.uid in "".join(moved.scalars())


async def test_c_get_returns_the_series_on_the_same_association(pacs: Pacs, tmp_path: Path) -> None:
    first, _ = await two_studies(pacs, tmp_path)
    out = tmp_path / "got"
    out.mkdir()
    run = await dcmtk(
        *pacs.scu(
            "getscu",
            "-S",
            "-v",
            "-od",
            out,
            "-k",
            "QueryRetrieveLevel=SERIES",
            "-k",
            f"StudyInstanceUID={first.uid}",
            "-k",
            f"SeriesInstanceUID={first.series}",
        )
    )
    assert run.code == 0, run.out
    assert {str(dcmread(f).SOPInstanceUID) for f in out.iterdir()} == pacs.instance_uids(first.uid)
