"""Document rules declared as data: YAML files, one for the rules every document meets
(``common.yaml``) and one per document type (``C0053.yaml``), so the platform tightens a rule by
editing a file, not code. The shipped rules are in ``profiles/cda/rules/``; ``cda.rules_dir`` in
config.yaml adds a folder whose files are read after them (a rule with the same id replaces the
shipped one; ``severity: off`` turns it off).

A rule is an XPath test in the Schematron manner::

    rules:
      - id: header.realm-code               # unique; findings carry it
        severity: error                     # error | warning | off
        context: cda:recordTarget/cda:patientRole   # optional: the nodes tested (default: the root)
        assert: cda:realmCode/@code = 'CN'  # true for every context node, or a finding at that node
        message: realmCode 须为 CN (WS/T 500 文档头)

Namespaces: ``cda:`` is ``urn:hl7-org:v3``, ``xsi:`` the schema-instance namespace. A per-document
file may also list what the document's body and header must hold, each becoming a rule with a
generated id::

    document: C0053
    sections:      [{code: 11535-2, name: 出院诊断}]           # C0053.section.11535-2
    entries:       [{code: DE05.01.024.00, name: 出院诊断编码}]  # C0053.entry.DE05.01.024.00
    identifiers:   [{root: 2.16.156.10011.1.12, name: 住院号}]   # C0053.identifier.2.16.156.10011.1.12

Every problem of a rule file (unknown key, bad severity, an XPath that does not compile, a second
rule with one id) is reported with its file and line when the rules are loaded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree

from engine.errors import ConfigProblem
from engine.yamlloc import Located, load_yaml

__all__ = ["NS", "SHIPPED", "Rule", "RuleSet", "load_rules"]

NS = {"cda": "urn:hl7-org:v3", "xsi": "http://www.w3.org/2001/XMLSchema-instance"}
SHIPPED = Path(__file__).resolve().parent / "rules"
_SEVERITIES = ("error", "warning", "off")
_RULE_KEYS = {"id", "severity", "context", "assert", "message"}
_FILE_KEYS = {"document", "description", "rules", "sections", "entries", "identifiers"}
_ITEM_KEYS = {
    "sections": {"code", "name", "severity"},
    "entries": {"code", "name", "severity"},
    "identifiers": {"root", "name", "severity"},
}
_CODE = re.compile(r"^C\d{4}$")
_ROOT = "/cda:ClinicalDocument"
_BODY = "cda:component/cda:structuredBody/cda:component/cda:section"
_PATIENT_IDS = "cda:recordTarget/cda:patientRole//cda:id"


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str  # error | warning | off
    message: str
    test: etree.XPath  # boolean, evaluated at each context node
    context: etree.XPath | None  # None: the document element
    source: str  # file:line, for the report of a rule that fails to evaluate
    document: str | None = None  # C00NN for a per-document rule, None for every document
    text: str = ""  # the assert, as written


@dataclass
class RuleSet:
    common: list[Rule]
    by_document: dict[str, list[Rule]]

    def for_document(self, code: str | None) -> list[Rule]:
        return [*self.common, *self.by_document.get(code or "", [])]

    def __len__(self) -> int:
        return len(self.common) + sum(len(r) for r in self.by_document.values())


def load_rules(*folders: Path) -> tuple[RuleSet, list[ConfigProblem]]:
    """Every ``*.yaml`` of ``folders`` in order (later files replace rules of the same id)."""
    problems: list[ConfigProblem] = []
    found: dict[str, Rule] = {}
    for folder in folders:
        if not folder.is_dir():
            if folder != SHIPPED:
                problems.append(ConfigProblem(str(folder), None, "", "the rules folder does not exist"))
            continue
        for file in sorted(folder.glob("*.yaml")):
            loc = load_yaml(file, {}, strings=True)
            problems += loc.problems
            if loc.problems:
                continue
            seen: set[str] = set()
            for rule in _read_file(loc, problems):
                if rule.id in seen:
                    problems.append(ConfigProblem(loc.file, None, "", f"rule {rule.id} is defined twice"))
                seen.add(rule.id)
                found[rule.id] = rule
    active = [r for r in found.values() if r.severity != "off"]
    by_document: dict[str, list[Rule]] = {}
    for rule in active:
        if rule.document:
            by_document.setdefault(rule.document, []).append(rule)
    return RuleSet([r for r in active if not r.document], by_document), problems


def _read_file(loc: Located, problems: list[ConfigProblem]) -> Iterable[Rule]:
    data = loc.data
    if not isinstance(data, dict):
        problems.append(loc.problem((), "a rules file is a mapping (rules: ..., document: ...)"))
        return
    for key in data:
        if key not in _FILE_KEYS:
            problems.append(
                loc.problem((key,), f"unknown key {key!r} (one of {', '.join(sorted(_FILE_KEYS))})")
            )
    document = data.get("document")
    if document is not None and not (isinstance(document, str) and _CODE.match(document)):
        problems.append(loc.problem(("document",), f"document must be a code like C0053, not {document!r}"))
        return
    yield from _declared(loc, document, problems)
    for i, item in enumerate(data.get("rules") or []):
        rule = _rule(loc, ("rules", i), item, document, problems)
        if rule is not None:
            yield rule


def _declared(loc: Located, document: str | None, problems: list[ConfigProblem]) -> Iterable[Rule]:
    """The ``sections``, ``entries`` and ``identifiers`` of a per-document file, as rules."""
    for kind in ("sections", "entries", "identifiers"):
        items = loc.data.get(kind) or []
        if items and document is None:
            problems.append(loc.problem((kind,), f"{kind} belong in a file with a document: C00NN"))
            continue
        for i, item in enumerate(items):
            where = (kind, i)
            if not isinstance(item, dict):
                problems.append(loc.problem(where, f"each of {kind} is a mapping"))
                continue
            unknown = set(item) - _ITEM_KEYS[kind]
            if unknown:
                problems.append(loc.problem(where, f"unknown key(s) {', '.join(sorted(unknown))}"))
            key = "root" if kind == "identifiers" else "code"
            value, name = str(item.get(key, "")).strip(), str(item.get("name", "")).strip()
            if not value or "'" in value:
                problems.append(loc.problem(where, f"{key} is required (and has no quotes)"))
                continue
            if kind == "sections":
                test = f"{_BODY}[cda:code/@code='{value}']"
                # a few WS/T 500 sections are coded with a data element, not LOINC (C0051)
                system = "data element" if value.startswith("DE") else "LOINC"
                message = f"缺少 {name} 章节 (section {system} {value})"
            elif kind == "entries":
                test = f"{_BODY}//cda:*[cda:code/@code='{value}']"
                message = f"缺少 {name} 条目 (entry {value})"
            else:
                test = f"{_PATIENT_IDS}[@root='{value}' and normalize-space(@extension)!='']"
                message = f"缺少{name}标识 (id root {value})"
            rule_id = f"{document}.{kind[:-1] if kind != 'entries' else 'entry'}.{value}"
            spec = {
                "id": rule_id,
                "severity": item.get("severity", "error"),
                "assert": test,
                "message": message,
            }
            rule = _rule(loc, where, spec, document, problems)
            if rule is not None:
                yield rule


def _rule(
    loc: Located, where: tuple[str | int, ...], item: Any, document: str | None, problems: list[ConfigProblem]
) -> Rule | None:
    if not isinstance(item, dict):
        problems.append(loc.problem(where, "a rule is a mapping (id, severity, assert, message)"))
        return None
    unknown = set(item) - _RULE_KEYS
    if unknown:
        problems.append(loc.problem(where, f"unknown key(s) {', '.join(sorted(unknown))}"))
        return None
    missing = [k for k in ("id", "assert", "message") if not str(item.get(k, "")).strip()]
    if missing:
        problems.append(loc.problem(where, f"a rule needs {', '.join(missing)}"))
        return None
    severity = str(item.get("severity", "error"))
    if severity not in _SEVERITIES:
        problems.append(loc.problem((*where, "severity"), f"severity is one of {', '.join(_SEVERITIES)}"))
        return None
    try:
        test = etree.XPath(f"boolean({item['assert']})", namespaces=NS)
        context = etree.XPath(str(item["context"]), namespaces=NS) if item.get("context") else None
    except etree.XPathSyntaxError as exc:
        problems.append(loc.problem(where, f"rule {item['id']}: the XPath does not compile: {exc}"))
        return None
    line = loc.line_of(where)
    return Rule(
        id=str(item["id"]),
        severity=severity,
        message=str(item["message"]),
        test=test,
        context=context,
        source=f"{loc.file}:{line}" if line else loc.file,
        document=document,
        text=str(item["assert"]),
    )
