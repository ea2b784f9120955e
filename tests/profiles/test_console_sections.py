"""The shipped console sections' files (``profiles/*/pages``), as ``tests/engine/console/test_static.py``
checks the console's own: the same words in English and Chinese, every key under the section's id,
every word a page asks for present, and no script that turns text into HTML or code."""

from __future__ import annotations

import json
import re

import pytest

from engine.console.sections import ConsoleSection, check_sections
from profiles.plugin import PLUGINS

SECTIONS = [s for p in PLUGINS for s in p.console]
_FORBIDDEN = re.compile(r"\b(innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval|Function)\s*[=(]")
_STYLE_ATTRIBUTE = re.compile(r"""['"]style['"]\s*:""")


def test_the_shipped_sections_are_the_four_and_well_formed() -> None:
    assert [s.id for s in SECTIONS] == ["empi", "documents", "uploads", "studies"]
    assert check_sections(SECTIONS) == []


@pytest.mark.parametrize("section", SECTIONS, ids=lambda s: s.id)
def test_a_sections_words_are_in_both_languages_under_its_id(section: ConsoleSection) -> None:
    folder = section.static
    ident = section.id
    en = json.loads((folder / "en.json").read_text(encoding="utf-8"))
    zh = json.loads((folder / "zh.json").read_text(encoding="utf-8"))
    assert set(en) == set(zh), f"only in en: {set(en) - set(zh)}; only in zh: {set(zh) - set(en)}"
    assert all(k.startswith(f"{ident}.") for k in en), [k for k in en if not k.startswith(f"{ident}.")]
    assert f"{ident}.nav" in en
    assert all(isinstance(v, str) and v.strip() for v in [*en.values(), *zh.values()])
    for key in en:
        assert set(re.findall(r"\{\w+\}", en[key])) == set(re.findall(r"\{\w+\}", zh[key])), key
    assert re.search(r"[\u4e00-\u9fff]", zh[f"{ident}.nav"])
    scripts = {p.name: p.read_text(encoding="utf-8") for p in folder.glob("*.js")}
    used = {k for text in scripts.values() for k in re.findall(rf"\bt\('({re.escape(ident)}\.[\w.]+)'", text)}
    assert used, "the pages use t('...')"
    assert used <= set(en), f"missing from the dictionaries: {sorted(used - set(en))}"


@pytest.mark.parametrize("section", SECTIONS, ids=lambda s: s.id)
def test_no_section_script_turns_text_into_html_or_code(section: ConsoleSection) -> None:
    for path in section.static.glob("*.js"):
        text = path.read_text(encoding="utf-8")
        assert not _FORBIDDEN.search(text), f"{path}: {_FORBIDDEN.search(text)}"
        assert not _STYLE_ATTRIBUTE.search(text), f"{path}: inline styles are refused by the CSP"
