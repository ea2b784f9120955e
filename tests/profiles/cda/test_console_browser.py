"""The console's uploads section in real headless Chromium against an ``hie run`` process: three
hospitals upload CDA documents through HIPMessageServer (SOAP over HTTP, as their platforms do); an
admin reads the month's statistics with both charts, follows one hospital to its rejected documents
and opens a report with its findings and its message; a viewer sees the statistics without a way to
the reports.

Chromium, the engine process and screenshots: ``tests/browser.py``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select, update

from profiles.cda.schema import uploads
from profiles.cda.stats import rollup_day
from tests.browser import ConsoleEngine, console_engine, hie, login, require_chromium, shot
from tests.conftest import free_port
from tests.profiles.cda.test_console import (
    MORE_INSTITUTIONS,
    NAMES,
    SEVERAL,
    SHANGHAI,
    TITLES,
    A,
    B,
    C,
    document,
)
from tests.profiles.conftest import ROOT
from tests.profiles.hip.conftest import SOAP12, ack_of, call_envelope, register_message, result_of

pytestmark = pytest.mark.slow
require_chromium()
from playwright.sync_api import Page, expect  # noqa: E402

CHANNELS = ("pix-feed", "xds-registry", "xds-repository", "hip")
# (institution, document type, the rule its example breaks, or None): 14 documents, 6 rejected
SENT: list[tuple[str, str, str | tuple[str, ...] | None]] = [
    (A, "C0002", None),
    (A, "C0002", None),
    (A, "C0053", None),
    (A, "C0049", None),
    (A, "C0053", "header.patient-name"),
    (B, "C0049", None),
    (B, "C0053", None),
    (B, "C0002", "header.realm-code"),
    (B, "C0002", SEVERAL),
    (B, "C0053", "header.patient-name"),
    (C, "C0002", None),
    (C, "C0002", None),
    (C, "C0053", "document.template-id"),
    (C, "C0002", "header.type-id"),
]


def sections() -> str:
    """The sample config's empi:, xds: and cda: sections, with two more institutions."""
    text = (ROOT / "config.yaml").read_text("utf-8")
    out = []
    for name in ("empi", "xds", "cda"):
        found = re.search(rf"^{name}:\n(?:(?:[ #].*)?\n)*", text, re.MULTILINE)
        assert found is not None, name
        out.append(found.group(0))
    joined = "".join(out)
    at = joined.index("  timezone: Asia/Shanghai")
    return joined[:at] + MORE_INSTITUTIONS + joined[at:]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleEngine]:
    base = tmp_path_factory.mktemp("uploads-e2e")
    (base / "mappings").symlink_to(ROOT / "mappings")
    moved: dict[str, str] = {}

    def move(m: re.Match[str]) -> str:
        moved.setdefault(m.group(0), f"127.0.0.1:{free_port()}")
        return moved[m.group(0)]

    channels = {
        f"{name}.yaml": re.sub(
            r"127\.0\.0\.1:\d+", move, (ROOT / "channels" / f"{name}.yaml").read_text("utf-8")
        )
        for name in CHANNELS
    }
    ports = {name: int(re.findall(r"127\.0\.0\.1:(\d+)", channels[f"{name}.yaml"])[0]) for name in CHANNELS}
    with console_engine(base, sections(), channels, listening=(ports["pix-feed"], ports["hip"])) as running:
        hie(running.config, "send", f"mllp://127.0.0.1:{ports['pix-feed']}",
            str(ROOT / "tests" / "data" / "empi" / "feed-hospital-a.hl7"))  # fmt: skip
        url = f"http://127.0.0.1:{ports['hip']}/hip"
        with httpx.Client(timeout=60) as client:
            for institution, code, broken in SENT:
                message = register_message(document(code, institution, broken), code=code, title=TITLES[code])
                answer = client.post(
                    url, content=call_envelope("S0014", message), headers={"Content-Type": SOAP12}
                )
                ack, details = ack_of(result_of(answer.content))
                assert ack == ("AE" if broken else "AA"), (institution, code, broken, details)
        spread_over_the_month(running)
        yield running


def spread_over_the_month(running: ConsoleEngine) -> None:
    """The uploads as if they had come over the last days (of this month only), each day rolled up
    as the nightly job does: the trend chart has days to show."""
    today = dt.datetime.now(SHANGHAI).date()
    with running.db.begin() as conn:
        ids = conn.execute(select(uploads.c.id).order_by(uploads.c.id)).scalars().all()
        days = set()
        for n, ident in enumerate(ids):
            day = today - dt.timedelta(days=min(n % 6, today.day - 1))
            days.add(day)
            at = dt.datetime.combine(day, dt.time(9, n), SHANGHAI).astimezone(dt.UTC).replace(tzinfo=None)
            conn.execute(update(uploads).where(uploads.c.id == ident).values(received_at=at))
        for day in days:
            rollup_day(conn, day, SHANGHAI)


def figures(page: Page, institution: str) -> list[str]:
    row = page.locator(f"#uploads-table tr[data-institution='{institution}']")
    return [
        row.locator(f"[data-col='{c}']").inner_text().strip() for c in ("received", "accepted", "rejected")
    ]


def test_admin_reads_the_statistics_and_a_rejected_documents_report(
    engine: ConsoleEngine, page: Page
) -> None:
    login(page, engine.base, "admin")
    page.click("#nav-uploads")
    rows = page.locator("#uploads-table tbody tr[data-institution]")
    expect(rows).to_have_count(3)
    this_month = dt.datetime.now(SHANGHAI).strftime("%Y-%m")
    expect(page.locator("#uploads-month")).to_have_value(this_month)
    assert figures(page, A) == ["5", "4", "1"]
    assert figures(page, B) == ["5", "2", "3"]
    assert figures(page, C) == ["4", "2", "2"]
    a = page.locator(f"#uploads-table tr[data-institution='{A}']")
    expect(a.locator("[data-col='institution']")).to_contain_text("某市第一人民医院")
    expect(a.locator("[data-col='completeness']")).to_have_text("100%")  # C0002, C0049, C0053
    expect(page.locator(f"#uploads-table tr[data-institution='{B}'] [data-col='reasons']")).to_contain_text(
        "header.realm-code 2"
    )
    expect(page.locator("#uploads-table tfoot [data-col='received']")).to_have_text("14")
    # both charts: a stacked bar per institution, a column per day of the month
    expect(page.locator("#uploads-chart g.bar-group")).to_have_count(3)
    expect(page.locator(f"#uploads-chart g[data-institution='{B}'] rect.bar-rejected")).to_have_count(1)
    expect(page.locator("#uploads-trend rect.bar-accepted").first).to_be_visible()
    assert page.locator("#uploads-trend g.bar-group").count() >= 28
    shot(page, "uploads")

    # B's rejected documents, then the newest one's report
    page.click(f"#uploads-table tr[data-institution='{B}'] [data-col='rejected'] a")
    listed = page.locator("#uploads-reports tbody tr[data-upload-id]")
    expect(listed).to_have_count(3)
    expect(page.locator("#uploads-reports tbody tr[data-status='accepted']")).to_have_count(0)
    expect(page.locator("#uploads-filter-institution")).to_have_value(B)
    expect(listed.first).to_contain_text(NAMES[B])
    listed.filter(has_text="header.type-id").locator("a.report-link").click()
    findings = page.locator("#uploads-findings tbody tr")
    expect(findings).to_have_count(3)
    assert [findings.nth(i).get_attribute("data-severity") for i in range(3)] == ["error", "error", "warning"]
    expect(page.locator("#uploads-findings tr[data-rule='idcard.sex']")).to_contain_text("female")
    expect(page.locator("#uploads-report-page h1")).to_contain_text("C0002 门(急)诊病历")
    link = page.locator("#uploads-message-link")
    href = link.get_attribute("href") or ""
    assert re.fullmatch(r"#/messages/\d+", href), href
    shot(page, "uploads-report")
    link.click()
    expect(page.locator("#nav-messages")).to_have_class("active")
    expect(page.locator("body")).to_contain_text("HIPMessageServer")


def test_a_viewer_sees_the_statistics_and_no_report(engine: ConsoleEngine, page: Page) -> None:
    login(page, engine.base, "viewer")
    page.click("#nav-uploads")
    expect(page.locator("#uploads-table tbody tr[data-institution]")).to_have_count(3)
    assert figures(page, C) == ["4", "2", "2"]
    expect(page.locator("#uploads-chart")).to_be_visible()
    expect(page.locator("#uploads-table a")).to_have_count(0)
    expect(page.locator("#uploads-all-reports")).to_have_count(0)
    # the month picker: a month without uploads shows the institutions with nothing
    page.fill("#uploads-month", "2020-02")
    page.click("#uploads-show")
    expect(page.locator(f"#uploads-table tr[data-institution='{A}'] [data-col='received']")).to_have_text("0")
    assert "month=2020-02" in page.url
    # and in Chinese
    page.click("#lang-toggle")
    expect(page.locator("#uploads-page h1")).to_have_text("CDA 文档上传统计")
    expect(page.locator("#uploads-table thead")).to_contain_text("完整率")
