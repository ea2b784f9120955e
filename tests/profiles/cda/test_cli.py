"""``hie cda validate`` and ``hie cda rules`` as an integrator runs them: with the project's
``config.yaml``, with a configuration that raises a rule's severity, and without any."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from engine.cli.main import main
from tests.profiles.cda.test_validator import BREAKING, DATA, edit

CONFIG = Path(__file__).resolve().parents[3] / "config.yaml"


def hie(*args: str, config: Path = CONFIG) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, [*args, "--config", str(config)])
    return result.exit_code, result.stdout, result.stderr


def test_valid_documents_pass_and_the_summary_counts_them() -> None:
    code, out, err = hie("cda", "validate", "--quiet", *map(str, sorted(DATA.glob("*.xml"))))
    assert code == 0, out + err
    n = len(list(DATA.glob("*.xml")))
    assert n == 53  # one sample of every WS/T 500 document type
    assert out.count("accepted (0 error(s)") == n
    assert f"{n} file(s): {n} accepted, 0 rejected, 0 unreadable" in err


def test_a_rejected_document_prints_its_findings_and_exits_1(tmp_path: Path) -> None:
    bad = tmp_path / "出院小结-bad.xml"
    bad.write_bytes(edit("C0053", BREAKING["header.patient-name"][1]))
    code, out, _ = hie("cda", "validate", str(bad))
    assert code == 1
    assert "rejected (1 error(s)" in out and "header.patient-name" in out and "line" in out
    code, out, _ = hie("cda", "validate", str(bad), "--format", "json")
    report = json.loads(out)
    assert report["accepted"] is False and report["findings"][0]["rule"] == "header.patient-name"


def test_reports_written_to_a_folder_as_html(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    code, out, _ = hie(
        "cda", "validate", str(DATA / "C0053.xml"), "--format", "html", "--report-dir", str(reports)
    )
    assert code == 0 and "-> " in out
    page = (reports / "C0053.xml.html").read_text("utf-8")
    assert "<table>" in page and "C0053" in page


def test_an_unreadable_file_exits_2_and_the_others_are_still_checked(tmp_path: Path) -> None:
    code, out, err = hie("cda", "validate", str(tmp_path / "missing.xml"), str(DATA / "C0002.xml"))
    assert code == 2 and "missing.xml: cannot be read" in err and "C0002" in out


def test_the_configuration_raises_a_severity(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        CONFIG.read_text("utf-8").replace("  severities: {}", "  severities: {idcard.invalid: error}"),
        encoding="utf-8",
    )
    for folder in ("channels", "mappings"):
        (tmp_path / folder).symlink_to(CONFIG.parent / folder)
    bad = tmp_path / "card.xml"
    bad.write_bytes(edit("C0053", BREAKING["idcard.invalid"][1]))
    assert hie("cda", "validate", str(bad))[0] == 0  # a warning with the shipped configuration
    code, out, _ = hie("cda", "validate", str(bad), config=config)
    assert code == 1 and "idcard.invalid" in out
    code, out, _ = hie("cda", "rules", "--json", config=config)
    levels = {r["id"]: r["severity"] for r in json.loads(out)}
    assert levels["idcard.invalid"] == "error" and levels["C0053.section.11535-2"] == "error"


def test_a_severity_for_an_unknown_rule_is_a_configuration_problem(tmp_path: Path) -> None:
    rule = "no.such-rule"
    config = tmp_path / "config.yaml"
    text = CONFIG.read_text("utf-8").replace("  severities: {}", f"  severities: {{{rule}: error}}")
    config.write_text(text, encoding="utf-8")
    for folder in ("channels", "mappings"):
        (tmp_path / folder).symlink_to(CONFIG.parent / folder)
    result = CliRunner().invoke(main, ["check", str(config)])
    assert result.exit_code != 0 and rule in result.output + result.stderr
