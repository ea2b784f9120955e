"""The studies pages driven as a person would, in headless Chromium against an ``hie run`` process: a
regional archive (``dicom://``) with WADO-RS, four studies of synthetic patients stored by dcmtk's
storescu as hospital A's PACS (three patients the EMPI knows from ``hie empi load``, one it does
not), the known ones published in XDS-I.b by the engine's own job. An integrator finds a patient's
studies by patient id, opens one and sees its series and instances with their C-STORE messages; the
unknown patient's study is found by its state; a viewer has no studies page.

Chromium, the engine process and screenshots: ``tests/browser.py``.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydicom.uid import generate_uid
from sqlalchemy import func, select

from engine.store.schema import audit_events
from profiles.dicom.schema import studies
from tests.browser import ConsoleEngine, console_engine, hie, login, require_chromium, shot
from tests.conftest import free_port
from tests.engine.test_crash_recovery import wait_until
from tests.profiles.dicom.conftest import ct

pytestmark = pytest.mark.slow
require_chromium()
from playwright.sync_api import Page, expect  # noqa: E402

CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
DX = "1.2.840.10008.5.1.4.1.1.1.1"
CONFIG = """
empi:
  domains:
    - {id: hospital-a, namespace: HOSP_A, oid: 1.2.156.112604.1.1, description: Hospital A (demo)}
xds:
  repository_unique_id: 1.2.156.112600.1.2.1
  documents_dir: xds/documents
dicom:
  ae_title: HIE_PACS
  archive_dir: dicom/archive
  peers:
    - {ae_title: HOSP_A_PACS, host: 127.0.0.1, port: 0, domain: hospital-a}
  study_idle_seconds: 2
"""
PEOPLE = (
    "domain,value,national_id,name,family,given,birth_date,sex,phone,city\n"
    "hospital-a,A1001,320102198503120311,欧阳明轩,欧阳,明轩,1985-03-12,1,13851234567,南京市\n"
    "hospital-a,A1003,,张伟,张,伟,1972-08-03,1,,南京市\n"
)


@dataclass
class Archive:
    engine: ConsoleEngine
    uids: dict[str, str]  # name -> Study Instance UID


def _study(
    folder: Path,
    name: str,
    *,
    patient: str,
    pn: str,
    birth: str,
    sex: str,
    date: str,
    modality: str,
    sop: str,
    description: str,
    series: tuple[tuple[str, int], ...],
) -> tuple[str, list[Path]]:
    """A study: ``series`` is (description, how many images) for each series."""
    folder = folder / name
    folder.mkdir(parents=True)
    study = generate_uid()
    files = []
    for number, (about, images) in enumerate(series, start=1):
        series_uid = generate_uid()
        for n in range(1, images + 1):
            ds = ct(study, series_uid, n, patient_id=patient, name=pn, study_date=date, modality=modality)
            ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = sop
            ds.PatientBirthDate, ds.PatientSex = birth, sex
            ds.StudyDescription = description
            ds.SeriesNumber = number
            ds.SeriesDescription = about
            ds.BodyPartExamined = "CHEST" if modality != "MR" else "HEAD"
            path = folder / f"{number}-{n:03d}.dcm"
            ds.save_as(path, enforce_file_format=True)
            files.append(path)
    return study, files


def storescu(port: int, files: list[Path]) -> None:
    done = subprocess.run(
        ["storescu", "-aet", "HOSP_A_PACS", "-aec", "HIE_PACS", "127.0.0.1", str(port), *map(str, files)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "TCP_NODELAY": "1"},
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Archive]:
    base = tmp_path_factory.mktemp("studies-e2e")
    dicom, wado = free_port(), free_port()
    channels = {
        "pacs-store.yaml": (
            f"id: pacs-store\nsource: {{url: 'dicom://127.0.0.1:{dicom}'}}\n"
            "ack: after_delivery\nack_from: archive\n"
            "destinations:\n  - {id: archive, url: 'dicom-archive:'}\n"
        ),
        "wado.yaml": f"id: wado\nsource: {{url: 'wado://127.0.0.1:{wado}/dicomweb'}}\n",
    }
    with console_engine(base, CONFIG, channels, listening=(dicom, wado)) as running:
        people = base / "people.csv"
        people.write_text(PEOPLE, encoding="utf-8")
        hie(running.config, "empi", "load", str(people))
        made = base / "studies"
        ouyang = {"patient": "A1001", "pn": "Ouyang^Mingxuan=欧阳^明轩", "birth": "19850312", "sex": "M"}
        zhang = {"patient": "A1003", "pn": "Zhang^Wei=张^伟", "birth": "19720803", "sex": "M"}
        lin = {"patient": "A2002", "pn": "Lin^Xiuying=林^秀英", "birth": "19900721", "sex": "F"}
        plan: dict[str, dict[str, Any]] = {
            "chest": {
                **ouyang,
                "date": "20261201",
                "modality": "CT",
                "sop": CT,
                "description": "胸部 CT 平扫",
                "series": (("胸部 平扫 5mm", 3),),
            },
            "xray": {
                **ouyang,
                "date": "20250610",
                "modality": "DX",
                "sop": DX,
                "description": "胸部正位 DR",
                "series": (("PA", 1),),
            },
            "head": {
                **zhang,
                "date": "20261128",
                "modality": "MR",
                "sop": MR,
                "description": "头颅 MR 平扫",
                "series": (("T1 轴位", 2), ("T2 轴位", 2)),
            },
            "lin": {
                **lin,
                "date": "20261115",
                "modality": "CT",
                "sop": CT,
                "description": "腹部 CT 增强",
                "series": (("动脉期", 2),),
            },
        }
        uids = {}
        for name, attributes in plan.items():
            uid, files = _study(made, name, **attributes)
            storescu(dicom, files)
            uids[name] = uid

        def published() -> bool:  # the engine's XDS-I.b job, once the studies are quiet
            with running.db.connect() as conn:
                done = conn.execute(
                    select(func.count()).select_from(studies).where(studies.c.published_at.is_not(None))
                ).scalar_one()
            return done == 3

        wait_until(published, 60, "the three known patients' studies published in XDS-I.b")
        yield Archive(running, uids)


def test_an_integrator_finds_a_patients_studies_and_opens_one(page: Page, archive: Archive) -> None:
    base = archive.engine.base
    login(page, base, "integrator")
    page.click("#nav-studies")
    rows = page.locator("#studies-table tr[data-study-uid]")
    expect(rows).to_have_count(4)
    lin = page.locator(f"#studies-table tr[data-study-uid='{archive.uids['lin']}']")
    expect(lin.locator(".studies-unknown")).to_be_visible()
    expect(lin.locator(".studies-published")).to_have_count(0)
    expect(page.locator(f"tr[data-study-uid='{archive.uids['head']}'] .studies-published")).to_be_visible()
    expect(page.locator(f"tr[data-study-uid='{archive.uids['head']}']")).to_contain_text("Zhang Wei")
    shot(page, "studies")

    page.fill("#studies-form [name=patient_id]", "A1001")
    page.click("#studies-submit")
    expect(page).to_have_url(f"{base}/console/#/studies?patient_id=A1001")
    expect(rows).to_have_count(2)
    # the last received first: the X-ray was stored after the CT
    expect(rows.first).to_have_attribute("data-study-uid", archive.uids["xray"])
    chest = rows.nth(1)
    expect(chest).to_have_attribute("data-study-uid", archive.uids["chest"])
    expect(chest).to_contain_text("2026-12-01")
    expect(chest).to_contain_text("胸部 CT 平扫")

    chest.locator("a.studies-link").click()
    expect(page.locator("#studies-detail")).to_have_attribute("data-study-uid", archive.uids["chest"])
    expect(page.locator("#studies-patient")).to_contain_text("A1001")
    expect(page.locator("#studies-person")).to_contain_text("hospital-a")
    series = page.locator("#studies-series tr[data-series-uid]")
    expect(series).to_have_count(1)
    expect(series.first).to_contain_text("胸部 平扫 5mm")
    instances = page.locator("#studies-series tr[data-sop-instance-uid]")
    expect(instances).to_have_count(3)  # one series: shown open
    expect(instances.first).to_contain_text("CT Image Storage")
    expect(instances.first).to_contain_text("Explicit VR Little Endian")
    expect(page.locator("#studies-wado-metadata")).to_have_attribute(
        "href", f"http://127.0.0.1:{_wado_port(archive)}/dicomweb/studies/{archive.uids['chest']}/metadata"
    )
    shot(page, "studies-detail")
    series.first.locator("button.studies-toggle").click()
    expect(instances.first).to_be_hidden()
    series.first.locator("button.studies-toggle").click()
    expect(instances.first).to_be_visible()

    # the C-STORE that brought the image, in the message browser
    link = instances.first.locator("a.studies-message")
    href = link.get_attribute("href")
    assert href and href.startswith("#/messages/")
    link.click()
    expect(page.locator("#message")).to_have_attribute("data-message-id", href.removeprefix("#/messages/"))
    expect(page.locator("#message")).to_contain_text("pacs-store")
    page.go_back()
    page.click("#studies-back")
    expect(page).to_have_url(f"{base}/console/#/studies?patient_id=A1001")  # back to the search
    expect(rows).to_have_count(2)

    with archive.engine.db.connect() as conn:
        viewed = conn.execute(
            select(audit_events.c.patient_ids).where(
                audit_events.c.event_id.like("110103^%"), audit_events.c.user_id == "integrator"
            )
        ).scalars().all()  # fmt: skip
    assert viewed and all("A1001" in str(p) for p in viewed)


def test_unreconciled_studies_are_found_and_a_viewer_has_no_studies(page: Page, archive: Archive) -> None:
    base = archive.engine.base
    login(page, base, "auditor")
    page.goto(f"{base}/console/#/studies")
    page.select_option("#studies-status", "unknown")
    page.fill("#studies-since", "2026-11-01")
    page.click("#studies-submit")
    rows = page.locator("#studies-table tr[data-study-uid]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-study-uid", archive.uids["lin"])
    expect(rows.first).to_contain_text("Lin Xiuying")
    page.select_option("#studies-status", "")
    page.fill("#studies-form [name=modality]", "MR")
    page.click("#studies-submit")
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-study-uid", archive.uids["head"])
    page.click("#lang-toggle")  # Chinese: the ideographic names first
    expect(page.locator("#nav-studies")).to_have_text("影像检查")
    expect(rows.first).to_contain_text("张伟")
    page.click("#lang-toggle")

    page.click("#logout")
    login(page, base, "viewer")
    expect(page.locator("#nav-dashboard")).to_be_visible()
    expect(page.locator("#nav-studies")).to_have_count(0)


def _wado_port(archive: Archive) -> str:
    text = (archive.engine.data / "channels" / "wado.yaml").read_text("utf-8")
    return text.split("127.0.0.1:")[1].split("/")[0]
