"""The validator's report: every finding with its rule id, severity, XPath, line and message, as JSON
(for programs and the message store), as text (for the CLI) and as HTML (for a hospital's staff).

A document is accepted when no finding is an error; warnings travel with it.
"""

from __future__ import annotations

import html
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

__all__ = ["Finding", "Report", "Severity"]

Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Finding:
    rule: str  # e.g. header.template-id, schema.document, C0053.section.11535-2
    severity: Severity
    message: str
    xpath: str = ""  # /ClinicalDocument/recordTarget/patientRole/patient/id[1]/@extension
    line: int | None = None


@dataclass
class Report:
    source: str  # a file name, or a message id
    document_code: str | None = None  # C00NN, when the document says one
    title: str | None = None
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]

    @property
    def accepted(self) -> bool:
        return not self.errors

    def add(
        self, rule: str, severity: Severity, message: str, xpath: str = "", line: int | None = None
    ) -> None:
        self.findings.append(Finding(rule, severity, message, xpath, line))

    def summary(self) -> str:
        verdict = "accepted" if self.accepted else "rejected"
        what = f"{self.document_code} {self.title or ''}".strip() if self.document_code else "document"
        return (
            f"{self.source}: {what} {verdict} ({len(self.errors)} error(s), {len(self.warnings)} warning(s))"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "document_code": self.document_code,
            "title": self.title,
            "accepted": self.accepted,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "findings": [asdict(f) for f in self.findings],
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), ensure_ascii=False, indent=2)

    def to_text(self) -> str:
        lines = [self.summary()]
        for f in self.findings:
            where = f"line {f.line}" if f.line else "-"
            lines.append(f"  {f.severity:7} {f.rule:32} {where:9} {f.message}")
            if f.xpath:
                lines.append(f"  {'':7} {'':32} {'':9} at {f.xpath}")
        return "\n".join(lines)

    def to_html(self) -> str:
        rows = "".join(
            f'<tr class="{f.severity}"><td>{f.severity}</td><td><code>{html.escape(f.rule)}</code></td>'
            f"<td>{f.line or ''}</td><td>{html.escape(f.message)}</td>"
            f"<td><code>{html.escape(f.xpath)}</code></td></tr>"
            for f in self.findings
        )
        return (
            '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">'
            f"<title>{html.escape(self.summary())}</title><style>"
            "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}"
            "tr.error td:first-child{color:#b00;font-weight:bold}tr.warning td:first-child{color:#a60}"
            "</style></head><body>"
            f"<h1>{html.escape(self.summary())}</h1>"
            "<table><tr><th>severity</th><th>rule</th><th>line</th><th>message</th><th>XPath</th></tr>"
            f"{rows}</table></body></html>"
        )
