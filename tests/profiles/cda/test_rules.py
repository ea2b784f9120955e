"""Rule files: every problem named with its file and line when they are loaded; the platform's own
folder adds rules and replaces shipped ones by id."""

from __future__ import annotations

from pathlib import Path

from profiles.cda.rules import SHIPPED, load_rules
from tests.profiles.cda.test_validator import check, edit, make_validator, sample


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_the_shipped_rules_load_cleanly() -> None:
    rules, problems = load_rules(SHIPPED)
    assert problems == []
    assert len(rules.common) >= 20 and len(rules.by_document) >= 10


def test_each_problem_of_a_rule_file_is_named_with_its_line(tmp_path: Path) -> None:
    folder = write(
        tmp_path,
        "bad.yaml",
        "rules:\n"
        "  - id: a.one\n    assert: cda:title\n    message: m\n    severity: fatal\n"
        "  - id: a.two\n    assert: cda:title[\n    message: m\n"
        "  - id: a.three\n    assert: cda:title\n    colour: red\n    message: m\n"
        "  - id: a.four\n    message: no assert\n"
        "sections: [{code: 11535-2, name: x}]\n"
        "flavour: sweet\n",
    )
    _, problems = load_rules(folder)
    text = [str(p) for p in problems]
    assert any("bad.yaml:5" in t and "severity" in t for t in text)
    assert any("a.two" in t and "does not compile" in t for t in text)
    assert any("colour" in t for t in text)
    assert any("needs assert" in t for t in text)
    assert any("sections belong in a file with a document" in t for t in text)
    assert any("unknown key 'flavour'" in t for t in text)


def test_a_rule_defined_twice_in_a_file_and_a_bad_document_code(tmp_path: Path) -> None:
    folder = write(tmp_path, "twice.yaml", "rules:\n" + "  - {id: x.y, assert: 'true()', message: m}\n" * 2)
    write(folder, "code.yaml", "document: C53\nrules: []\n")
    _, problems = load_rules(folder)
    assert any("defined twice" in str(p) for p in problems)
    assert any("C0053" in str(p) and "code.yaml" in str(p) for p in problems)


def test_the_platform_folder_adds_and_replaces_rules(tmp_path: Path) -> None:
    folder = write(
        tmp_path,
        "city.yaml",
        "rules:\n"
        "  - id: header.language\n    severity: 'off'\n    assert: 'true()'\n    message: off here\n"
        "  - id: city.author-name\n    severity: error\n"
        "    assert: normalize-space(cda:author/cda:assignedAuthor/cda:assignedPerson/cda:name) != ''\n"
        "    message: 作者须有姓名\n",
    )
    rules, problems = load_rules(SHIPPED, folder)
    assert problems == []
    ids = {r.id for r in rules.common}
    assert "city.author-name" in ids and "header.language" not in ids
    validator = make_validator()
    validator.rules = rules
    nameless = edit(
        "C0053",
        lambda r: r.find(".//{urn:hl7-org:v3}assignedAuthor//{urn:hl7-org:v3}name").__setattr__("text", ""),
    )
    report = check(nameless, validator)
    assert [f.rule for f in report.errors] == ["city.author-name"]
    english = sample().replace(b'languageCode code="zh-CN"', b'languageCode code="en"')
    assert "header.language" not in {f.rule for f in check(english, validator).findings}


def test_a_missing_rules_folder_is_a_problem(tmp_path: Path) -> None:
    _, problems = load_rules(SHIPPED, tmp_path / "nowhere")
    assert len(problems) == 1 and "does not exist" in problems[0].message
