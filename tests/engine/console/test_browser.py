"""The web console driven as a person would, in real headless Chromium (Debian's chromium through
Playwright) against a running engine process: each role logs in, an integrator finds a message by
patient id, opens it and reprocesses it to one destination, an auditor may read but not reprocess and
finds their own view in the audit log (and its CSV), a viewer sees statistics and no message, a wrong password
is refused, the pages switch to Chinese.

Chromium, the engine process and screenshots: ``tests/browser.py``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select

from engine.store.schema import audit_events, deliveries, messages
from tests.browser import PASSWORD, ConsoleEngine, console_engine, hie, require_chromium, shot
from tests.browser import login as log_in
from tests.conftest import free_port, hl7_message
from tests.engine.test_crash_recovery import wait_until

pytestmark = pytest.mark.slow
require_chromium()
from playwright.sync_api import Page, expect  # noqa: E402

PATIENT = "E2E-PATIENT-4711"  # the integrator's test reprocesses this one's message
OTHER = "E2E-OTHER-1"  # the auditor's


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleEngine]:
    base = tmp_path_factory.mktemp("console-e2e")
    mllp = free_port()
    channel = (
        "id: adt\n"
        "description: ADT from the demo hospital\n"
        f"source: {{url: 'mllp://127.0.0.1:{mllp}'}}\n"
        "destinations:\n"
        f"  - {{id: archive, url: 'file://{base / 'archive'}'}}\n"
        f"  - {{id: copy, url: 'file://{base / 'copy'}'}}\n"
    )
    with console_engine(base, channels={"adt.yaml": channel}, listening=(mllp,)) as running:
        samples = base / "samples.hl7"
        samples.write_text(
            "\r".join(
                [
                    hl7_message("E2E-1", patient=PATIENT, name="李^秀英"),
                    hl7_message("E2E-2", patient=OTHER),
                    hl7_message("E2E-3", patient="E2E-OTHER-2", event="A08"),
                ]
            ),
            encoding="utf-8",
        )
        hie(running.config, "send", f"mllp://127.0.0.1:{mllp}", str(samples))

        def delivered() -> bool:
            with running.db.connect() as conn:
                states = conn.execute(select(deliveries.c.status)).scalars().all()
            return len(states) == 6 and set(states) == {"sent"}

        wait_until(delivered, 30, "the three messages delivered to both destinations")
        yield running


def login(page: Page, engine: ConsoleEngine, role: str, password: str = PASSWORD) -> None:
    log_in(page, engine.base, role, password)


def find_by_patient(page: Page, patient: str) -> str:
    """Search the message browser by patient id; the id of the one message found."""
    page.click("#nav-messages")
    page.fill("#search-form [name=patient_id]", patient)
    page.click("#search-submit")
    rows = page.locator("#results tr[data-message-id]")
    expect(rows).to_have_count(1)
    ident = rows.first.get_attribute("data-message-id")
    assert ident
    return ident


def audit_rows(db: Engine, event: str, user: str) -> list[dict[str, object]]:
    with db.connect() as conn:
        rows = conn.execute(
            select(audit_events).where(
                audit_events.c.event_id.like(event + "^%"), audit_events.c.user_id == user
            )
        ).all()
    return [dict(r._mapping) for r in rows]


# -- the tests ----------------------------------------------------------------------------------------


def test_a_wrong_password_is_refused_on_the_login_page(page: Page, engine: ConsoleEngine) -> None:
    login(page, engine, "integrator", password="not-the-password")
    expect(page.locator("#login-error")).to_be_visible()
    expect(page.locator("#user-name")).to_have_count(0)
    refused = [r for r in audit_rows(engine.db, "110114", "integrator") if r["outcome"] != 0]
    assert refused, "the refused login is in the audit trail"


def test_integrator_finds_a_message_by_patient_opens_it_and_reprocesses_it(
    page: Page, engine: ConsoleEngine
) -> None:
    login(page, engine, "integrator")
    expect(page.locator("#channel-table tr[data-channel='adt'] td[data-col='received']")).to_have_text(
        re.compile(r"^[1-9]")
    )
    shot(page, "dashboard")
    before = len(audit_rows(engine.db, "110110", "integrator"))

    ident = find_by_patient(page, PATIENT)
    row = page.locator(f"#results tr[data-message-id='{ident}']")
    expect(row).to_contain_text("E2E-1")
    expect(page.locator("#results")).not_to_contain_text("E2E-2")
    shot(page, "messages")

    row.locator("a.message-link").click()
    expect(page.locator(f"#message[data-message-id='{ident}']")).to_be_visible()
    expect(page.locator("#audit-notice")).to_be_visible()
    page.click("#view-segments")  # HL7 segment by segment, with the field names
    pid3 = page.locator("#segments tr[data-field='PID-3']")
    expect(pid3).to_be_visible()
    expect(pid3).to_contain_text("Patient Identifier List")
    expect(pid3).to_contain_text(PATIENT)
    expect(page.locator("#stage-raw")).to_contain_text("李^秀英")
    expect(page.locator(".stage[data-destination='archive']")).to_be_visible()
    expect(page.locator(".stage[data-destination='copy']")).to_be_visible()
    shot(page, "message-segments")
    page.click("#view-text")
    expect(page.locator("#stage-raw")).to_be_visible()
    shot(page, "message")
    assert len(audit_rows(engine.db, "110110", "integrator")) == before + 1, "the view was audited"

    page.click("#reprocess-button")
    page.uncheck("input[name='reprocess-destination'][value='archive']")
    page.click("#reprocess-confirm")
    link = page.locator("#reprocess-result a[href^='#/messages/']")
    expect(link).to_be_visible()
    href = link.get_attribute("href")
    assert href
    new_id = int(href.rsplit("/", 1)[1])
    assert new_id != int(ident)

    def redelivered() -> bool:
        with engine.db.connect() as conn:
            got = conn.execute(
                select(deliveries.c.destination, deliveries.c.status).where(deliveries.c.message_id == new_id)
            ).all()
        states = dict((d, st) for d, st in got)
        return states.get("copy") == "sent" and states.get("archive") in (None, "filtered")

    wait_until(redelivered, 30, "the reprocessed message sent to copy, not to archive")
    with engine.db.connect() as conn:
        origin = conn.execute(select(messages.c.reprocessed_from).where(messages.c.id == new_id)).scalar_one()
    assert origin == int(ident)
    exports = audit_rows(engine.db, "110106", "integrator")
    assert [r for r in exports if r["message_id"] == int(ident)], "the reprocessing was audited as an export"

    link.click()  # the new message opens from the result
    expect(page.locator(f"#message[data-message-id='{new_id}']")).to_be_visible()


def test_auditor_reads_but_cannot_reprocess_and_finds_views_in_the_audit_log(
    page: Page, engine: ConsoleEngine
) -> None:
    login(page, engine, "auditor")
    ident = find_by_patient(page, OTHER)
    page.locator(f"#results tr[data-message-id='{ident}'] a.message-link").click()
    expect(page.locator(f"#message[data-message-id='{ident}']")).to_be_visible()
    expect(page.locator("#reprocess-button")).to_have_count(0)
    assert audit_rows(engine.db, "110110", "auditor"), "the auditor's view was audited too"

    # the button is not offered, and the API behind it refuses the auditor's session as well
    status = page.evaluate(
        """async (id) => {
            const me = await (await fetch('/api/v1/session', {credentials: 'same-origin'})).json();
            const r = await fetch(`/api/v1/messages/${id}/reprocess`,
                {method: 'POST', headers: {'X-CSRF-Token': me.csrf_token}, credentials: 'same-origin'});
            return r.status;
        }""",
        ident,
    )
    assert status == 403
    assert any("may not" in str(r["outcome_description"]) for r in audit_rows(engine.db, "110113", "auditor"))

    page.click("#nav-audit")
    page.fill("#audit-form [name=patient_id]", OTHER)
    page.click("#audit-submit")
    table = page.locator("#audit-table")
    expect(table.locator("tr[data-audit-id]").filter(has_text="auditor").first).to_be_visible()
    expect(table).to_contain_text("Patient Record")
    shot(page, "audit")
    href = page.locator("#audit-csv").get_attribute("href")
    assert href and "patient_id=" + OTHER in href
    csv_text = page.evaluate("async (u) => (await fetch(u, {credentials: 'same-origin'})).text()", href)
    assert csv_text.count("\n") >= 2 and "auditor" in csv_text and OTHER in csv_text


def test_viewer_sees_statistics_and_never_a_message(page: Page, engine: ConsoleEngine) -> None:
    login(page, engine, "viewer")
    expect(page.locator("#channel-table tr[data-channel='adt']")).to_be_visible()
    expect(page.locator("#chart")).to_be_visible()
    expect(page.locator("#nav-messages")).to_have_count(0)
    expect(page.locator("#nav-audit")).to_have_count(0)
    with engine.db.connect() as conn:
        some = conn.execute(select(messages.c.id).limit(1)).scalar_one()
    page.goto(f"{engine.base}/console/#/messages/{some}")
    expect(page.locator("#error-banner")).to_be_visible()
    expect(page.locator("#stage-raw")).to_have_count(0)
    expect(page.locator("body")).not_to_contain_text(PATIENT)
    assert not audit_rows(engine.db, "110110", "viewer"), "no body was read for the viewer"


def test_admin_switches_the_console_to_chinese(page: Page, engine: ConsoleEngine) -> None:
    login(page, engine, "admin")
    english = page.locator("#nav-dashboard").inner_text()
    page.click("#lang-toggle")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    chinese = page.locator("#nav-dashboard").inner_text()
    assert chinese != english and re.search(r"[\u4e00-\u9fff]", chinese)
    shot(page, "dashboard-zh")
    page.reload()  # the choice is kept
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    page.click("#lang-toggle")
    expect(page.locator("html")).to_have_attribute("lang", "en")


def test_logout_ends_the_session(page: Page, engine: ConsoleEngine) -> None:
    login(page, engine, "admin")
    page.click("#logout")
    expect(page.locator("#login-form")).to_be_visible()
    status = page.evaluate("async () => (await fetch('/api/v1/stats')).status")
    assert status == 401


def test_a_message_is_found_by_free_text_in_its_content(page: Page, engine: ConsoleEngine) -> None:
    login(page, engine, "auditor")
    page.click("#nav-messages")
    page.fill("#search-form [name=text]", "ADT^A08")  # only E2E-3 is an A08
    rows = page.locator("#results tr[data-message-id]")

    def found() -> bool:  # the index follows the store by a few seconds: search again until it has it
        page.click("#search-submit")
        page.wait_for_load_state("networkidle")
        return rows.count() == 1

    wait_until(found, 30, "the A08 found by its text")
    expect(rows.first).to_contain_text("E2E-3")
    page.fill("#search-form [name=text]", "A0")  # too short to search: said so, nothing listed
    page.click("#search-submit")
    expect(page.locator("#error-banner")).to_contain_text("3 characters")
