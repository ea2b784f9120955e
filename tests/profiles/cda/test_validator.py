"""The CDA validator on the synthetic WS/T 500 documents of ``tests/data/cda/valid/`` (one of each of
the 53 document types): each one is accepted, and every rule, built in or declared in YAML, has an
example that breaks it and is reported with its rule id, severity and line."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree

from engine.mapping.codetables import CodeTables
from engine.mapping.gb11643 import check_character
from profiles.cda.report import Report
from profiles.cda.rules import SHIPPED, load_rules
from profiles.cda.validator import BUILT_IN_RULES, CdaValidator, value_sets_by_system

DATA = Path(__file__).resolve().parents[2] / "data" / "cda" / "valid"
ROOT = Path(__file__).resolve().parents[3]
DOCUMENTS = sorted(p.stem for p in DATA.glob("C*.xml"))
V3 = "urn:hl7-org:v3"
NS = {"cda": V3}


def make_validator(**kwargs: object) -> CdaValidator:
    rules, problems = load_rules(SHIPPED)
    assert problems == []
    tables, table_problems = CodeTables.load(ROOT / "mappings" / "code_tables")
    assert table_problems == []
    return CdaValidator(rules, value_sets_by_system(tables), **kwargs)  # type: ignore[arg-type]


VALIDATOR = make_validator()


def sample(code: str = "C0053") -> bytes:
    return (DATA / f"{code}.xml").read_bytes()


def check(data: bytes, validator: CdaValidator = VALIDATOR) -> Report:
    return validator.validate(data, "test").report


def edit(code: str, change: Callable[[etree._Element], object]) -> bytes:
    root = etree.fromstring(sample(code))
    change(root)
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def one(root: etree._Element, path: str) -> etree._Element:
    found = root.xpath(path, namespaces=NS)
    assert isinstance(found, list) and found, path
    node = found[0]
    assert isinstance(node, etree._Element)
    return node


def drop(path: str) -> Callable[[etree._Element], None]:
    def change(root: etree._Element) -> None:
        for node in root.xpath(path, namespaces=NS):  # type: ignore[union-attr]
            node.getparent().remove(node)

    return change


def setattr_(path: str, name: str, value: str) -> Callable[[etree._Element], None]:
    def change(root: etree._Element) -> None:
        one(root, path).set(name, value)

    return change


def settext(path: str, value: str) -> Callable[[etree._Element], None]:
    def change(root: etree._Element) -> None:
        one(root, path).text = value

    return change


@pytest.mark.parametrize("code", DOCUMENTS)
def test_every_sample_document_is_accepted(code: str) -> None:
    report = check(sample(code))
    assert report.accepted, report.to_text()
    assert report.document_code == code
    assert [f.rule for f in report.warnings] in ([], ["header.legal-authenticator"])  # no legal signer


def test_there_are_samples_of_at_least_ten_document_types() -> None:
    assert len(DOCUMENTS) >= 10


PATIENT = "/cda:ClinicalDocument/cda:recordTarget/cda:patientRole/cda:patient"
ID_CARD = f"{PATIENT}/cda:id"
WOMAN = "32010219850312032"  # the sample patient's birth date with a woman's sequence number
# rule id -> (document, the change that breaks it)
BREAKING: dict[str, tuple[str, Callable[[etree._Element], object]]] = {
    "document.template-id": (
        "C0053",
        setattr_("/cda:ClinicalDocument/cda:templateId", "root", "2.16.156.10011.2.1.1.21"),
    ),
    "document.title": ("C0049", settext("/cda:ClinicalDocument/cda:title", "出院小结")),
    "schema.cda": ("C0034", lambda r: one(r, f"{PATIENT}/cda:name").set("foo", "bar")),
    "schema.document": ("C0053", setattr_("/cda:ClinicalDocument/cda:id", "extension", "short")),
    "header.realm-code": ("C0002", setattr_("/cda:ClinicalDocument/cda:realmCode", "code", "US")),
    "header.type-id": ("C0002", setattr_("/cda:ClinicalDocument/cda:typeId", "extension", "POCD_HD000040")),
    "header.document-id": ("C0053", setattr_("/cda:ClinicalDocument/cda:id", "root", "2.16.156.10011.1.2")),
    "header.effective-time": ("C0053", setattr_("/cda:ClinicalDocument/cda:effectiveTime", "value", "")),
    "header.confidentiality": (
        "C0053",
        setattr_("/cda:ClinicalDocument/cda:confidentialityCode", "code", "X"),
    ),
    "header.language": ("C0053", setattr_("/cda:ClinicalDocument/cda:languageCode", "code", "en-US")),
    "header.version": ("C0053", drop("/cda:ClinicalDocument/cda:setId")),
    "header.record-target": ("C0053", drop(PATIENT)),
    "header.patient-id-card": ("C0053", setattr_(ID_CARD, "root", "2.16.156.10011.1.2")),
    "header.patient-name": ("C0053", settext(f"{PATIENT}/cda:name", " ")),
    "header.patient-sex": (
        "C0053",
        setattr_(f"{PATIENT}/cda:administrativeGenderCode", "codeSystem", "2.16.840.1.113883.5.1"),
    ),
    "header.patient-birth-or-age": (
        "C0053",
        lambda r: (drop(f"{PATIENT}/cda:birthTime")(r), drop(f"{PATIENT}/cda:age")(r)),
    ),
    "header.age-unit": ("C0002", setattr_(f"{PATIENT}/cda:age", "unit", "years")),
    "header.author": ("C0053", setattr_("//cda:assignedAuthor/cda:id", "root", "2.16.156.10011.1.4")),
    "header.custodian": ("C0053", setattr_("//cda:representedCustodianOrganization/cda:id", "extension", "")),
    "header.organization-ids": (
        "C0053",
        setattr_("//cda:providerOrganization/cda:id", "root", "1.2.156.112604.1"),
    ),
    "header.legal-authenticator": ("C0053", drop("/cda:ClinicalDocument/cda:legalAuthenticator")),
    "body.structured": ("C0053", drop("//cda:structuredBody/cda:component")),
    "body.section-code": (
        "C0053",
        setattr_("//cda:section/cda:code", "codeSystem", "2.16.840.1.113883.6.96"),
    ),
    "body.entry-code": (
        "C0053",
        setattr_("//cda:entry/cda:observation/cda:code", "codeSystem", "2.16.156.10011.2.2.4"),
    ),
    "oid.format": ("C0053", setattr_("/cda:ClinicalDocument/cda:id", "root", " 2.16.156.10011.1.1")),
    "oid.unknown-root": ("C0053", setattr_("//cda:section/cda:code", "codeSystem", "2.16.840.1.11883.6.1")),
    "code.value-set": ("C0053", setattr_(f"{PATIENT}/cda:maritalStatusCode", "code", "99")),
    "code.display-name": ("C0053", setattr_(f"{PATIENT}/cda:administrativeGenderCode", "displayName", "男")),
    "date.format": ("C0053", setattr_(f"{PATIENT}/cda:birthTime", "value", "19650231")),
    "number.empty": ("C0053", setattr_(f"{PATIENT}/cda:age", "value", "")),
    "idcard.invalid": (
        "C0053",
        lambda r: one(r, ID_CARD).set("extension", one(r, ID_CARD).get("extension", "")[:17] + "0"),
    ),
    "idcard.birth-date": ("C0053", setattr_(f"{PATIENT}/cda:birthTime", "value", "19850313")),
    "idcard.sex": (
        "C0002",
        lambda r: one(r, ID_CARD).set("extension", WOMAN + check_character(WOMAN)),
    ),
}


@pytest.mark.parametrize("rule", sorted(BREAKING))
def test_each_rule_has_an_example_that_breaks_it(rule: str) -> None:
    code, change = BREAKING[rule]
    before = {f.rule for f in check(sample(code)).findings}
    assert rule not in before
    report = check(edit(code, change))
    found = [f for f in report.findings if f.rule == rule]
    assert found, report.to_text()
    assert found[0].severity == BUILT_IN_RULES.get(rule, found[0].severity)
    assert found[0].line is None or found[0].line >= 1
    assert found[0].message


def test_an_id_card_disagreeing_on_sex_is_a_warning() -> None:
    # an even 17th digit is a woman's number; the document says 男性
    report = check(edit("C0002", BREAKING["idcard.sex"][1]))
    (finding,) = [f for f in report.findings if f.rule == "idcard.sex"]
    assert finding.severity == "warning" and "female" in finding.message and report.accepted
    assert finding.xpath.endswith("/patient/id/@extension")


def per_document_rules() -> list[tuple[str, str]]:
    rules, _ = load_rules(SHIPPED)
    return [(code, r.id) for code, rs in sorted(rules.by_document.items()) for r in rs]


@pytest.mark.parametrize(("code", "rule"), per_document_rules())
def test_each_required_section_entry_and_identifier_is_checked(code: str, rule: str) -> None:
    value = rule.split(".", 2)[2]
    kind = rule.split(".")[1]
    if kind == "section":
        change = drop(f"//cda:structuredBody/cda:component[cda:section/cda:code/@code='{value}']")
    elif kind == "entry":
        change = drop(f"//cda:entry[.//cda:code/@code='{value}']")
    else:
        change = drop(f"//cda:patientRole//cda:id[@root='{value}']")
    report = check(edit(code, change))
    assert rule in {f.rule for f in report.findings}, report.to_text()


def test_every_rule_is_exercised() -> None:
    rules, _ = load_rules(SHIPPED)
    declared = {r.id for r in rules.common}
    # rule.broken: a rule file's own fault; header.institution-known: its own test below
    exempt = {"rule.broken", "header.institution-known"}
    untested = (declared | set(BUILT_IN_RULES)) - set(BREAKING) - set(WIRE_RULES) - exempt
    assert untested == set()


# -- what arrives on the wire ------------------------------------------------------------------------
WIRE_RULES = {
    "xml.too-large",
    "xml.prolog",
    "xml.not-well-formed",
    "xml.attribute-spacing",
    "xml.dtd",
    "document.root",
    "document.code",
}


def test_a_document_over_the_limit_is_refused_unread() -> None:
    report = check(sample() + b" " * 2048, make_validator(max_bytes=len(sample()) + 1024))
    assert [f.rule for f in report.findings] == ["xml.too-large"]


def test_a_bom_is_accepted_and_a_spaced_prolog_is_not() -> None:
    assert check(b"\xef\xbb\xbf" + sample()).accepted
    report = check(sample().replace(b"<?xml", b"<? xml", 1))
    assert [(f.rule, f.line) for f in report.findings] == [("xml.prolog", 1)]


def test_attributes_without_a_space_between_them_are_named() -> None:
    data = sample().replace(b'<realmCode code="CN"/>', b'<realmCode code="CN"foo="x"/>')
    (finding,) = check(data).findings
    assert finding.rule == "xml.attribute-spacing" and finding.line == 3 and 'code="CN"foo' in finding.message


def test_not_xml_and_a_truncated_document() -> None:
    assert [f.rule for f in check(b"%PDF-1.7 not a CDA").findings] == ["xml.not-well-formed"]
    (finding,) = check(sample()[:2000]).findings
    assert finding.rule == "xml.not-well-formed" and finding.line is not None and finding.line > 1


@pytest.mark.parametrize(
    "payload",
    [
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        b'<ClinicalDocument xmlns="urn:hl7-org:v3"><title>&e;</title></ClinicalDocument>',
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">'
        b'<!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]><ClinicalDocument xmlns="urn:hl7-org:v3">'
        b"<title>&d;&d;&d;&d;&d;&d;&d;&d;</title></ClinicalDocument>",
    ],
    ids=["xxe", "billion-laughs"],
)
def test_external_entities_and_entity_bombs_are_refused(payload: bytes) -> None:
    report = check(payload)
    assert [f.rule for f in report.findings] == ["xml.dtd"]
    assert "root:" not in report.to_json()  # nothing of /etc/passwd


def test_not_a_clinical_document_and_not_a_ws_t_500_type() -> None:
    report = check(b'<Report xmlns="urn:hl7-org:v3"/>')
    assert [f.rule for f in report.findings] == ["document.root"]
    unknown = check(sample().replace(b'code="C0053"', b'code="C0099"', 1))
    assert "document.code" in {f.rule for f in unknown.findings} and unknown.document_code is None


def test_severities_can_be_raised_or_turned_off() -> None:
    broken = edit("C0053", BREAKING["idcard.invalid"][1])
    assert check(broken).accepted  # a warning by default
    strict = make_validator(severities={"idcard.invalid": "error", "header.language": None})
    report = check(broken, strict)
    assert not report.accepted and [f.rule for f in report.errors] == ["idcard.invalid"]
    lax = check(edit("C0053", BREAKING["header.language"][1]), strict)
    assert "header.language" not in {f.rule for f in lax.findings}


def test_schema_findings_name_the_element_and_its_line() -> None:
    data = sample("C0034")
    broken = edit("C0034", BREAKING["schema.cda"][1])
    (finding,) = [f for f in check(broken).findings if f.rule == "schema.cda"]
    line = next(
        i for i, text in enumerate(data.decode().splitlines(), start=1) if "<name>欧阳明轩</name>" in text
    )
    assert finding.line == line and finding.xpath == "/ClinicalDocument/recordTarget/patientRole/patient/name"
    assert "{urn:hl7-org:v3}" not in finding.message and re.search(r"attribute 'foo'", finding.message)


def test_reports_read_as_json_text_and_html() -> None:
    report = check(edit("C0053", BREAKING["header.patient-name"][1]))
    assert '"accepted": false' in report.to_json() and "header.patient-name" in report.to_text()
    page = report.to_html()
    assert page.startswith("<!DOCTYPE html>") and "header.patient-name" in page and "<script" not in page


def test_an_unknown_custodian_is_refused_when_the_platform_lists_its_institutions() -> None:
    assert check(sample()).accepted  # no list: any custodian
    listed = make_validator(institutions=frozenset({"12320100MB1234567X"}))
    assert check(sample(), listed).accepted
    other = make_validator(institutions=frozenset({"12320100MB7654321Y"}))
    report = check(sample(), other)
    (finding,) = report.errors
    assert finding.rule == "header.institution-known" and "12320100MB1234567X" in finding.message
    assert finding.xpath.endswith("representedCustodianOrganization/id/@extension")
