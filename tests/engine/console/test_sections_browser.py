"""A plugin's console section in real Chromium (the test plugin ``demo_plugin``): it is in the nav of
the roles that may use it and not of the others, its page opens from there with its own words (in
both languages), its stylesheet and its path parts, and its buttons follow the role."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser import ConsoleEngine, console_engine, login, require_chromium

pytestmark = pytest.mark.slow
require_chromium()
from playwright.sync_api import Page, expect  # noqa: E402


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleEngine]:
    with console_engine(
        tmp_path_factory.mktemp("sections-e2e"), plugins=("tests.engine.console.demo_plugin",)
    ) as running:
        yield running


def test_the_section_opens_from_the_nav_with_its_words_and_style(page: Page, engine: ConsoleEngine) -> None:
    login(page, engine.base, "integrator")
    nav = page.locator("nav a")
    expect(page.locator("#nav-demo")).to_have_text("Demo")
    ids = [a.get_attribute("id") for a in nav.all()]
    assert ids.index("nav-messages") < ids.index("nav-demo"), "sections come after the console's own pages"
    page.click("#nav-demo")
    # the first page, then the rest with the "more" button (engine/console/static/paged.js)
    expect(page.locator("#demo-title")).to_have_text("2 items")
    expect(page.locator("#demo-items tbody td")).to_have_text(["alpha", "beta"])
    page.click("#demo-more")
    expect(page.locator("#demo-items tbody td")).to_have_text(["alpha", "beta", str(2**60)])
    expect(page.locator("#demo-title")).to_have_text("3 items")
    expect(page.locator("#demo-more")).to_be_hidden()
    expect(page.locator("#demo-title")).to_have_css("color", "rgb(1, 2, 3)")
    expect(page.locator("#nav-demo")).to_have_class("active")
    expect(page.locator("#demo-change")).to_be_visible()
    page.click("#lang-toggle")
    expect(page.locator("#nav-demo")).to_have_text("演示")
    expect(page.locator("#demo-title")).to_have_text("3 项")
    expect(page.locator("#demo-more")).to_be_hidden()
    assert page.title().startswith("演示")


def test_deeper_paths_reach_the_section_with_their_parts(page: Page, engine: ConsoleEngine) -> None:
    login(page, engine.base, "auditor")
    page.goto(engine.base + "/console/#/demo/person/hosp-a/P%2F1")
    expect(page.locator("#demo-params")).to_have_text("person|hosp-a|P/1")
    expect(page.locator("#demo-change")).to_have_count(0)  # an auditor may not change anything


def test_a_viewer_is_not_offered_the_section(page: Page, engine: ConsoleEngine) -> None:
    login(page, engine.base, "viewer")
    expect(page.locator("#nav-dashboard")).to_be_visible()
    expect(page.locator("#nav-demo")).to_have_count(0)
