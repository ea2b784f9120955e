"""Writes the synthetic WS/T 500 documents of ``valid/`` (run by hand after changing it; the tests read
the files it wrote, which are committed):

    .venv/bin/python tests/data/cda/make_samples.py [C0053 ...]

The header of each document is generated from the structure its per-document schema
(``xsd/china-hip/cdas/C00NN.xsd``) requires: every required element and attribute, in schema
order, enumerations taken as the schema lists them (a code and its display name by the same
index), dates matching the schema's patterns, identifier roots chosen from the WS/T 500 OID table
by what the schema's annotation says the identifier is. The body is written from ``BODIES``: the
sections (LOINC codes) and entries (WS 363 data element codes) of each document type, with values
typed as the schema's named types allow. Every document must validate against both schema layers
the validator uses (the China-extended CDA R2 schema and its per-document schema); the script
stops at the first one that does not.

The people, numbers and hospitals are made up; the ID-card numbers have valid check characters.
"""

from __future__ import annotations

import re
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from engine.mapping.gb11643 import check_character  # noqa: E402

XS = "{http://www.w3.org/2001/XMLSchema}"
V3 = "urn:hl7-org:v3"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
CDAS = ROOT / "xsd" / "china-hip" / "cdas"
OUT = Path(__file__).resolve().parent / "valid"

# the walk-through's patient (README step 7 feeds him to the EMPI): 欧阳明轩, 男, born 1985-03-12
PATIENT_ID = "32010219850312031"
PATIENT_ID += check_character(PATIENT_ID)
HOSPITAL = ("12320100MB1234567X", "某市第一人民医院 (测试)")  # a made-up 统一社会信用代码

# identifier roots by what an id is (WS/T 500 表 D.2), matched on the schema's annotation
ID_ROOTS = [
    ("健康档案", "2.16.156.10011.1.2"),
    ("健康卡", "2.16.156.10011.1.19"),
    ("住院号", "2.16.156.10011.1.12"),
    ("门(急)诊号", "2.16.156.10011.1.11"),
    ("门诊号", "2.16.156.10011.1.11"),
    ("病案号", "2.16.156.10011.1.13"),
    ("申请单", "2.16.156.10011.1.24"),
    ("检查报告", "2.16.156.10011.1.32"),
    ("检验报告", "2.16.156.10011.1.33"),
    ("处方", "2.16.156.10011.1.20"),
    ("标本", "2.16.156.10011.1.14"),
    ("知情同意", "2.16.156.10011.1.34"),
    ("病理", "2.16.156.10011.1.8"),
    ("身份证", "2.16.156.10011.1.3"),
]
ID_VALUES = {
    "2.16.156.10011.1.2": "320102000000123456",
    "2.16.156.10011.1.19": "H3201020001234",
    "2.16.156.10011.1.12": "ZY20261201001",
    "2.16.156.10011.1.11": "MZ20261201001",
    "2.16.156.10011.1.13": "BA0012345",
    "2.16.156.10011.1.24": "SQ20261201001",
    "2.16.156.10011.1.32": "JC20261201001",
    "2.16.156.10011.1.33": "JY20261201001",
    "2.16.156.10011.1.20": "CF20261201001",
    "2.16.156.10011.1.14": "BB20261201001",
    "2.16.156.10011.1.34": "ZQ20261201001",
    "2.16.156.10011.1.8": "BL20261201001",
    "2.16.156.10011.1.3": PATIENT_ID,
}
# structural classes CDA R2 fixes or expects, by element name: (attribute, value)
CLASSES: dict[str, dict[str, str]] = {
    "recordTarget": {"typeCode": "RCT", "contextControlCode": "OP"},
    "patientRole": {"classCode": "PAT"},
    "patient": {"classCode": "PSN", "determinerCode": "INSTANCE"},
    "providerOrganization": {"classCode": "ORG", "determinerCode": "INSTANCE"},
    "author": {"typeCode": "AUT", "contextControlCode": "OP"},
    "assignedAuthor": {"classCode": "ASSIGNED"},
    "assignedPerson": {"classCode": "PSN", "determinerCode": "INSTANCE"},
    "representedOrganization": {"classCode": "ORG", "determinerCode": "INSTANCE"},
    "custodian": {"typeCode": "CST"},
    "assignedCustodian": {"classCode": "ASSIGNED"},
    "representedCustodianOrganization": {"classCode": "ORG", "determinerCode": "INSTANCE"},
    "legalAuthenticator": {"typeCode": "LA", "contextControlCode": "OP"},
    "authenticator": {"typeCode": "AUTHEN"},
    "assignedEntity": {"classCode": "ASSIGNED"},
    "participant": {"typeCode": "NOT", "contextControlCode": "OP"},
    "associatedEntity": {"classCode": "ECON"},
    "associatedPerson": {"classCode": "PSN", "determinerCode": "INSTANCE"},
    "relatedDocument": {"typeCode": "RPLC"},
    "parentDocument": {"classCode": "DOCCLIN", "moodCode": "EVN"},
    "componentOf": {"typeCode": "COMP"},
    "encompassingEncounter": {"classCode": "ENC", "moodCode": "EVN"},
    "location": {"typeCode": "LOC"},
    "healthCareFacility": {"classCode": "SDLOC"},
    "serviceProviderOrganization": {"classCode": "ORG", "determinerCode": "INSTANCE"},
    "asOrganizationPartOf": {"classCode": "PART"},
    "wholeOrganization": {"classCode": "ORG", "determinerCode": "INSTANCE"},
    "inFulfillmentOf": {"typeCode": "FLFS"},
    "order": {"classCode": "ACT", "moodCode": "RQO"},
    "documentationOf": {"typeCode": "DOC"},
    "serviceEvent": {"classCode": "ACT", "moodCode": "EVN"},
    "performer": {"typeCode": "PRF"},
    "place": {"classCode": "PLC", "determinerCode": "INSTANCE"},
    "household": {"classCode": "PLC", "determinerCode": "INSTANCE"},
    "nativePlace": {"classCode": "PLC", "determinerCode": "INSTANCE"},
    "employerOrganization": {"classCode": "ORG", "determinerCode": "INSTANCE"},
    "birthplace": {"classCode": "BIRTHPL"},
    "participantRole": {"classCode": "ROL"},
    "playingEntity": {"classCode": "PSN", "determinerCode": "INSTANCE"},
    "guardian": {"classCode": "GUARD"},
    "guardianPerson": {"classCode": "PSN", "determinerCode": "INSTANCE"},
}
# coded header attributes: element -> (code, displayName, codeSystem, codeSystemName)
CODES: dict[str, tuple[str, str, str, str]] = {
    "confidentialityCode": ("N", "正常访问保密级别", "2.16.840.1.113883.5.25", "Confidentiality"),
    "administrativeGenderCode": ("1", "男性", "2.16.156.10011.2.3.3.4", "生理性别代码表(GB/T 2261.1)"),
    "maritalStatusCode": ("20", "已婚", "2.16.156.10011.2.3.3.5", "婚姻状况代码表(GB/T 2261.2)"),
    "ethnicGroupCode": ("01", "汉族", "2.16.156.10011.2.3.3.3", "民族类别代码表(GB 3304)"),
    "nationality": ("156", "中国", "2.16.156.10011.2.3.3.1", "世界各国和地区名称代码(GB/T 2659)"),
    "occupationCode": (
        "13",
        "专业技术人员",
        "2.16.156.10011.2.3.3.13",
        "从业状况(个人身体)代码表(GB/T 2261.4)",
    ),
    "educationLevelCode": ("20", "大学本科", "2.16.156.10011.2.3.3.6", "学历代码表(GB/T 4658)"),
    "patienttypeCode": ("3", "住院", "2.16.156.10011.2.3.1.271", "患者类型代码表"),
}
SYSTEMS = [  # code system OIDs by the name of the table (WS 364 / GB value sets)
    ("家庭关系", "2.16.156.10011.2.3.3.8"),
    ("性别", "2.16.156.10011.2.3.3.4"),
    ("婚姻", "2.16.156.10011.2.3.3.5"),
    ("民族", "2.16.156.10011.2.3.3.3"),
    ("从业状况", "2.16.156.10011.2.3.3.13"),
    ("学历", "2.16.156.10011.2.3.3.6"),
    ("国家", "2.16.156.10011.2.3.3.1"),
]
NAMES = {
    "patient": "欧阳明轩",
    "assignedPerson": "李明华",
    "associatedPerson": "王丽",
    "playingEntity": "张晓燕",
    "guardianPerson": "王丽",
}
TIMES = ("20261201103000", "20261201", "202612011030")
_ALWAYS = {"typeId", "templateId", "realmCode", "languageCode", "confidentialityCode"}  # CDA requires
_IDENTIFYING = {"root", "extension", "codeSystem", "codeSystemName"}  # written where declared


@dataclass
class Entry:
    code: str  # WS 363 data element (DE) code
    name: str
    value: str
    kind: str = "ST"  # ST | PQ | TS | CD | INT
    unit: str = ""
    coded: tuple[str, str, str] = ("", "", "")  # codeSystem, codeSystemName, displayName for CD


@dataclass
class Section:
    loinc: str
    name: str
    entries: list[Entry] = field(default_factory=list)
    text: str = ""


DX = ("2.16.156.10011.2.3.3.11", "ICD-10", "原发性高血压")
VITALS = [
    Entry("DE04.10.186.00", "体温", "36.8", "PQ", "℃"),
    Entry("DE04.10.118.00", "脉率", "78", "PQ", "次/min"),
    Entry("DE04.10.081.00", "呼吸频率", "18", "PQ", "次/min"),
    Entry("DE04.10.174.00", "收缩压", "142", "PQ", "mmHg"),
    Entry("DE04.10.176.00", "舒张压", "88", "PQ", "mmHg"),
]
COMPLAINT = Section(
    "10154-3",
    "主诉",
    [Entry("DE04.01.119.00", "主诉", "反复头晕 3 年，加重 1 周")],
    "反复头晕 3 年，加重 1 周。",
)
HISTORY = Section(
    "10164-2", "现病史", [Entry("DE02.10.071.00", "现病史", "3 年前无诱因出现头晕，血压最高 170/100 mmHg。")]
)
PAST = Section("11348-0", "既往史", [Entry("DE02.10.026.00", "疾病史（含外伤）", "否认糖尿病、冠心病史。")])
ALLERGY = Section("48765-2", "过敏史", [Entry("DE02.10.022.00", "过敏史", "否认药物及食物过敏史。")])
DIAGNOSIS = Section("29548-5", "诊断记录", [Entry("DE05.01.024.00", "诊断编码", "I10.x00", "CD", coded=DX)])
ADMISSION_DX = Section(
    "46241-6", "入院诊断", [Entry("DE05.01.024.00", "入院诊断编码", "I10.x00", "CD", coded=DX)]
)
DISCHARGE_DX = Section(
    "11535-2", "出院诊断", [Entry("DE05.01.024.00", "出院诊断编码", "I10.x00", "CD", coded=DX)]
)
COURSE = Section(
    "8648-8",
    "住院过程",
    [
        Entry("DE05.10.148.00", "入院情况", "神志清，血压 165/98 mmHg。"),
        Entry("DE06.00.296.00", "诊疗过程描述", "予降压、改善循环治疗，血压控制平稳。"),
        Entry("DE06.00.193.00", "出院情况", "无头晕，血压 128/80 mmHg。"),
    ],
)
ORDERS = Section("46209-3", "医嘱", [Entry("DE06.00.287.00", "出院医嘱", "低盐饮食，规律服药，2 周后复诊。")])
PLAN = Section("18776-5", "治疗计划", [Entry("DE06.00.300.00", "治则治法", "平肝潜阳")])
EXAM = Section("29545-1", "体格检查", [*VITALS])
VITAL_SIGNS = Section("8716-3", "生命体征", [*VITALS])
STUDIES = Section(
    "30954-2", "检查检验", [Entry("DE04.50.128.00", "阳性辅助检查结果", "心电图：左心室高电压。")]
)
PROCEDURES = Section(
    "47519-4",
    "手术操作",
    [
        Entry(
            "DE06.00.093.00",
            "手术及操作编码",
            "88.7201",
            "CD",
            coded=("2.16.156.10011.2.3.3.12", "ICD-9-CM-3", "心脏超声"),
        )
    ],
)
CONSULT = Section(
    "51848-0",
    "会诊意见",
    [
        Entry("DE06.00.296.00", "诊疗过程描述", "患者高血压 3 级，请心内科会诊。"),
        Entry("DE06.00.300.00", "治则治法", "调整降压方案"),
    ],
)
TRANSFUSION = Section(
    "56836-0",
    "输血",
    [Entry("DE02.10.100.00", "输血史", "否认输血史。")],
)
MEDICATION = Section(
    "10160-0", "用药", [Entry("DE06.00.136.00", "用药指导", "氨氯地平片 5 mg 口服 每日一次")]
)

# per document type: its sections, in order (the body schemas take any order and any LOINC code)
BODIES: dict[str, list[Section]] = {
    "C0002": [COMPLAINT, HISTORY, PAST, ALLERGY, EXAM, DIAGNOSIS, PLAN],
    "C0006": [DIAGNOSIS, COMPLAINT, STUDIES],
    "C0007": [DIAGNOSIS, STUDIES],
    "C0034": [COMPLAINT, HISTORY, PAST, ALLERGY, EXAM, STUDIES, ADMISSION_DX],
    "C0037": [COMPLAINT, EXAM, STUDIES, ADMISSION_DX, PLAN],
    "C0038": [EXAM, STUDIES, DIAGNOSIS, PLAN],
    "C0043": [COURSE, DIAGNOSIS, PLAN],
    "C0045": [CONSULT, DIAGNOSIS],
    "C0049": [ADMISSION_DX, COURSE, ORDERS, DISCHARGE_DX],
    "C0053": [ADMISSION_DX, DISCHARGE_DX, PROCEDURES, COURSE, ORDERS, STUDIES],
    "C0013": [DIAGNOSIS, TRANSFUSION],
}


class Schema:
    """One per-document schema, read for generation (named types, element declarations)."""

    def __init__(self, code: str) -> None:
        self.code = code
        self.root = etree.parse(str(CDAS / f"{code}.xsd")).getroot()
        self.named = {c.get("name"): c for c in self.root if c.get("name")}

    def complex_type(self, decl: etree._Element) -> etree._Element | None:
        found = decl.find(f"{XS}complexType")
        if found is None and decl.get("type") in self.named:
            candidate = self.named[decl.get("type")]
            return candidate if candidate.tag == f"{XS}complexType" else None
        return found


def child_decls(ct: etree._Element) -> list[etree._Element]:
    """Element declarations of a complexType's content, in order (a choice: its first branch)."""
    out: list[etree._Element] = []

    def walk(group: etree._Element) -> None:
        for item in group:
            if item.tag == f"{XS}element":
                out.append(item)
            elif item.tag == f"{XS}sequence":
                walk(item)
            elif item.tag == f"{XS}choice":
                first = next((b for b in item if b.tag in (f"{XS}element", f"{XS}sequence")), None)
                if first is not None:
                    walk(first) if first.tag == f"{XS}sequence" else out.append(first)

    for group in ct:
        if group.tag in (f"{XS}sequence", f"{XS}choice"):
            walk(group)
    return out


def attribute_decls(ct: etree._Element) -> list[etree._Element]:
    """A complexType's own attribute declarations (not those of nested elements)."""
    found = []
    for attr in ct.iter(f"{XS}attribute"):
        owner = attr.getparent()
        while owner is not None and owner.tag != f"{XS}complexType":
            owner = owner.getparent()
        if owner is ct:
            found.append(attr)
    return found


def enumeration(decl: etree._Element) -> list[str]:
    return [e.get("value", "") for e in decl.iter(f"{XS}enumeration")]


def pattern(decl: etree._Element) -> str | None:
    found = next(decl.iter(f"{XS}pattern"), None)
    return found.get("value") if found is not None else None


def annotation(decl: etree._Element) -> str:
    text = decl.findtext(f"{XS}annotation/{XS}documentation") or ""
    return " ".join(text.split())


def fit(value: str, decl: etree._Element) -> str:
    """``value`` cut or padded to the length facets of its declaration."""

    def facet(name: str) -> int | None:
        found = next(decl.iter(f"{XS}{name}"), None)
        return int(found.get("value", "0")) if found is not None else None

    exact, low, high = facet("length"), facet("minLength"), facet("maxLength")
    if exact is not None:
        return value[:exact].ljust(exact, "0")
    if high is not None:
        value = value[:high]
    if low is not None:
        value = value.ljust(low, "0")
    return value


def matching_time(regex: str | None) -> str:
    for candidate in TIMES:
        if regex is None or re.fullmatch(regex, candidate):
            return candidate
    raise ValueError(f"no sample time matches {regex}")


class Builder:
    def __init__(self, schema: Schema) -> None:
        self.schema = schema
        self.n = int(schema.code[1:])
        self.notes: list[str] = []  # the annotations of the elements being written, outermost first

    def header(self, decl: etree._Element, path: list[str]) -> etree._Element:
        name = decl.get("name", "")
        element = etree.Element(f"{{{V3}}}{name}", nsmap=None if path else {None: V3, "xsi": XSI})
        ct = self.schema.complex_type(decl)
        here = [*path, name]
        self.notes.append(annotation(decl))
        try:
            return self._fill(element, decl, ct, here)
        finally:
            self.notes.pop()

    def _fill(
        self, element: etree._Element, decl: etree._Element, ct: etree._Element | None, here: list[str]
    ) -> etree._Element:
        name = here[-1]
        if ct is None:  # simple content: text only
            element.text = self.text(decl, here)
            return element
        for attr in attribute_decls(ct):
            attr_name = attr.get("name", "")
            wanted = attr_name in CLASSES.get(name, {}) or name in _ALWAYS or attr_name in _IDENTIFYING
            if attr.get("use") == "required" or attr.get("fixed") or wanted:
                element.set(attr.get("name", ""), fit(self.attribute(decl, attr, here), attr))
        if ct.find(f"{XS}simpleContent") is not None:
            return element
        for child in child_decls(ct):
            if child.get("minOccurs") == "0" and not self.wanted(child, here):
                continue
            if name == "ClinicalDocument" and child.get("name") == "component":
                continue  # the body is written from BODIES
            if name == "patientRole" and child.get("name") == "id" and child.get("maxOccurs") == "unbounded":
                for root in self.roots(annotation(child)) or ["2.16.156.10011.1.2"]:
                    ident = etree.SubElement(element, f"{{{V3}}}id", root=root, extension=ID_VALUES[root])
                    del ident  # the ids the annotation names, one each
                continue
            element.append(self.header(child, here))
        return element

    def wanted(self, decl: etree._Element, path: list[str]) -> bool:
        """Optional header parts worth writing: an encounter, a birth time, the patient's ids."""
        name = decl.get("name")
        if name == "effectiveTime" and path[-1] == "encompassingEncounter":
            return True  # CDA R2 requires it
        if name in ("assignedEntity", "assignedPerson", "id") and path[-1] in (
            "authenticator",
            "legalAuthenticator",
            "assignedEntity",
        ):
            return True  # CDA R2 requires the entity; a signer has a name
        return name in {"birthTime", "effectiveTime", "addr", "telecom"} and "patient" in path

    @staticmethod
    def siblings(attr: etree._Element) -> list[etree._Element]:
        owner = attr.getparent()
        while owner is not None and owner.tag != f"{XS}complexType":
            owner = owner.getparent()
        return attribute_decls(owner) if owner is not None else []

    def place(self) -> tuple[str, str]:
        """The id root and name of the ward, room, bed, department or hospital being written (the
        schema's annotation on its wholeOrganization says which)."""
        note = self.notes[-2] if len(self.notes) > 1 else ""
        for word, root, label in (
            ("病床", "2.16.156.10011.1.22", "12 床"),
            ("病房", "2.16.156.10011.1.21", "305 房"),
            ("科室", "2.16.156.10011.1.26", "心血管内科"),
            ("病区", "2.16.156.10011.1.27", "心内一病区"),
        ):
            if word in note:
                return root, label
        return "2.16.156.10011.1.5", HOSPITAL[1]

    def roots(self, note: str) -> list[str]:
        note = note.replace("（", "(").replace("）", ")")
        roots = []
        for word, root in ID_ROOTS:
            if word in note and root not in roots:
                roots.append(root)
        return roots

    def attribute(self, decl: etree._Element, attr: etree._Element, path: list[str]) -> str:
        name, element = attr.get("name", ""), path[-1]
        if attr.get("fixed"):
            return attr.get("fixed", "")
        options = enumeration(attr)
        if element in CODES and name in ("code", "displayName", "codeSystem", "codeSystemName"):
            code, display, system, system_name = CODES[element]
            value = {
                "code": code,
                "displayName": display,
                "codeSystem": system,
                "codeSystemName": system_name,
            }[name]
            return value if not options or value in options else options[0]
        if options:
            return options[0]
        if name in CLASSES.get(element, {}):
            return CLASSES[element][name]
        if name == "value" and element == "birthTime":
            return "19850312"
        if name == "value" and ("Time" in element or element in ("time", "low", "high")):
            return matching_time(pattern(attr))
        if element == "realmCode":
            return "CN"
        if element == "typeId":
            return {"root": "2.16.840.1.113883.1.3", "extension": "POCD_MT000040"}[name]
        if element == "templateId":
            return f"2.16.156.10011.2.1.1.{20 + self.n}"
        if element == "code" and path[-2] == "ClinicalDocument":
            return {"codeSystem": "2.16.156.10011.2.4", "codeSystemName": "卫生信息共享文档规范编码体系"}[
                name
            ]
        if element == "languageCode":
            return "zh-CN"
        if element == "id":
            return self.identifier(name, path, annotation(decl))
        if element == "age":
            return {"value": "41", "unit": "岁"}[name]
        if element == "telecom":
            return {"value": "tel:13812345678", "use": "MC"}.get(name, "MC")
        if element == "addr" and name == "use":
            return "H"
        if name == "codeSystem":
            table = next(
                (
                    enumeration(a)[0]
                    for a in self.siblings(attr)
                    if a.get("name") == "codeSystemName" and enumeration(a)
                ),
                "",
            )
            for word, oid in SYSTEMS:
                if word in table:
                    return oid
        if name == "displayName":
            return "主治医师"
        if name == "code":
            return "1"
        raise ValueError(f"{self.schema.code}: no value for {'/'.join(path)}@{name}")

    def identifier(self, name: str, path: list[str], note: str) -> str:
        owner = path[-2]
        if owner == "ClinicalDocument":
            root = "2.16.156.10011.1.1"
        elif owner == "patient":
            root = "2.16.156.10011.1.3"
        elif owner in ("providerOrganization", "representedCustodianOrganization", "representedOrganization"):
            root = "2.16.156.10011.1.5"
        elif owner == "assignedAuthor":
            root = "2.16.156.10011.1.7"
        elif owner == "assignedEntity":
            root = "2.16.156.10011.1.4"
        elif owner == "wholeOrganization":
            root = self.place()[0]
        else:
            root = (self.roots(note) or ["2.16.156.10011.1.4"])[0]
        if name == "root":
            return root
        if owner == "ClinicalDocument":
            return uuid.uuid5(uuid.NAMESPACE_OID, f"hie-sample-{self.schema.code}").hex  # 32 characters
        if root == "2.16.156.10011.1.5":
            return HOSPITAL[0]
        return ID_VALUES.get(
            root, {"2.16.156.10011.1.22": "12", "2.16.156.10011.1.21": "305"}.get(root, "D0001")
        )

    def text(self, decl: etree._Element, path: list[str]) -> str:
        name = path[-1]
        options = enumeration(decl)
        if options:
            return options[0]
        if name == "name":
            owner = path[-2]
            if owner in NAMES:
                return NAMES[owner]
            if owner == "wholeOrganization":
                return self.place()[1]
            return HOSPITAL[1]
        return {
            "houseNumber": "12 号",
            "streetName": "中山路",
            "township": "玄武门街道",
            "county": "玄武区",
            "city": "南京市",
            "state": "江苏省",
            "postalCode": "210018",
            "signatureCode": "",
            "setId": "",
            "versionNumber": "",
            "time": "",
            "effectiveTime": "",
            "id": "",
            "code": "",
        }.get(name, "")


def value(entry: Entry, available: set[str]) -> etree._Element:
    kind = entry.kind if entry.kind in available else "ST"
    element = etree.Element(f"{{{V3}}}value", {f"{{{XSI}}}type": kind})
    if kind == "PQ":
        element.set("value", entry.value)
        element.set("unit", entry.unit)
    elif kind == "CD":
        system, system_name, display = entry.coded
        element.set("code", entry.value)
        element.set("codeSystem", system)
        element.set("codeSystemName", system_name)
        element.set("displayName", display)
    elif kind in ("TS", "INT"):
        element.set("value", entry.value)
    else:
        element.text = entry.value
    return element


def body(schema: Schema, sections: list[Section]) -> etree._Element:
    available = {n for n, c in schema.named.items() if c is not None}
    component = etree.Element(f"{{{V3}}}component")
    structured = etree.SubElement(component, f"{{{V3}}}structuredBody")
    for section in sections:
        holder = etree.SubElement(structured, f"{{{V3}}}component")
        sec = etree.SubElement(holder, f"{{{V3}}}section")
        etree.SubElement(
            sec,
            f"{{{V3}}}code",
            code=section.loinc,
            displayName=section.name,
            codeSystem="2.16.840.1.113883.6.1",
            codeSystemName="LOINC",
        )
        etree.SubElement(sec, f"{{{V3}}}text").text = section.text or "；".join(
            e.value for e in section.entries
        )
        for item in section.entries:
            entry = etree.SubElement(sec, f"{{{V3}}}entry")
            obs = etree.SubElement(entry, f"{{{V3}}}observation", classCode="OBS", moodCode="EVN")
            etree.SubElement(
                obs,
                f"{{{V3}}}code",
                code=item.code,
                codeSystem="2.16.156.10011.2.2.1",
                codeSystemName="卫生信息数据元目录",
                displayName=item.name,
            )
            obs.append(value(item, available))
    return component


def document(code: str) -> etree._Element:
    schema = Schema(code)
    top = schema.root.find(f"{XS}element")
    assert top is not None
    root = Builder(schema).header(top, [])
    root.append(body(schema, BODIES[code]))
    etree.cleanup_namespaces(root, top_nsmap={None: V3, "xsi": XSI})
    return root


def main() -> None:
    china = etree.XMLSchema(
        etree.parse(str(ROOT / "xsd" / "cda-china" / "infrastructure" / "cda" / "CDA.xsd"))
    )
    OUT.mkdir(exist_ok=True)
    for code in sys.argv[1:] or sorted(BODIES):
        root = document(code)
        text = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
        parsed = etree.fromstring(text)
        for label, schema in (
            ("China CDA", china),
            (code, etree.XMLSchema(etree.parse(str(CDAS / f"{code}.xsd")))),
        ):
            if not schema.validate(parsed):
                for error in list(schema.error_log)[:8]:
                    print(f"{code} ({label}) line {error.line}: {error.message}")
                Path(f"/tmp/{code}-invalid.xml").write_bytes(text)
                raise SystemExit(1)
        (OUT / f"{code}.xml").write_bytes(text)
        print(f"{code}: {len(text):,} bytes, valid")


if __name__ == "__main__":
    main()
