"""The validator's built-in checks: what a rule file cannot say in XPath, done in one pass over the
document's elements (china-hie.md §5.4). Each finding carries its rule id; ``cda.severities`` in
config.yaml may change a rule's severity or turn it off.

* ``oid.format``: every ``@root`` and ``@codeSystem`` is an OID (digits and dots, no spaces, first
  arc 0-2), under a root the platform knows (``oid.unknown-root``: typos such as LOINC written
  ``2.16.840.1.11883.6.1``);
* ``code.value-set``: a code whose ``@codeSystem`` is a value set the platform holds (the code
  tables of ``mappings/code_tables/``, by their OID, never by ``@codeSystemName``, which hospitals
  spell in five ways) must be in it; ``code.display-name``: its ``@displayName`` should be the
  set's (a warning);
* ``date.format``: time values (``effectiveTime``, ``birthTime``, ``time``, ``low``, ``high``, a
  ``TS`` value) are ``yyyyMMdd[HHmm[ss]]`` and real calendar dates;
* ``number.empty``: a quantity with an empty ``@value`` (``rateQuantity value=""``);
* ``idcard.*``: the patient's resident ID card number (GB 11643): its check character
  (``idcard.invalid``), and that its birth date and sex agree with ``birthTime`` and
  ``administrativeGenderCode`` (``idcard.birth-date``, ``idcard.sex``); warnings by default, since
  most numbers in hospital documents fail (china-hie.md §5.4 rule 7).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from lxml import etree

from engine.mapping import gb11643
from engine.mapping.codetables import CodeTable
from engine.mapping.errors import ValueRejected
from engine.mapping.hl7time import calendar_problem
from profiles.cda.report import Report, Severity

__all__ = ["DEFAULT_ROOTS", "DEFAULT_SEVERITIES", "Checks", "readable_path"]

V3 = "urn:hl7-org:v3"
_XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
_OID = re.compile(r"[0-2](\.(0|[1-9][0-9]*))+")
_TIME = re.compile(r"(\d{4})(\d{2})(\d{2})(?:(\d{2})(\d{2})(?:(\d{2})(?:\.\d{1,4})?)?)?(?:[+-]\d{4})?")
_TIME_ELEMENTS = frozenset(
    f"{{{V3}}}{n}" for n in ("effectiveTime", "birthTime", "time", "low", "high", "center", "expectedUseTime")
)
_QUANTITIES = frozenset(f"{{{V3}}}{n}" for n in ("doseQuantity", "rateQuantity", "quantity", "age"))
_PATIENT = f"{{{V3}}}patient"
_ID_CARD = "2.16.156.10011.1.3"
_SEX_SYSTEM = "2.16.156.10011.2.3.3.4"

# The roots an OID may start with: China's health OIDs, HL7 (and LOINC, SNOMED, ICD under it),
# China's ISO arc, private enterprise numbers.
DEFAULT_ROOTS = ("2.16.156.", "2.16.840.1.113883.", "1.2.156.", "1.3.6.1.4.1.")
DEFAULT_SEVERITIES: dict[str, Severity] = {
    "oid.format": "error",
    "oid.unknown-root": "error",
    "code.value-set": "error",
    "code.display-name": "warning",
    "date.format": "error",
    "number.empty": "error",
    "idcard.invalid": "warning",
    "idcard.birth-date": "warning",
    "idcard.sex": "warning",
}


def readable_path(element: etree._Element) -> str:
    """``/ClinicalDocument/recordTarget/patientRole/patient/id[2]``: local names, with a position
    where siblings share the name."""
    parts: list[str] = []
    node: etree._Element | None = element
    while node is not None and isinstance(node.tag, str):
        name = etree.QName(node).localname
        parent = node.getparent()
        if parent is not None:
            same = [c for c in parent if c.tag == node.tag]
            if len(same) > 1:
                name += f"[{same.index(node) + 1}]"
        parts.append(name)
        node = parent
    return "/" + "/".join(reversed(parts))


@dataclass
class Checks:
    value_sets: Mapping[str, CodeTable]  # by code system OID
    severities: dict[str, Severity | None] = field(default_factory=dict)  # None: off
    roots: tuple[str, ...] = DEFAULT_ROOTS

    def severity(self, rule: str) -> Severity | None:
        if rule in self.severities:
            return self.severities[rule]
        return DEFAULT_SEVERITIES[rule]

    def run(self, root: etree._Element, report: Report) -> None:
        def add(rule: str, message: str, element: etree._Element, attribute: str = "") -> None:
            severity = self.severity(rule)
            if severity is not None:
                path = readable_path(element) + (f"/@{attribute}" if attribute else "")
                report.add(rule, severity, message, path, element.sourceline)

        for element in root.iter(etree.Element):
            attrib = element.attrib
            if not attrib:
                continue
            for name in ("root", "codeSystem"):
                oid = attrib.get(name)
                if oid is not None:
                    self._oid(oid, name, element, add)
            system = attrib.get("codeSystem")
            if system is not None and "code" in attrib:
                self._code(system, attrib, element, add)
            value = attrib.get("value")
            if value is not None:
                if element.tag in _TIME_ELEMENTS or attrib.get(_XSI_TYPE) == "TS":
                    problem = time_problem(value)
                    if problem:
                        add("date.format", f"time {value!r}: {problem}", element, "value")
                elif not value.strip() and (
                    element.tag in _QUANTITIES or attrib.get(_XSI_TYPE) in ("PQ", "INT", "REAL", "MO")
                ):
                    add(
                        "number.empty",
                        f"{etree.QName(element).localname} has an empty value",
                        element,
                        "value",
                    )
        self._id_card(root, add)

    def _oid(self, oid: str, name: str, element: etree._Element, add: _Add) -> None:
        if not _OID.fullmatch(oid):
            spaced = " (it has spaces)" if oid != oid.strip() or " " in oid else ""
            add("oid.format", f"@{name} {oid!r} is not an OID{spaced}", element, name)
        elif not oid.startswith(self.roots) and oid not in ("2.16.156", "2.16.840.1.113883"):
            add(
                "oid.unknown-root",
                f"@{name} {oid} is under no known root ({', '.join(r.rstrip('.') for r in self.roots)})",
                element,
                name,
            )

    def _code(self, system: str, attrib: etree._Attrib, element: etree._Element, add: _Add) -> None:
        table = self.value_sets.get(system)
        if table is None:
            return
        code = attrib["code"]
        outcome = table.entries.get(code, _MISSING)
        if outcome is _MISSING:
            add("code.value-set", f"code {code!r} is not in {table.id} ({system})", element, "code")
            return
        expected = table.displays.get(code)
        display = attrib.get("displayName")
        if display is not None and expected and "".join(display.split()) != "".join(expected.split()):
            add(
                "code.display-name",
                f"displayName {display!r} of code {code!r} is {expected!r} in {table.id}",
                element,
                "displayName",
            )

    def _id_card(self, root: etree._Element, add: _Add) -> None:
        for patient in root.iter(_PATIENT):
            for ident in patient.iterfind(f"{{{V3}}}id"):
                if ident.get("root") != _ID_CARD:
                    continue
                number = ident.get("extension") or ""
                try:
                    card = gb11643.parse(number)
                except ValueRejected as exc:
                    add("idcard.invalid", str(exc), ident, "extension")
                    continue
                born = patient.find(f"{{{V3}}}birthTime")
                stated = (born.get("value") or "")[:8] if born is not None else ""
                if len(stated) == 8 and stated.isdigit() and stated != card.birth_date.strftime("%Y%m%d"):
                    add(
                        "idcard.birth-date",
                        f"the ID card number says born {card.birth_date:%Y%m%d}, birthTime says {stated}",
                        ident,
                        "extension",
                    )
                sex = patient.find(f"{{{V3}}}administrativeGenderCode")
                code = sex.get("code") if sex is not None and sex.get("codeSystem") == _SEX_SYSTEM else None
                if code in ("1", "2") and code != card.sex:
                    said = {"1": "male", "2": "female"}
                    add(
                        "idcard.sex",
                        f"the ID card number says {said[card.sex]}, the sex code says {said[code]}",
                        ident,
                        "extension",
                    )


_MISSING = object()


class _Add(Protocol):
    def __call__(self, rule: str, message: str, element: etree._Element, attribute: str = "") -> None: ...


def time_problem(value: str) -> str | None:
    """Why ``value`` is not a WS/T 500 time (``yyyyMMdd[HHmm[ss]]``), or None."""
    m = _TIME.fullmatch(value.strip())
    if m is None:
        return "not yyyyMMdd[HHmmss]"
    year, month, day = int(m[1]), int(m[2]), int(m[3])
    problem = calendar_problem(year, month, day)
    if problem:
        return problem
    if m[4] is not None:
        hour, minute, second = int(m[4]), int(m[5]), int(m[6] or 0)
        if hour > 23 or minute > 59 or second > 59:
            return f"{m[4]}:{m[5]}:{m[6] or '00'} is not a time of day"
    if year < 1900 or dt.date(year, month, day) > dt.date.today() + dt.timedelta(days=366):
        return f"year {year} is out of range"
    return None
