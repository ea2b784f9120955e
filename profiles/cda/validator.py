"""The CDA upload validator: a WS/T 500 document in, a report of every finding out (china-hie.md §5.4).

In order, each step adding findings with their rule ids (a step that cannot run stops there):

1. **bytes**: larger than the limit (``xml.too-large``); a ``<? xml`` prolog (``xml.prolog``); a
   UTF-8 BOM is accepted;
2. **parse** with entities, DTDs and network access off: not well-formed (``xml.not-well-formed``,
   with a clearer message for attributes written without a space between them,
   ``xml.attribute-spacing``); a document type declaration (``xml.dtd``), refused outright;
3. **document type**: the root is ``ClinicalDocument`` (``document.root``); ``code/@code`` is a
   WS/T 500 document ``C00NN`` in ``2.16.156.10011.2.4`` (``document.code``); the templateId is that
   document's (``document.template-id``); the title is its title (``document.title``, a warning);
4. **schemas**: the China-extended CDA R2 schema (``schema.cda``), then the document's own
   schema (``schema.document``), every violation with its line and path;
5. **rules** declared in YAML (``profiles.cda.rules``): the header rules and the document type's;
6. **built-in checks** (``profiles.cda.checks``): OIDs, value sets by code-system OID, dates,
   empty numbers, the ID card number; and, when ``cda.institutions`` lists the platform's
   institutions, that the document's custodian is one of them (``header.institution-known``).

The validator holds no state between documents and may run on several threads at once.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from lxml import etree

from engine.mapping.codetables import CodeTable, CodeTables
from profiles.cda.checks import DEFAULT_ROOTS, DEFAULT_SEVERITIES, Checks, readable_path
from profiles.cda.documents import DOCUMENT_CODE_SYSTEM, document_type
from profiles.cda.report import Report, Severity
from profiles.cda.rules import Rule, RuleSet
from profiles.cda.schemas import china_cda, document_schema

__all__ = ["BUILT_IN_RULES", "CdaValidator", "Validated", "value_sets_by_system"]

V3 = "urn:hl7-org:v3"
_PARSER = etree.XMLParser(
    resolve_entities=False, load_dtd=False, no_network=True, dtd_validation=False, huge_tree=False
)
_BOM = b"\xef\xbb\xbf"
_BAD_PROLOG = re.compile(rb"\A\s*<\?\s+xml")
_NO_SPACE = re.compile(rb"[A-Za-z_][\w:.-]*\s*=\s*(?:\"[^\"<]*\"|'[^'<]*')[A-Za-z_][\w:.-]*")
_NS = re.compile(r"\{urn:hl7-org:v3\}")
_SEVERITY: dict[str, Severity] = {"error": "error", "warning": "warning"}
_CUSTODIAN_ID = "/".join(
    f"{{{V3}}}{n}" for n in ("custodian", "assignedCustodian", "representedCustodianOrganization", "id")
)

# The rules of the steps above with their default severity (the built-in checks' are in checks.py).
BUILT_IN_RULES: dict[str, Severity] = {
    "xml.too-large": "error",
    "xml.prolog": "error",
    "xml.not-well-formed": "error",
    "xml.attribute-spacing": "error",
    "xml.dtd": "error",
    "document.root": "error",
    "document.code": "error",
    "document.template-id": "error",
    "document.title": "warning",
    "header.institution-known": "error",
    "schema.cda": "error",
    "schema.document": "error",
    "rule.broken": "warning",
    **DEFAULT_SEVERITIES,
}


def value_sets_by_system(tables: CodeTables | None) -> dict[str, CodeTable]:
    """The value sets of the code tables, by their code system OID (the first one per OID)."""
    found: dict[str, CodeTable] = {}
    for table in tables or []:
        if table.kind == "value_set" and table.target_system:
            found.setdefault(table.target_system, table)
    return found


@dataclass
class Validated:
    report: Report
    root: etree._Element | None = None  # the parsed document, when it could be parsed


@dataclass
class CdaValidator:
    rules: RuleSet
    value_sets: Mapping[str, CodeTable] = field(default_factory=dict)
    severities: dict[str, Severity | None] = field(default_factory=dict)  # overrides; None: off
    max_bytes: int = 20 * 1024 * 1024
    roots: tuple[str, ...] = DEFAULT_ROOTS
    institutions: frozenset[str] = frozenset()  # the custodians the platform knows (empty: any)

    def __post_init__(self) -> None:
        self._checks = Checks(self.value_sets, self.severities, self.roots)

    def severity(self, rule: str) -> Severity | None:
        return self.severities[rule] if rule in self.severities else BUILT_IN_RULES.get(rule, "error")

    def rule_severity(self, rule: Rule) -> Severity | None:
        """A declared rule's severity as configured (None: off)."""
        return self.severities.get(rule.id, _SEVERITY.get(rule.severity))

    def _add(self, report: Report, rule: str, message: str, xpath: str = "", line: int | None = None) -> None:
        severity = self.severity(rule)
        if severity is not None:
            report.add(rule, severity, message, xpath, line)

    def validate(self, data: bytes, source: str = "document") -> Validated:
        report = Report(source)
        if len(data) > self.max_bytes:
            self._add(
                report, "xml.too-large", f"{len(data):,} bytes: more than the limit of {self.max_bytes:,}"
            )
            return Validated(report)
        if data.startswith(_BOM):
            data = data[len(_BOM) :]
        if _BAD_PROLOG.match(data):
            self._add(
                report, "xml.prolog", "the XML declaration is written '<? xml' (no space allowed)", line=1
            )
            return Validated(report)
        root = self._parse(data, report)
        if root is None:
            return Validated(report)
        code = self._document_type(root, report)
        if code is not None or root.tag == f"{{{V3}}}ClinicalDocument":
            self._schemas(root, code, report)
            self._rules(root, code, report)
            self._checks.run(root, report)
            self._institution(root, report)
        return Validated(report, root)

    # -- steps -------------------------------------------------------------------------------------
    def _parse(self, data: bytes, report: Report) -> etree._Element | None:
        try:
            root = etree.fromstring(data, _PARSER)
        except etree.XMLSyntaxError as exc:
            line = exc.lineno or None
            spaced = _NO_SPACE.search(data)
            if spaced is not None:
                at = data.count(b"\n", 0, spaced.start()) + 1
                self._add(
                    report,
                    "xml.attribute-spacing",
                    "attributes are written without a space between them: "
                    f"{spaced.group(0).decode('utf-8', 'replace')}",
                    line=at,
                )
            else:
                self._add(report, "xml.not-well-formed", f"not well-formed XML: {exc.msg}", line=line)
            return None
        info = root.getroottree().docinfo
        if info.doctype or info.internalDTD is not None:
            self._add(
                report,
                "xml.dtd",
                "a document type declaration (DTD) is not allowed in a CDA document",
                line=1,
            )
            return None
        return root

    def _document_type(self, root: etree._Element, report: Report) -> str | None:
        if root.tag != f"{{{V3}}}ClinicalDocument":
            self._add(
                report,
                "document.root",
                f"the root element is {root.tag}, not ClinicalDocument in urn:hl7-org:v3",
                "/" + etree.QName(root).localname,
                root.sourceline,
            )
            return None
        title = root.find(f"{{{V3}}}title")
        report.title = (title.text or "").strip() if title is not None else None
        code = root.find(f"{{{V3}}}code")
        value = (code.get("code") or "").strip() if code is not None else ""
        kind = document_type(value)
        if code is None or kind is None or code.get("codeSystem") != DOCUMENT_CODE_SYSTEM:
            what = f"code {value!r} in {code.get('codeSystem')!r}" if code is not None else "no code"
            self._add(
                report,
                "document.code",
                f"{what}: not a WS/T 500 document type (C0001-C0053 in {DOCUMENT_CODE_SYSTEM})",
                "/ClinicalDocument/code",
                code.sourceline if code is not None else root.sourceline,
            )
            return None
        report.document_code = kind.code
        templates = [t.get("root", "") for t in root.iterfind(f"{{{V3}}}templateId")]
        if kind.template_id not in templates:
            first = root.find(f"{{{V3}}}templateId")
            self._add(
                report,
                "document.template-id",
                f"{kind.code} {kind.title} has templateId {kind.template_id}, "
                f"not {', '.join(templates) or 'none'}",
                "/ClinicalDocument/templateId",
                (first if first is not None else root).sourceline,
            )
        if report.title is not None and not kind.title_matches(report.title):
            self._add(
                report,
                "document.title",
                f"{kind.code} is titled {kind.title!r}, not {report.title!r}",
                "/ClinicalDocument/title",
                title.sourceline if title is not None else None,
            )
        return kind.code

    def _schemas(self, root: etree._Element, code: str | None, report: Report) -> None:
        layers = [("schema.cda", china_cda())]
        own = document_schema(code) if code else None
        if own is not None:
            layers.append(("schema.document", own))
        tree = root.getroottree()
        for rule, schema in layers:
            if schema.validate(tree):
                continue
            for error in schema.error_log:
                found = tree.xpath(error.path) if error.path else []
                path = readable_path(found[0]) if found and isinstance(found[0], etree._Element) else ""
                self._add(report, rule, _NS.sub("", error.message), path, error.line or None)

    def _institution(self, root: etree._Element, report: Report) -> None:
        """The custodian (the uploading hospital) is one of ``cda.institutions``."""
        if not self.institutions:
            return
        ident = root.find(_CUSTODIAN_ID)
        code = (ident.get("extension") or "").strip() if ident is not None else ""
        if code and code not in self.institutions:
            self._add(
                report,
                "header.institution-known",
                f"the custodian {code} is not an institution of the platform (cda.institutions)",
                readable_path(ident) + "/@extension" if ident is not None else "",
                ident.sourceline if ident is not None else None,
            )

    def _rules(self, root: etree._Element, code: str | None, report: Report) -> None:
        for rule in self.rules.for_document(code):
            severity = self.rule_severity(rule)
            if severity is None:
                continue  # off
            try:
                nodes = rule.context(root) if rule.context is not None else [root]
                assert isinstance(nodes, list)
                for node in nodes:
                    if isinstance(node, etree._Element) and not rule.test(node):
                        report.add(rule.id, severity, rule.message, readable_path(node), node.sourceline)
            except etree.XPathError as exc:
                self._add(
                    report, "rule.broken", f"rule {rule.id} ({rule.source}) could not be evaluated: {exc}"
                )
