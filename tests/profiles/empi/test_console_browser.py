"""The console's empi section in real headless Chromium against an ``hie run`` process: two hospitals
feed their patients over MLLP (``hie send`` to the ITI-8 channel), three of them too uncertain to link
by themselves; an integrator links one review, finds the person by its patient id and sees both
records as one person, unlinks one and links it back with the link form; an auditor sees the queue
and a person without a single button that changes anything.

Chromium, the engine process and screenshots: ``tests/browser.py``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from engine.store.schema import audit_events
from profiles.empi.schema import records
from tests.browser import ConsoleEngine, console_engine, hie, login, require_chromium, shot
from tests.conftest import free_port
from tests.profiles.conftest import NID_B, ROOT

pytestmark = pytest.mark.slow
require_chromium()
from playwright.sync_api import Page, expect  # noqa: E402

A = "HOSP_A&1.2.156.112604.1.1&ISO"
B = "HOSP_B&1.2.156.112605.1.1&ISO"
NATIONAL = "2.16.156.10011.1.3"
PEOPLE = [  # (sender, facility, PID-3, name, birth date, sex)
    ("HIS_A", "HOSP_A", f"A1001^^^{A}^PI", "张^伟", "19700101", "M"),
    ("HIS_A", "HOSP_A", f"A1002^^^{A}^PI", "王^芳", "19880808", "F"),
    ("HIS_A", "HOSP_A", f"A1003^^^{A}^PI", "李^娜", "19800202", "F"),
    ("HIS_A", "HOSP_A", f"A1004^^^{A}^PI~{NID_B}^^^&{NATIONAL}&ISO^NI", "林^秀英", "19900721", "F"),
    ("HIS_B", "HOSP_B", f"B2001^^^{B}^PI", "张^伟", "19700101", "M"),  # review: same name, birth, sex
    ("HIS_B", "HOSP_B", f"B2002^^^{B}^PI", "WANG^FANG", "19880808", "F"),  # review: 王芳 in pinyin
    ("HIS_B", "HOSP_B", f"B2003^^^{B}^PI", "李^娜", "19800202", "F"),  # review
    ("HIS_B", "HOSP_B", f"B2004^^^{B}^PI", "刘^洋", "19990909", "M"),  # nobody like them
    ("HIS_B", "HOSP_B", f"B2005^^^{B}^PI", "林^秀英", "19900721", "F"),  # review: no national ID to decide
]


def feed_file() -> str:
    out = []
    for n, (app, facility, pid3, name, born, sex) in enumerate(PEOPLE):
        out.append(
            f"MSH|^~\\&|{app}|{facility}|PIX|CITY_HIE|20261203090000||ADT^A01^ADT_A01|E2E-{n}|P|2.5"
            "|||||CHN|UNICODE UTF-8\rEVN|A01|20261203090000\r"
            f"PID|1||{pid3}||{name}||{born}|{sex}\rPV1|1|O\r"
        )
    return "".join(out)


def empi_section() -> str:
    text = (ROOT / "config.yaml").read_text("utf-8")
    found = re.search(r"^empi:\n(?:(?:[ #].*)?\n)*", text, re.MULTILINE)
    assert found is not None
    return found.group(0)


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleEngine]:
    base = tmp_path_factory.mktemp("empi-e2e")
    (base / "mappings").symlink_to(ROOT / "mappings")
    port = free_port()
    feed = re.sub(
        r"127\.0\.0\.1:\d+", f"127.0.0.1:{port}", (ROOT / "channels" / "pix-feed.yaml").read_text("utf-8")
    )
    with console_engine(base, empi_section(), {"pix-feed.yaml": feed}, listening=(port,)) as running:
        (base / "feed.hl7").write_text(feed_file(), encoding="utf-8")
        hie(running.config, "send", f"mllp://127.0.0.1:{port}", str(base / "feed.hl7"))
        yield running


def person_of(engine: ConsoleEngine, domain: str, value: str) -> int:
    with engine.db.connect() as conn:
        found = conn.execute(
            select(records.c.person_id).where(records.c.domain == domain, records.c.value == value)
        ).scalar_one()
    return int(found)


def confirm(page: Page) -> None:
    expect(page.locator("#empi-confirm")).to_be_visible()
    page.click("#empi-confirm-ok")


def test_an_integrator_links_a_review_and_the_two_records_are_one_person(
    page: Page, engine: ConsoleEngine
) -> None:
    login(page, engine.base, "integrator")
    page.click("#nav-empi")
    reviews = page.locator("#empi-reviews tr[data-review-id]")
    expect(reviews).to_have_count(4)
    # best first: the three exact matches, then Hanzi against pinyin
    expect(reviews.nth(3)).to_have_attribute("data-record", "hospital-b:B2002")
    # the candidate's national ID, masked but for its last four characters
    expect(page.locator("#empi-reviews tr[data-record='hospital-b:B2005'] .empi-candidates")).to_contain_text(
        "**************0240"
    )
    first = page.locator("#empi-reviews tr[data-record='hospital-b:B2001']")
    expect(first.locator(".empi-incoming")).to_contain_text("张伟")
    expect(first.locator(".empi-incoming")).to_contain_text("1970-01-01")
    expect(first.locator(".empi-candidates")).to_contain_text("hospital-a:A1001")
    expect(first.locator(".empi-score")).to_contain_text("100%")
    shot(page, "empi")

    assert person_of(engine, "hospital-b", "B2001") != person_of(engine, "hospital-a", "A1001")
    first.locator(".empi-link").click()
    expect(page.locator("#empi-confirm-text")).to_contain_text("hospital-b:B2001")
    page.click("#empi-confirm-cancel")  # changed its mind: nothing happens
    expect(reviews).to_have_count(4)
    first.locator(".empi-link").click()
    confirm(page)
    expect(page.locator("#empi-result")).to_contain_text("linked to the person of hospital-a:A1001")
    expect(reviews).to_have_count(3)  # the page loaded the queue again
    expect(page.locator("#empi-open-count")).to_have_text("3")
    assert person_of(engine, "hospital-b", "B2001") == person_of(engine, "hospital-a", "A1001")

    # found by its patient id, the person shows both records
    page.fill("#empi-search", "A1001")
    page.click("#empi-search-submit")
    found = page.locator("#empi-search-results tr[data-record-id]")
    expect(found).to_have_count(1)
    found.first.locator("a.empi-record-link").click()
    linked = page.locator("#empi-records tr[data-record-id]")
    expect(linked).to_have_count(2)
    expect(page.locator("#empi-records tr[data-value='B2001']")).to_contain_text("张伟")
    expect(page.locator("#empi-history")).to_contain_text("review: linked")
    shot(page, "empi-person")

    # unlink B2001 again, then link it back with the link form
    page.locator("#empi-records tr[data-value='B2001'] .empi-unlink").click()
    confirm(page)
    expect(page.locator("#empi-result")).to_contain_text("hospital-b:B2001 is now a person of its own")
    expect(linked).to_have_count(1)
    assert person_of(engine, "hospital-b", "B2001") != person_of(engine, "hospital-a", "A1001")
    page.select_option("#empi-link-domain", "hospital-b")
    page.fill("#empi-link-value", "B2001")
    page.click("#empi-link-submit")
    confirm(page)
    expect(page.locator("#empi-result")).to_contain_text(
        "hospital-a:A1001 linked to the person of hospital-b:B2001"
    )
    expect(linked).to_have_count(2)
    assert person_of(engine, "hospital-b", "B2001") == person_of(engine, "hospital-a", "A1001")


def test_an_auditor_sees_the_queue_and_a_person_without_buttons(page: Page, engine: ConsoleEngine) -> None:
    login(page, engine.base, "auditor")
    page.click("#nav-empi")
    reviews = page.locator("#empi-reviews tr[data-review-id]")
    expect(reviews.first).to_be_visible()
    expect(page.locator("#empi-reviews tr[data-record='hospital-b:B2003']")).to_contain_text("李娜")
    expect(page.locator("#empi-reviews button")).to_have_count(0)
    page.fill("#empi-search", "zhang")  # pinyin finds the Hanzi name
    page.click("#empi-search-submit")
    expect(page.locator("#empi-search-results tr[data-record-id]")).to_have_count(2)
    page.locator("#empi-search-results tr[data-value='A1001'] a").click()
    expect(page.locator("#empi-records tr[data-record-id]").first).to_be_visible()
    expect(page.locator("#empi-person button")).to_have_count(0)
    expect(page.locator("#empi-link-form")).to_have_count(0)
    expect(page.locator("#empi-merge-form")).to_have_count(0)
    with engine.db.connect() as conn:
        seen = conn.execute(
            select(audit_events.c.event_id, audit_events.c.patient_ids).where(
                audit_events.c.user_id == "auditor"
            )
        ).all()
    reads = [p for e, p in seen if e.startswith("110110^") and p]
    assert any("B2003^^^HOSP_B" in p for p in reads)  # the queue
    assert any("A1001^^^HOSP_A" in p for p in reads)  # the person
    assert any(e.startswith("110112^") for e, _ in seen)  # the search
