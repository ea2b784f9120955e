"""The console's studies section over real HTTP, on SQLite and PostgreSQL: three studies of synthetic
patients stored by dcmtk's storescu into the sample ``pacs-store`` channel (two of a patient the EMPI
knows, published in XDS-I.b; one of a patient it does not), then searched (patient id, name,
modality, study dates, unknown patients, publication, paging) and opened (series, instances, the
C-STORE message, the WADO-RS address), each read audited; the refusals (401, 403, 400, 404)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from pydicom.uid import generate_uid
from sqlalchemy import select

from engine.console import accounts
from engine.store.db import utcnow
from engine.store.schema import audit_events
from profiles.dicom.publish import publish_due
from tests.profiles.dicom.conftest import Pacs, ct, write_study

pytestmark = pytest.mark.pacs(channels=("console", "wado"))

MR = "1.2.840.10008.5.1.4.1.1.4"
LIN = "Lin^Xiuying=林^秀英"  # A2002: hospital A's HIS never fed her to the EMPI
ROLES = ("admin", "integrator", "auditor", "viewer")
LATER = dt.timedelta(hours=1)  # "now" for the publication job: every study is quiet by then


@dataclass
class Archive:
    pacs: Pacs
    base: str
    tokens: dict[str, str]
    ct: str  # A1001, CT, 2026-12-01, one series of 3
    mr: str  # A1001, MR, 2025-10-20, two series (2 + 1)
    unknown: str  # A2002, CT, 2026-11-15, one instance, not reconciled

    def client(self, role: str | None = None) -> httpx.AsyncClient:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"} if role else {}
        return httpx.AsyncClient(base_url=self.base, headers=headers, timeout=30)

    def audits(self, code: str) -> list[dict[str, object]]:
        with self.pacs.db.connect() as conn:
            rows = conn.execute(
                select(audit_events)
                .where(audit_events.c.event_id.like(code + "^%"))
                .order_by(audit_events.c.id)
            ).all()
        return [dict(r._mapping) for r in rows]


def _mr_study(folder: Path) -> tuple[str, list[Path]]:
    """An MR study of A1001: series 1 with two images, series 2 with one."""
    folder.mkdir(parents=True)
    study = generate_uid()
    files = []
    for number, (series_number, series_uid) in enumerate(
        [(1, s1 := generate_uid()), (1, s1), (2, generate_uid())], start=1
    ):
        ds = ct(study, series_uid, number, study_date="20251020", modality="MR")
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = MR
        ds.StudyDescription = "头颅 MR 平扫"
        ds.SeriesNumber = series_number
        ds.SeriesDescription = "T1 轴位" if series_number == 1 else "T2 轴位"
        ds.BodyPartExamined = "HEAD"
        path = folder / f"{number:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        files.append(path)
    return study, files


@pytest.fixture
async def archive(pacs: Pacs, tmp_path: Path) -> AsyncIterator[Archive]:
    services = pacs.rt.services
    assert services is not None
    tokens = {}
    for role in ROLES:
        accounts.add_user(services.db, services.ids, username=role, password="x" * 12, role=role, actor="t")
        tokens[role] = accounts.issue_token(services.db, services.ids, username=role, days=1, actor="t")[1]
    await pacs.feed("A1001")
    first = write_study(tmp_path / "ct", 3)
    mr, mr_files = _mr_study(tmp_path / "mr")
    lin = write_study(tmp_path / "lin", 1, patient_id="A2002", name=LIN, study_date="20261115")
    for files in (first.files, mr_files, lin.files):
        run = await pacs.store(*files)
        assert run.statuses == ["Success"] * len(files), run.out
    published = publish_due(services, utcnow() + LATER)  # the XDS-I.b job, as if the studies were quiet
    assert {p.study_uid for p in published} == {first.uid, mr}
    console = (tmp_path / "channels" / "console.yaml").read_text("utf-8")
    port = re.search(r"console://127\.0\.0\.1:(\d+)", console)
    assert port is not None
    yield Archive(pacs, f"http://127.0.0.1:{port.group(1)}", tokens, first.uid, mr, lin.uid)


async def _uids(c: httpx.AsyncClient, **filters: str) -> list[str]:
    r = await c.get("/api/v1/studies", params=filters)
    assert r.status_code == 200, r.text
    return [s["study_uid"] for s in r.json()["studies"]]


async def test_studies_are_found_by_patient_name_modality_date_and_state(archive: Archive) -> None:
    a = archive
    async with a.client("integrator") as c:
        r = await c.get("/api/v1/studies")
        assert r.status_code == 200, r.text
        page = r.json()
        assert [s["study_uid"] for s in page["studies"]] == [a.unknown, a.mr, a.ct]  # newest received first
        assert page["next_before"] is None
        unknown, mr, first = page["studies"]
        assert first["patient_id"] == "A1001" and first["patient_status"] == "known"
        assert first["domain"] == "hospital-a" and first["person_id"] is not None
        assert "欧阳^明轩" in first["patient_name"]
        assert (first["birth_date"], first["sex"]) == ("19850312", "M")
        assert (first["study_date"], first["study_time"]) == ("20261201", "103000")
        assert first["modalities"] == ["CT"] and (first["series"], first["instances"]) == (1, 3)
        assert first["source_ae"] == "HOSP_A_PACS" and first["description"] == "胸部 CT 平扫"
        assert first["published_at"] and first["manifest_uid"]
        assert mr["modalities"] == ["MR"] and (mr["series"], mr["instances"]) == (2, 3)
        assert unknown["patient_status"] == "unknown" and unknown["person_id"] is None
        assert unknown["published_at"] is None  # the registry would refuse an unknown patient

        assert await _uids(c, patient_id="A1001") == [a.mr, a.ct]
        assert await _uids(c, patient_id="A100") == []  # an id is matched whole
        assert await _uids(c, name="林") == [a.unknown]
        assert await _uids(c, name="ouyang MINGXUAN") == [a.mr, a.ct]
        assert await _uids(c, modality="MR") == [a.mr]
        assert await _uids(c, modality="ct") == [a.unknown, a.ct]
        assert await _uids(c, since="2026-11-01") == [a.unknown, a.ct]
        assert await _uids(c, since="20261120", until="20261231") == [a.ct]
        assert await _uids(c, until="2025-12-31") == [a.mr]
        assert await _uids(c, status="unknown") == [a.unknown]
        assert await _uids(c, status="known", modality="CT") == [a.ct]
        assert await _uids(c, published="no") == [a.unknown]
        assert await _uids(c, published="yes") == [a.mr, a.ct]
        assert await _uids(c, accession=first["accession_number"]) == [a.ct]
        assert await _uids(c, source_ae="HOSP_B_PACS") == []

        # paging: two, then the rest after the cursor
        r = await c.get("/api/v1/studies", params={"limit": "2"})
        first_page = r.json()
        assert [s["study_uid"] for s in first_page["studies"]] == [a.unknown, a.mr]
        assert first_page["next_before"]
        r = await c.get("/api/v1/studies", params={"limit": "2", "before": first_page["next_before"]})
        assert [s["study_uid"] for s in r.json()["studies"]] == [a.ct] and r.json()["next_before"] is None

    # each search is a 110112 Query by the integrator, naming the query and the patients shown
    queries = [q for q in a.audits("110112") if q["user_id"] == "integrator"]
    assert len(queries) == 18
    by_patient = queries[1]
    assert by_patient["action"] == "E" and by_patient["outcome"] == 0
    assert "A1001" in str(by_patient["patient_ids"]) and "A2002" not in str(by_patient["patient_ids"])
    search = json.loads(str(by_patient["objects"]))[-1]
    assert search["id"] == "/api/v1/studies" and search["role"] == 24
    assert base64.b64decode(search["query"]).decode() == "patient_id=A1001"
    assert '"network_access_point": "127.0.0.1"' in str(by_patient["participants"])
    everyone = str(queries[0]["patient_ids"])
    assert "A1001" in everyone and "A2002" in everyone


async def test_a_study_opens_with_its_series_and_instances_and_refusals_are_clear(archive: Archive) -> None:
    a = archive
    async with a.client("auditor") as c:
        r = await c.get(f"/api/v1/studies/{a.mr}")
        assert r.status_code == 200, r.text
        study = r.json()
        assert study["study_uid"] == a.mr and study["patient_id"] == "A1001"
        assert study["description"] == "头颅 MR 平扫" and study["modalities"] == ["MR"]
        shown = [
            (s["series_number"], s["description"], s["body_part"], s["instances"]) for s in study["series"]
        ]
        assert shown == [
            (1, "T1 轴位", "HEAD", 2),
            (2, "T2 轴位", "HEAD", 1),
        ]
        t1 = study["series"][0]["instances_listed"]
        assert [i["instance_number"] for i in t1] == [1, 2]
        assert {i["sop_class"] for i in t1} == {"MR Image Storage"}
        assert {i["transfer_syntax"] for i in t1} == {"Explicit VR Little Endian"}
        assert all(i["size"] > 0 and i["source_ae"] == "HOSP_A_PACS" for i in t1)
        assert study["size"] == sum(i["size"] for s in study["series"] for i in s["instances_listed"])
        # each instance names the C-STORE message that brought it, which the message browser shows
        message = await c.get(f"/api/v1/messages/{t1[0]['message_id']}")
        assert message.status_code == 200 and message.json()["channel_id"] == "pacs-store"
        # the engine serves WADO-RS (channel wado): the study's metadata is there
        assert study["wado"]["metadata"].endswith(f"/dicomweb/studies/{a.mr}/metadata")
        metadata = await c.get(study["wado"]["metadata"])
        assert metadata.status_code == 200 and len(metadata.json()) == 3

    (viewed,) = [e for e in a.audits("110103") if e["user_id"] == "auditor"]
    assert viewed["action"] == "R" and "A1001" in str(viewed["patient_ids"])
    study_object = json.loads(str(viewed["objects"]))[-1]
    assert study_object["id"] == a.mr and study_object["id_type"] == "110180"
    assert study_object["detail"]["instances"] == "3" and MR in study_object["detail"]["SOPClassUID"]

    async with a.client() as anonymous:
        assert (await anonymous.get("/api/v1/studies")).status_code == 401
        assert (await anonymous.get(f"/api/v1/studies/{a.mr}")).status_code == 401
    async with a.client("viewer") as c:
        for path in ("/api/v1/studies", f"/api/v1/studies/{a.mr}"):
            r = await c.get(path)
            assert r.status_code == 403 and "viewer" not in r.json()["required_roles"]
    async with a.client("admin") as c:
        bad = {
            "since": "2026-13-45",
            "until": "yesterday",
            "modality": "C T",
            "status": "lost",
            "published": "maybe",
            "before": "not-a-cursor",
            "limit": "0",
        }
        for name, value in bad.items():
            r = await c.get("/api/v1/studies", params={name: value})
            assert r.status_code == 400 and r.json()["error"].startswith(f"{name}:"), (name, r.text)
        r = await c.get("/api/v1/studies", params={"since": "20261201", "until": "20261101"})
        assert r.status_code == 400
        r = await c.get("/api/v1/studies/not-a-uid")
        assert r.status_code == 400 and r.json()["error"].startswith("study_uid:")
        r = await c.get("/api/v1/studies/1.2.3.4.5")
        assert r.status_code == 404
    # nothing refused was shown, so nothing more was audited as read; the viewer's tries are alerts
    assert [e["user_id"] for e in a.audits("110103")] == ["auditor"]
    assert not [q for q in a.audits("110112") if q["user_id"] in ("admin", "viewer")]
    assert len([e for e in a.audits("110113") if e["user_id"] == "viewer"]) == 2
