"""The documents pages driven as a person would, in headless Chromium against an ``hie run`` process:
an XDS.b repository channel (``soap://``), patients the EMPI knows from ``hie empi load``, documents
provided over real SOAP (ITI-41), one of them replaced by a correction. An integrator searches a
patient by the hospital's id, sees every document of the person (the one registered under the
national ID too) with its status, opens one and shows its CDA as text; a viewer has no documents page.

Chromium, the engine process and screenshots: ``tests/browser.py``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import select

from engine.store.schema import audit_events
from ihe.iti41 import DocumentMetadata
from profiles.xds.schema import documents
from tests.browser import ConsoleEngine, console_engine, hie, login, require_chromium, shot
from tests.conftest import free_port
from tests.profiles.conftest import NID_A, NID_B
from tests.profiles.xds.test_console import (
    DISCHARGE,
    LAB,
    NATIONAL_OID,
    OUTPATIENT,
    SOAP,
    SUCCESS,
    cda,
    cx,
    meta,
    provide_envelope,
)

pytestmark = pytest.mark.slow
require_chromium()
from playwright.sync_api import Page, expect  # noqa: E402

CONFIG = """
empi:
  domains:
    - {id: hospital-a, namespace: HOSP_A, oid: 1.2.156.112604.1.1, description: 某市第一人民医院 (demo)}
xds:
  repository_unique_id: 1.2.156.112600.1.2.1
  documents_dir: xds/documents
"""
PEOPLE = (
    "domain,value,national_id,name,family,given,birth_date,sex,phone,city\n"
    f"hospital-a,A1001,{NID_A},欧阳明轩,欧阳,明轩,1985-03-12,1,13851234567,南京市\n"
    f"hospital-a,A2002,{NID_B},林秀英,林,秀英,1990-07-21,2,,南京市\n"
)
PATIENT = cx("A1001", "1.2.156.112604.1.1")
IMAGING = "18748-4^^2.16.840.1.113883.6.1^^影像检查报告"


@dataclass
class Registry:
    engine: ConsoleEngine
    uids: dict[str, str]  # name -> document uniqueId


def provide(url: str, m: DocumentMetadata, content: bytes, **kw: object) -> str:
    answer = httpx.post(
        url, content=provide_envelope(m, content, **kw), headers={"Content-Type": SOAP}, timeout=30
    )
    assert answer.status_code == 200 and SUCCESS in answer.content, answer.text
    return m.unique_id


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    base = tmp_path_factory.mktemp("documents-e2e")
    soap = free_port()
    channels = {
        "xds-repository.yaml": (
            "id: xds-repository\n"
            f"source: {{url: 'soap://127.0.0.1:{soap}/xds/repository', wsdl: repository}}\n"
            "ack: after_delivery\nack_from: repository\n"
            "destinations:\n  - {id: repository, url: 'xds-repository:'}\n"
        ),
    }
    with console_engine(base, CONFIG, channels, listening=(soap,)) as running:
        people = base / "people.csv"
        people.write_text(PEOPLE, encoding="utf-8")
        hie(running.config, "empi", "load", str(people))
        url = f"http://127.0.0.1:{soap}/xds/repository"
        service = ("202611190800", "202611201000")
        uids = {
            "discharge": provide(
                url, meta(PATIENT, "出院小结", "20261120083000", class_code=DISCHARGE, type_code=DISCHARGE),
                cda("出院小结", encoding="GB2312"), service=service,
            ),
            "outpatient": provide(
                url, meta(cx(NID_A, NATIONAL_OID), "门(急)诊病历", "20261125093000", class_code=OUTPATIENT,
                          type_code=OUTPATIENT), cda("门(急)诊病历"),
            ),
            "ct": provide(
                url, meta(PATIENT, "胸部CT检查报告", "20261126141000", class_code=IMAGING, type_code=IMAGING),
                cda("胸部CT检查报告"),
            ),
            "lab": provide(
                url, meta(PATIENT, "血常规检验报告", "20261128101500", class_code=LAB, type_code=LAB),
                cda("血常规检验报告"),
            ),
            "other": provide(
                url, meta(cx(NID_B, NATIONAL_OID), "林秀英的出院小结", "20261129", class_code=DISCHARGE,
                          type_code=DISCHARGE), cda("林秀英的出院小结"),
            ),
        }  # fmt: skip
        with running.db.connect() as conn:
            first = conn.execute(
                select(documents.c.entry_uuid).where(documents.c.unique_id == uids["lab"])
            ).scalar_one()
        uids["lab2"] = provide(
            url,
            meta(
                PATIENT,
                "血常规检验报告(更正)",
                "20261130090000",
                class_code=LAB,
                type_code=LAB,
                replaces=first,
            ),
            cda("血常规检验报告(更正)"),
        )
        yield Registry(running, uids)


def entry_of(registry: Registry, name: str) -> str:
    with registry.engine.db.connect() as conn:
        return str(
            conn.execute(
                select(documents.c.entry_uuid).where(documents.c.unique_id == registry.uids[name])
            ).scalar_one()
        )


def audits(registry: Registry, event: str, user: str) -> list[dict[str, object]]:
    with registry.engine.db.connect() as conn:
        rows = conn.execute(
            select(audit_events).where(
                audit_events.c.event_id.like(event + "^%"), audit_events.c.user_id == user
            )
        ).all()
    return [dict(r._mapping) for r in rows]


def test_integrator_finds_a_patients_documents_and_reads_one(page: Page, registry: Registry) -> None:
    login(page, registry.engine.base, "integrator")
    page.click("#nav-documents")
    expect(page.locator("#documents-table")).to_contain_text("Enter a patient ID")
    page.fill("#documents-patient_id", "A1001")
    page.select_option("#documents-domain", "hospital-a")
    page.click("#documents-submit")

    rows = page.locator("#documents-table tr[data-entry-uuid]")
    expect(rows).to_have_count(5)  # the person's five, the one under the national ID too; not 林秀英's
    expect(page.locator("#documents-table")).not_to_contain_text("林秀英")
    expect(page.locator("#documents-patient")).to_contain_text(PATIENT)
    titles = [rows.nth(i).locator("a.documents-link").inner_text() for i in range(5)]
    assert titles == ["血常规检验报告(更正)", "血常规检验报告", "胸部CT检查报告", "门(急)诊病历", "出院小结"]
    deprecated = page.locator(f"#documents-table tr[data-entry-uuid='{entry_of(registry, 'lab')}']")
    expect(deprecated.locator(".documents-status")).to_have_text("Deprecated")
    expect(rows.first.locator(".documents-status")).to_have_text("Approved")
    discharge = page.locator(f"#documents-table tr[data-entry-uuid='{entry_of(registry, 'discharge')}']")
    expect(discharge).to_contain_text("某市第一人民医院")
    expect(discharge).to_contain_text("王建国")
    expect(discharge.locator(".documents-code").first).to_have_text("出院小结")
    shot(page, "documents")
    assert len(audits(registry, "110112", "integrator")) == 1

    # only the deprecated ones
    page.select_option("#documents-status", "deprecated")
    page.click("#documents-submit")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("血常规检验报告")
    page.go_back()
    expect(rows).to_have_count(5)

    # the replaced report: its replacement is a link
    deprecated.locator("a.documents-link").click()
    expect(page.locator("#documents-meta")).to_contain_text("血常规检验报告")
    replaced = page.locator("#documents-associations li[data-association='RPLC']")
    expect(replaced).to_contain_text("Replaced by")
    replaced.locator("a").click()
    expect(page.locator("#documents-entry")).to_have_attribute("data-entry-uuid", entry_of(registry, "lab2"))
    expect(page.locator("#documents-associations")).to_contain_text("Replaces")

    # the discharge summary, its CDA shown as text (GB2312 read as such), never as markup
    page.goto(f"{registry.engine.base}/console/#/documents/{entry_of(registry, 'discharge')}")
    meta_list = page.locator("#documents-meta")
    expect(meta_list).to_contain_text("出院小结")
    expect(meta_list).to_contain_text("18842-5")
    expect(meta_list).to_contain_text("Normal")
    page.click("#documents-show")
    shown = page.locator("pre#documents-content")
    expect(shown).to_contain_text('<?xml version="1.0" encoding="GB2312"?>')
    expect(shown).to_contain_text("<title>出院小结</title>")
    expect(shown).to_contain_text("&lt;script&gt;alert(1)&lt;/script&gt;")
    expect(
        page.locator("#documents-content-box title, #documents-content-box ClinicalDocument")
    ).to_have_count(0)
    shot(page, "documents-entry")
    (export,) = audits(registry, "110106", "integrator")
    assert registry.uids["discharge"] in str(export["objects"]) and PATIENT in str(export["patient_ids"])
    assert len(audits(registry, "110110", "integrator")) == 3


def test_the_pages_in_chinese_and_not_for_a_viewer(page: Page, registry: Registry) -> None:
    login(page, registry.engine.base, "auditor")
    page.click("#lang-toggle")
    page.click("#nav-documents")
    expect(page.locator("#documents-page h1")).to_have_text(re.compile("患者文档"))
    page.fill("#documents-patient_id", NID_A)  # the national ID: the default domain
    page.click("#documents-submit")
    expect(page.locator("#documents-table tr[data-entry-uuid]")).to_have_count(5)
    expect(page.locator("#documents-table .documents-status", has_text="已废弃")).to_have_count(1)
    page.click("#lang-toggle")
    page.click("#logout")

    login(page, registry.engine.base, "viewer")
    expect(page.locator("#nav-documents")).to_have_count(0)
