"""XPath input paths on HL7 V3 and CDA documents, and the safe XML parser (synthetic patients only)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from lxml import etree  # type: ignore[import-untyped]

from engine.mapping.errors import DefinitionError, ValueRejected
from engine.mapping.xmlpath import compile_path, parse_xml

CORPUS = Path(__file__).resolve().parents[3].parent / "shared" / "corpus"
PIXV3_ADD = CORPUS / "ihe-iti-info/examples/PIXV3/01_PatientRegistryRecordAdded1.xml"
HIP_PATIENT_QUERY = CORPUS / "china-hip/evaluation/EMR-PL-04-个人信息查询服务-F01.xml"
HIP_INPATIENT_QUERY = CORPUS / "china-hip/evaluation/EMR-PL-25-住院就诊信息查询服务-F01.xml"
CDA_XSD = CORPUS / "cda-r2/infrastructure/cda/CDA.xsd"

NS = {"hl7": "urn:hl7-org:v3"}
ID_CARD_OID = "2.16.156.10011.1.3"  # 患者身份证号, as the china-hip messages use it

# A made-up patient (the ID number has a valid GB 11643 check digit); schema-valid CDA R2 (tested below).
CDA = """<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3">
  <realmCode code="CN"/>
  <typeId root="2.16.840.1.113883.1.3" extension="POCD_MT000040"/>
  <id root="2.16.156.10011.1.1" extension="DOC-2024-0001"/>
  <code code="C0001" codeSystem="2.16.156.10011.2.4"/>
  <title>病历概要</title>
  <effectiveTime value="20240305103000"/>
  <confidentialityCode code="N" codeSystem="2.16.840.1.113883.5.25"/>
  <recordTarget>
    <patientRole>
      <id root="2.16.156.10011.2.5.1.4" extension="HA-000123"/>
      <id root="2.16.156.10011.1.3" extension="110105198503120426"/>
      <addr><streetAddressLine>朝阳路 1 号</streetAddressLine><city>北京市</city></addr>
      <patient>
        <name>
          李晓梅
        </name>
        <administrativeGenderCode code="2" codeSystem="2.16.156.10011.2.3.3.4" displayName="女性"/>
        <birthTime value="19850312"/>
      </patient>
    </patientRole>
  </recordTarget>
  <author>
    <time value="20240305103000"/>
    <assignedAuthor><id root="2.16.156.10011.1.4" extension="D001"/></assignedAuthor>
  </author>
  <custodian>
    <assignedCustodian>
      <representedCustodianOrganization>
        <id root="2.16.156.10011.1.5" extension="H001"/>
        <name>示例医院</name>
      </representedCustodianOrganization>
    </assignedCustodian>
  </custodian>
  <component>
    <structuredBody>
      <component><section>
        <code code="11348-0" codeSystem="2.16.840.1.113883.6.1"/><title>既往史</title><text>无</text>
      </section></component>
      <component><section>
        <code code="48765-2" codeSystem="2.16.840.1.113883.6.1"/><title>过敏史</title><text>青霉素过敏</text>
      </section></component>
      <component><section>
        <code code="10160-0" codeSystem="2.16.840.1.113883.6.1"/><title>用药史</title><text/>
      </section></component>
    </structuredBody>
  </component>
</ClinicalDocument>
""".encode()


def first(path: str, scope: Any) -> Any:
    return compile_path(path, NS).first(scope)


@pytest.fixture(scope="module")
def cda() -> Any:
    return parse_xml(CDA)


def test_the_synthetic_cda_sample_is_valid_cda_r2() -> None:
    schema = etree.XMLSchema(etree.parse(str(CDA_XSD)))
    assert schema.validate(etree.fromstring(CDA)), schema.error_log.last_error


def test_cda_patient_id_is_chosen_by_its_root(cda: Any) -> None:
    root_of = "hl7:recordTarget/hl7:patientRole/hl7:id[@root='{}']/@extension"
    assert first(root_of.format(ID_CARD_OID), cda) == "110105198503120426"
    assert first(root_of.format("2.16.156.10011.2.5.1.4"), cda) == "HA-000123"
    assert first(root_of.format("1.2.3.4"), cda) is None


def test_cda_name_is_the_stripped_element_text_and_birth_time_the_attribute(cda: Any) -> None:
    assert first("hl7:recordTarget/hl7:patientRole/hl7:patient/hl7:name", cda) == "李晓梅"
    assert first("hl7:recordTarget/hl7:patientRole/hl7:patient/hl7:birthTime/@value", cda) == "19850312"
    assert first("//hl7:administrativeGenderCode/@code", cda) == "2"


def test_cda_sections_are_iterated_with_relative_paths(cda: Any) -> None:
    each = compile_path("hl7:component/hl7:structuredBody/hl7:component/hl7:section[*]", NS)
    assert each.iterates
    sections = each.scopes(cda)
    title, code, text = (compile_path(p, NS) for p in ("hl7:title", "./hl7:code/@code", "hl7:text"))
    assert [(title.first(s), code.first(s), text.first(s)) for s in sections] == [
        ("既往史", "11348-0", "无"),
        ("过敏史", "48765-2", "青霉素过敏"),
        ("用药史", "10160-0", None),  # an empty <text/> is absent
    ]
    # an absolute path inside an iteration still reads from the document
    assert compile_path("/hl7:ClinicalDocument/hl7:id/@extension", NS).first(sections[2]) == "DOC-2024-0001"


def test_a_path_without_star_does_not_iterate_but_counts_its_matches(cda: Any) -> None:
    ids = compile_path("hl7:recordTarget/hl7:patientRole/hl7:id/@extension", NS)
    assert not ids.iterates
    assert ids.first(cda) == "HA-000123"
    assert ids.count(cda) == 2  # what a rule with one: true refuses
    assert ids.values(cda) == ["HA-000123", "110105198503120426"]


def test_xpath_functions_give_their_own_results(cda: Any) -> None:
    assert first("count(//hl7:section)", cda) == 3.0
    assert first("boolean(//hl7:section[hl7:title='过敏史'])", cda) is True
    joined = "concat(//hl7:birthTime/@value, '-', //hl7:administrativeGenderCode/@code)"
    assert first(joined, cda) == "19850312-2"
    assert compile_path("string(//hl7:nothing)", NS).values(cda) == []


def test_pixv3_registry_record_from_the_corpus() -> None:
    msg = parse_xml(PIXV3_ADD.read_bytes())
    person = "hl7:controlActProcess/hl7:subject/hl7:registrationEvent/hl7:subject1/hl7:patient"
    assert first(f"{person}/hl7:id[@root='1.2.840.114350.1.13.99998.8734']/@extension", msg) == "34827G234"
    assert first(f"{person}/hl7:patientPerson/hl7:name/hl7:family", msg) == "Dean"
    assert first(f"{person}/hl7:patientPerson/hl7:name/hl7:given", msg) == "Jimmy"
    assert first(f"{person}/hl7:patientPerson/hl7:birthTime/@value", msg) == "19570323"
    assert first(f"{person}/hl7:patientPerson/hl7:asOtherIDs/hl7:id/@extension", msg) == "38273N237"
    # the first match's own value: <name> holds only child elements, so it is absent
    assert first(f"{person}/hl7:patientPerson/hl7:name", msg) is None


def test_china_hip_query_parameters_from_the_corpus() -> None:
    msg = parse_xml(HIP_PATIENT_QUERY.read_bytes())
    params = "hl7:controlActProcess/hl7:queryByParameter/hl7:parameterList"
    id_card = f"{params}/hl7:livingSubjectId/hl7:value/hl7:item[@root='{ID_CARD_OID}']/@extension"
    assert first(id_card, msg) == "0020109112"
    assert first(f"{params}/hl7:livingSubjectAdministrativeGender/hl7:value/@code", msg) is None  # code=""
    assert first(f"{params}/hl7:livingSubjectId/hl7:semanticsText/@value", msg) == "患者身份证号"


def test_china_hip_repeated_items_iterate_and_empty_ones_are_skipped() -> None:
    msg = parse_xml(HIP_INPATIENT_QUERY.read_bytes())
    query = "hl7:controlActProcess/hl7:queryByParameter"
    items = compile_path(f"{query}/hl7:careEventID/hl7:value/hl7:item[*]", NS)
    scopes = items.scopes(msg)
    assert [compile_path("@root", NS).first(s) for s in scopes] == [
        "2.16.156.10011.1.12",
        "2.16.156.10011.2.5.1.8",
        "2.16.156.10011.2.5.1.9",
    ]
    extensions = compile_path(f"{query}/hl7:careEventID//@extension", NS)
    assert extensions.values(msg) == ["0000"]
    assert extensions.count(msg) == 1
    org = f"{query}/hl7:responsibleOrganization/hl7:value/hl7:item/@extension"
    assert first(org, msg) == "中山大学附属第七医院（深圳）"


@pytest.mark.parametrize("encoding", ["GBK", "GB2312", "GB18030"])
def test_the_declared_chinese_encoding_is_honoured(encoding: str) -> None:
    text = f"""<?xml version="1.0" encoding="{encoding}"?>
<PRPA_IN201311UV02 xmlns="urn:hl7-org:v3"><patient><name>张伟</name>
<addr><city>深圳市</city></addr></patient></PRPA_IN201311UV02>"""
    msg = parse_xml(text.encode(encoding))
    assert first("hl7:patient/hl7:name", msg) == "张伟"
    assert first("hl7:patient/hl7:addr/hl7:city", msg) == "深圳市"


def test_gbk_bytes_read_as_utf8_are_rejected_with_their_position() -> None:
    data = '<?xml version="1.0" encoding="UTF-8"?>\n<a>\n<name>张伟</name></a>'.encode("gbk")
    with pytest.raises(ValueRejected) as caught:
        parse_xml(data)
    assert caught.value.hl7_code == "102"
    assert "line 3, column" in caught.value.message


def test_external_entity_is_refused_and_never_read() -> None:
    data = b"""<?xml version="1.0"?>
<!DOCTYPE patient [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<patient xmlns="urn:hl7-org:v3"><name>&x;</name></patient>"""
    with pytest.raises(ValueRejected) as caught:
        parse_xml(data)
    assert caught.value.hl7_code == "102"
    assert "DOCTYPE" in caught.value.message
    assert "root:" not in caught.value.message


def test_billion_laughs_is_refused_at_once() -> None:
    entities = ['<!ENTITY a0 "ha">'] + [
        f'<!ENTITY a{i} "{"".join(f"&a{i - 1};" for _ in range(10))}">' for i in range(1, 10)
    ]
    data = f'<?xml version="1.0"?><!DOCTYPE r [{"".join(entities)}]><r>&a9;</r>'.encode()
    started = time.perf_counter()
    with pytest.raises(ValueRejected) as caught:
        parse_xml(data)
    assert time.perf_counter() - started < 1.0
    assert caught.value.hl7_code == "102"
    assert "entity" in caught.value.message


def test_any_doctype_is_refused() -> None:
    with pytest.raises(ValueRejected, match="DOCTYPE"):
        parse_xml(b'<!DOCTYPE ClinicalDocument SYSTEM "cda.dtd"><ClinicalDocument xmlns="urn:hl7-org:v3"/>')


@pytest.mark.parametrize(
    ("data", "where"),
    [
        (b"", "line 1, column 1"),
        (b"<a>\n  <b></a>", "line 2, column"),
        (b"<a x='1' x='2'/>", "line 1, column"),
    ],
)
def test_malformed_xml_is_rejected_with_line_and_column(data: bytes, where: str) -> None:
    with pytest.raises(ValueRejected) as caught:
        parse_xml(data)
    assert where in caught.value.message
    assert caught.value.hl7_code == "102"


def test_syntax_error_names_the_path_and_the_reason() -> None:
    with pytest.raises(DefinitionError) as caught:
        compile_path("hl7:recordTarget/hl7:id[@root='1.2", NS)
    assert "hl7:recordTarget/hl7:id[@root='1.2" in caught.value.message
    assert "Unfinished literal" in caught.value.message


def test_unknown_prefix_lists_the_declared_ones() -> None:
    with pytest.raises(DefinitionError) as caught:
        compile_path("v3:recordTarget/hl7:patientRole", {"hl7": "urn:hl7-org:v3", "xsi": "x"})
    assert "'v3'" in caught.value.message
    assert "hl7, xsi" in caught.value.message


def test_prefix_like_text_in_literals_and_axes_is_not_a_prefix() -> None:
    path = compile_path("child::hl7:id[@root='urn:oid:1.2']/@extension", NS)
    doc = parse_xml(b'<a xmlns="urn:hl7-org:v3"><id root="urn:oid:1.2" extension="X1"/></a>')
    assert path.first(doc) == "X1"


def test_unknown_function_is_a_load_time_error() -> None:
    with pytest.raises(DefinitionError, match="Unregistered function"):
        compile_path("upper-case(hl7:name)", NS)


def test_default_namespace_without_prefix_is_explained() -> None:
    with pytest.raises(DefinitionError, match="no default namespace"):
        compile_path("recordTarget", {"": "urn:hl7-org:v3"})
