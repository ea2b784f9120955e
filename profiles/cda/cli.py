"""``hie cda``: check WS/T 500 documents before sending them, as the platform will.

    hie cda validate discharge.xml                 # the report, one finding per line
    hie cda validate out/*.xml --format json       # one JSON report per document
    hie cda validate out/*.xml --report-dir reports --format html   # a report file per document
    hie cda rules                                  # every rule the platform applies, with its severity

The rules are the configuration's (``config.yaml``'s ``cda:`` section and rule files; the shipped
ones when there is no configuration). The exit status is 1 when a document has an error, 2 when a
file cannot be read. With many files a progress bar is shown on the terminal.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from engine.cli.common import config_path, load_or_exit
from profiles.cda.report import Report
from profiles.cda.setup import validator_for
from profiles.cda.validator import BUILT_IN_RULES, CdaValidator

__all__ = ["cda"]


def _validator(config: Path | None) -> CdaValidator:
    path = config_path(config)
    app = load_or_exit(config) if path.is_file() else None
    return validator_for(app)


@click.group()
def cda() -> None:
    """Validate WS/T 500 CDA documents as the platform does."""


@cda.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "json", "html"]), default="text")
@click.option(
    "--report-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="write each report to DIR/<file name>.<format> instead of printing it",
)
@click.option("--quiet", "-q", is_flag=True, help="print only the summary line of each document")
@click.option("--config", "-c", "config", type=click.Path(path_type=Path), default=None)
def validate(
    files: tuple[Path, ...], fmt: str, report_dir: Path | None, quiet: bool, config: Path | None
) -> None:
    """Validate FILES; print each report (or write it to --report-dir)."""
    validator = _validator(config)
    if report_dir is not None:
        report_dir.mkdir(parents=True, exist_ok=True)
    failed = unreadable = 0
    bar = len(files) > 5 and sys.stderr.isatty()
    with click.progressbar(files, label="validating", file=sys.stderr) if bar else _NoBar(files) as items:
        for file in items:
            try:
                data = file.read_bytes()
            except OSError as exc:
                click.echo(f"{file}: cannot be read: {exc.strerror or exc}", err=True)
                unreadable += 1
                continue
            report = validator.validate(data, str(file)).report
            failed += not report.accepted
            _emit(report, fmt, report_dir, file, quiet)
    if len(files) > 1:
        accepted = len(files) - failed - unreadable
        click.echo(
            f"{len(files)} file(s): {accepted} accepted, {failed} rejected, {unreadable} unreadable", err=True
        )
    if unreadable:
        sys.exit(2)
    if failed:
        sys.exit(1)


class _NoBar:
    """A context manager over the files, for when no progress bar is shown."""

    def __init__(self, files: tuple[Path, ...]) -> None:
        self.files = files

    def __enter__(self) -> tuple[Path, ...]:
        return self.files

    def __exit__(self, *exc: object) -> None:
        return None


def _emit(report: Report, fmt: str, report_dir: Path | None, file: Path, quiet: bool) -> None:
    text = (
        report.summary()
        if quiet
        else {"text": report.to_text, "json": report.to_json, "html": report.to_html}[fmt]()
    )
    if report_dir is None:
        click.echo(text)
        return
    out = report_dir / f"{file.name}.{'txt' if fmt == 'text' else fmt}"
    out.write_text(text + "\n", encoding="utf-8")
    click.echo(f"{report.summary()} -> {out}")


@cda.command("rules")
@click.option("--document", "-d", help="the rules of one document type (C0053)")
@click.option("--json", "as_json", is_flag=True)
@click.option("--config", "-c", "config", type=click.Path(path_type=Path), default=None)
def rules(document: str | None, as_json: bool, config: Path | None) -> None:
    """List the rules: built-in, then header rules, then each document type's."""
    validator = _validator(config)
    rows: list[dict[str, str]] = []
    for rule_id, default in BUILT_IN_RULES.items():
        level = validator.severity(rule_id)
        rows.append(
            {
                "id": rule_id,
                "severity": level or "off",
                "document": "",
                "test": "(built in)",
                "default": default,
            }
        )
    chosen = (
        validator.rules.for_document(document)
        if document
        else [
            *validator.rules.common,
            *(r for code in sorted(validator.rules.by_document) for r in validator.rules.by_document[code]),
        ]
    )
    for rule in chosen:
        level = validator.rule_severity(rule)
        rows.append(
            {
                "id": rule.id,
                "severity": level or "off",
                "document": rule.document or "",
                "test": rule.text,
                "default": rule.severity,
            }
        )
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False, indent=2))
        return
    for row in rows:
        click.echo(f"{row['severity']:7} {row['id']:40} {row['test']}")
