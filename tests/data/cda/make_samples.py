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
    ("门急(诊)号", "2.16.156.10011.1.11"),  # C0005.xsd's spelling
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
# coded header elements whose schema names no table (C0032, C0033, C0036), by their annotation:
# (word, code, displayName, codeSystem, codeSystemName); the schema's own enumerations come first
CODES_BY_NOTE = [
    ("关系", "1", "配偶", "2.16.156.10011.2.3.3.8", "家庭关系代码表(GB/T 4761)"),  # 联系人/陈述者与患者的关系
    ("入院途径", "1", "门诊", "2.16.156.10011.2.3.1.270", "入院途径代码表"),
]
NAMES = {
    "patient": "欧阳明轩",
    "assignedPerson": "李明华",
    "associatedPerson": "王丽",
    "playingEntity": "张晓燕",
    "guardianPerson": "王丽",
}
# the obstetric documents (待产, 阴道分娩, 剖宫产) are his wife's: 王丽, born the same day (their
# schemas carry no sex code)
WIFE_DOCUMENTS = {"C0014", "C0015", "C0016"}
WIFE_ID = "32010219850312042"  # an even 17th digit: a woman
WIFE_ID += check_character(WIFE_ID)
WIFE_NAMES = {"patient": "王丽", "associatedPerson": "欧阳明轩", "guardianPerson": "欧阳明轩"}
WIFE_ID_VALUES = {  # her own ID card, 住院号, 门诊号, 病案号, 健康档案 and 健康卡 numbers
    **ID_VALUES,
    "2.16.156.10011.1.3": WIFE_ID,
    "2.16.156.10011.1.12": "ZY20261201002",
    "2.16.156.10011.1.11": "MZ20261201002",
    "2.16.156.10011.1.13": "BA0012346",
    "2.16.156.10011.1.2": "320102000000123457",
    "2.16.156.10011.1.19": "H3201020001235",
}
TIMES = ("20261201103000", "20261201", "202612011030")
_ALWAYS = {"typeId", "templateId", "realmCode", "languageCode", "confidentialityCode"}  # CDA requires
_IDENTIFYING = {"root", "extension", "codeSystem", "codeSystemName"}  # written where declared


@dataclass
class Entry:
    code: str  # WS 363 data element (DE) code
    name: str
    value: str
    kind: str = "ST"  # ST | PQ | TS | CD | INT | BL | MO
    unit: str = ""
    coded: tuple[str, str, str] = ("", "", "")  # codeSystem, codeSystemName, displayName for CD
    related: list[Entry] = field(default_factory=list)  # written as its entryRelationship observations


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

# -- sections first used by C0001-C0026 (keep this marker) --
# the patient's record (WS/T 500.1), his emergency visit (.3) and prescriptions (.4, .5): the
# hypertension of the medical stay; the surgical documents (.9-.12, .19, .22, .26) are about the right
# adrenalectomy of the C0027-C0052 documents (their sections are reused in BODIES); the obstetric ones
# (.14-.16) about his wife (WIFE_DOCUMENTS); .18 and .21 about the fatal haemorrhage
SUMMARY_PAST = Section(
    "11348-0",
    "既往史",
    [
        Entry("DE02.10.026.00", "疾病史（含外伤）", "原发性高血压 3 年；否认糖尿病、冠心病史，否认外伤史。"),
        Entry("DE02.10.008.00", "传染病史", "否认肝炎、结核等传染病史。"),
        Entry("DE02.10.061.00", "手术史", "否认手术史。"),
        Entry("DE02.10.098.00", "婚育史", "已婚，育有 1 女，配偶及女儿体健。"),
    ],
)
VACCINATION = Section(
    "11369-6", "预防接种史", [Entry("DE02.10.101.00", "预防接种史", "按国家免疫规划完成儿童期接种。")]
)
SOCIAL_HISTORY = Section(
    "29762-2",
    "个人史",
    [Entry("DE02.10.097.00", "个人史", "生于南京，无疫区居留史；吸烟 15 年，每日约 10 支；不饮酒。")],
)
FAMILY_HISTORY = Section(
    "10157-6", "家族史", [Entry("DE02.10.103.00", "家族史", "父亲患高血压、脑梗死，母亲体健。")]
)
HEALTH_EVENT = Section(  # WS/T 500.1 gives the 卫生事件 section no LOINC code
    "",
    "卫生事件",
    [
        Entry("DE08.10.026.00", "医疗机构科室名称", "心血管内科"),
        Entry(
            "DE02.01.060.00",
            "患者类型代码",
            "3",
            "CD",
            coded=("2.16.156.10011.2.3.1.271", "患者类型代码表", "住院"),
        ),
        Entry("DE01.00.014.00", "住院号", "ZY20261201001"),
        Entry("DE06.00.092.00", "入院日期时间", "20261124093000", "TS"),
        Entry("DE06.00.017.00", "出院日期时间", "20261201103000", "TS"),
        Entry("DE05.01.024.00", "西医诊断编码", "I10.x00", "CD", coded=DX),
        Entry("DE02.01.039.00", "责任医师姓名", "李明华"),
    ],
)
ER_COMPLAINT = Section(
    "10154-3",
    "主诉",
    [Entry("DE04.01.119.00", "主诉", "头痛、头晕伴恶心 6 小时")],
    "头痛、头晕伴恶心 6 小时。",
)
ER_HISTORY = Section(
    "10164-2",
    "现病史",
    [
        Entry(
            "DE02.10.071.00",
            "现病史",
            "6 小时前情绪激动后出现枕部胀痛、头晕，伴恶心，无呕吐及肢体无力，自测血压 196/118 mmHg；"
            "近 1 周自行停服降压药。",
        )
    ],
)
ER_PAST = Section(
    "11348-0",
    "既往史",
    [
        Entry(
            "DE02.10.099.00",
            "既往史",
            "原发性高血压 3 年，口服氨氯地平片 5 mg 每日一次；否认糖尿病、冠心病史。",
        )
    ],
)
ER_EXAM = Section(
    "29545-1",
    "体格检查",
    [
        Entry("DE04.10.186.00", "体温", "36.6", "PQ", "℃"),
        Entry("DE04.10.118.00", "脉率", "92", "PQ", "次/min"),
        Entry("DE04.10.081.00", "呼吸频率", "20", "PQ", "次/min"),
        Entry("DE04.10.174.00", "收缩压", "192", "PQ", "mmHg"),
        Entry("DE04.10.176.00", "舒张压", "114", "PQ", "mmHg"),
        Entry(
            "DE04.10.258.00", "体格检查", "神志清，言语流利，双侧瞳孔等大等圆，四肢肌力 5 级，病理征阴性。"
        ),
    ],
)
ER_STUDIES = Section(
    "30954-2",
    "实验室检验",
    [
        Entry("DE04.30.010.00", "辅助检查项目", "头颅 CT 平扫"),
        Entry("DE04.30.009.00", "辅助检查结果", "颅内未见出血及占位性病变。"),
    ],
)
ER_DIAGNOSIS = Section(  # C0003.xsd types a CD's code as xs:byte: the ICD-10 code goes as text
    "29548-5",
    "诊断记录",
    [
        Entry("DE05.01.025.00", "诊断名称", "原发性高血压（高血压急症）"),
        Entry("DE05.01.024.00", "诊断编码", "I10.x00"),
    ],
)
ER_ORDERS = Section(
    "46209-3",
    "医嘱",
    [Entry("DE06.00.288.00", "医嘱项目内容", "乌拉地尔注射液 25 mg 缓慢静脉注射；心电、血压监护；卧床休息")],
)
ER_COURSE = Section(
    "8648-8",
    "留观病程",
    [
        Entry(
            "DE06.00.181.00",
            "急诊留观病程记录",
            "收入观察室后予乌拉地尔降压、心电监护，2 小时后血压降至 156/96 mmHg，头痛缓解；"
            "留观 24 小时血压稳定于 140～150/90～95 mmHg。",
        )
    ],
)
ER_NOTES = Section(
    "",
    "其他相关信息",
    [
        Entry(
            "DE09.00.119.00",
            "注意事项",
            "规律服用降压药，不可自行停药；如再发剧烈头痛、胸痛或肢体无力立即就诊。",
        )
    ],
)
RX_WESTERN = Section(
    "10160-0",
    "用药",
    [
        Entry("DE08.50.022.00", "药物名称", "苯磺酸氨氯地平片"),
        Entry("DE08.50.043.00", "药物规格", "5 mg×28 片"),
        Entry("DE06.00.136.00", "药物用法", "每次 5 mg，口服，每日一次"),
        Entry("DE06.00.294.00", "处方有效天数", "1", "PQ", "天"),  # C0004.xsd: the only PQ unit is 天
        Entry("DE08.50.056.00", "处方药品组号", "1", "INT"),
        Entry("DE06.00.179.00", "处方备注信息", "慢性病长期处方，4 周用量"),
    ],
)
RX_WESTERN_FEE = Section("48768-6", "费用", [Entry("DE07.00.004.00", "处方药品金额", "36.40", "MO", "元")])
RX_HERBAL_DX = Section(
    "29548-5",
    "诊断",
    [
        Entry("DE05.01.024.00", "西医诊断编码", "I10.x00", "CD", coded=DX),
        Entry("DE05.10.172.00", "中医病名名称", "眩晕病"),
        Entry("DE05.10.172.00", "中医证候名称", "肝阳上亢证"),
    ],
)
RX_HERBAL = Section(
    "10160-0",
    "用药",
    [
        Entry(
            "DE08.50.049.00",
            "中药饮片处方",
            "天麻 10 g，钩藤 15 g（后下），石决明 30 g（先煎），栀子 10 g，黄芩 10 g，川牛膝 12 g，"
            "杜仲 12 g，益母草 15 g，桑寄生 15 g，首乌藤 15 g，茯神 15 g",
        ),
        Entry("DE08.50.050.00", "中药饮片剂数", "7", "PQ", "剂"),
        Entry("DE08.50.047.00", "中药饮片煎煮法", "水煎，石决明先煎 30 分钟，钩藤后下"),
        Entry("DE06.00.136.00", "中药用药方法", "每日 1 剂，水煎取汁 400 mL，早晚分两次温服"),
        Entry("DE06.00.294.00", "处方有效天数", "1", "PQ", "天"),
        Entry("DE08.50.056.00", "处方药品组号", "1", "INT"),
    ],
)
RX_HERBAL_FEE = Section("48768-6", "费用", [Entry("DE07.00.004.00", "处方药品金额", "186.20", "MO", "元")])
WEIGHED_VITALS = Section("8716-3", "生命体征", [*VITALS, Entry("DE04.10.188.00", "体重", "72", "PQ", "kg")])
ACUPUNCTURE = Section(
    "47519-4",
    "治疗操作",
    [
        Entry(
            "DE06.00.093.00",
            "操作编码",
            "99.92",
            "CD",
            coded=("2.16.156.10011.2.3.3.12", "ICD-9-CM-3", "其他针刺"),
        ),
        Entry("DE06.00.094.00", "操作名称", "针刺治疗"),
        Entry("DE06.00.187.00", "操作目标部位名称", "百会、风池（双）、曲池（双）、太冲（双）"),
        Entry("DE06.00.251.00", "操作方法描述", "毫针刺，平补平泻，得气后留针 30 分钟"),
        Entry("DE06.00.250.00", "操作次数", "1", "INT"),
    ],
)
ACUPUNCTURE_DRUG = Section(
    "18610-6",
    "用药管理",
    [
        Entry("DE08.50.022.00", "药物名称", "天麻素注射液"),
        Entry("DE06.00.136.00", "药物用法", "0.6 g 加入 0.9% 氯化钠注射液 250 mL 静脉滴注，每日一次"),
        Entry("DE06.00.135.00", "药物使用总剂量", "0.6", "PQ", "g"),
    ],
)
ACUPUNCTURE_PLAN = Section(
    "18776-5",
    "治疗计划",
    [
        Entry("DE06.00.018.00", "处理及指导意见", "针刺后卧床休息 15 分钟，复测血压。"),
        Entry("DE06.00.159.00", "今后治疗方案", "针刺每日 1 次，10 次为 1 个疗程，配合口服降压药。"),
        Entry(
            "DE06.00.108.00",
            "随访方式",
            "1",
            "CD",
            coded=("2.16.156.10011.2.3.1.183", "随访方式代码表", "门诊"),
        ),
    ],
)
NO_SURGERY_HISTORY = Section("11348-0", "既往史", [Entry("DE02.10.062.00", "手术史标志", "false", "BL")])
SURGERY_DRUGS = Section(
    "10160-0",
    "用药",
    [Entry("DE06.00.136.00", "术前用药", "切皮前 30 分钟头孢呋辛钠 1.5 g 静脉滴注预防感染")],
)
SURGERY_FLUIDS = Section("10216-0", "输液", [Entry("DE06.00.268.00", "输液量", "1500", "PQ", "mL")])
SURGERY_BLOOD_LOSS = Section("55103-6", "失血", [Entry("DE06.00.097.00", "出血量", "20", "PQ", "mL")])
OPERATION_NARRATIVE = Section(
    "8724-7",
    "手术过程描述",
    [
        Entry(
            "DE05.10.063.00",
            "手术过程描述",
            "全麻成功后取左侧卧位，常规消毒铺巾；经腹膜后入路建立操作空间，置入腹腔镜及套管；"
            "游离右肾上腺，显露并夹闭、离断中央静脉，完整切除肾上腺及 1.5 cm 金黄色结节；"
            "创面无活动性出血，置引流管 1 根，逐层缝合切口。",
        ),
        Entry("DE06.00.321.00", "手术切口描述", "右腰部 1.5 cm、1 cm、0.5 cm 切口各 1 个"),
    ],
)
VISIT_HISTORY = Section(
    "10164-2",
    "现病史",
    [
        Entry(
            "DE05.10.140.00",
            "简要病史",
            "高血压 3 年伴低血钾，醛固酮/肾素比值升高，CT 及肾上腺静脉采血示右肾上腺醛固酮瘤，"
            "拟行腹腔镜下右侧肾上腺切除术。",
        )
    ],
)
VISIT_EXAM = Section(
    "29545-1",
    "体格检查",
    [
        Entry("DE04.10.188.00", "体重", "72", "PQ", "kg"),
        Entry("DE04.10.219.00", "一般状况检查结果", "发育正常，营养中等，神志清楚，查体合作。"),
        Entry("DE04.10.207.00", "心脏听诊结果", "心率 76 次/min，律齐，各瓣膜听诊区未闻及杂音。"),
        Entry("DE04.10.031.00", "肺部听诊结果", "双肺呼吸音清，未闻及干湿啰音。"),
        Entry("DE06.00.230.00", "气管检查结果", "气管居中，Mallampati 分级 Ⅱ 级，张口度 3 横指。"),
        Entry("DE04.10.264.00", "牙齿检查结果", "牙齿完整，无松动及义齿。"),
    ],
)
VISIT_STUDIES = Section(
    "30954-2",
    "实验室检查",
    [
        Entry("DE04.30.043.00", "心电图检查结果", "窦性心律，左心室高电压。"),
        Entry("DE04.50.142.00", "凝血功能检查结果", "PT 11.8 s，APTT 29.6 s，均在正常范围。"),
        Entry("DE04.50.026.00", "肝功能检查结果", "ALT 32 U/L，AST 28 U/L，总胆红素 14.2 μmol/L。"),
    ],
)
VISIT_PLAN = Section(
    "18776-5",
    "治疗计划",
    [
        Entry(
            "DE06.00.073.00",
            "拟实施麻醉方法代码",
            "1",
            "CD",
            coded=("2.16.156.10011.2.3.1.159", "麻醉方法代码表", "全身麻醉"),
        ),
        Entry(
            "DE06.00.287.00", "术前麻醉医嘱", "术前禁食 8 小时、禁饮 2 小时；手术日晨少量饮水服用氨氯地平。"
        ),
        Entry("DE06.00.227.00", "麻醉适应证", "ASA Ⅱ 级，无全身麻醉禁忌。"),
        Entry(
            "DE09.00.119.00",
            "注意事项",
            "术中挤压肿瘤及离断中央静脉前后注意血压波动，备乌拉地尔、去甲肾上腺素。",
        ),
    ],
)
ANAESTHESIA_DRUGS = Section(
    "18610-6",
    "用药管理",
    [
        Entry("DE08.50.022.00", "药物名称", "丙泊酚注射液"),
        Entry("DE06.00.136.00", "药物用法", "诱导 150 mg 静脉注射，维持 4～6 mg/(kg·h) 静脉泵注"),
    ],
)
ANAESTHESIA_FLUIDS = Section(
    "10216-0",
    "输液",
    [Entry("DE06.00.269.00", "术中输液项目", "乳酸钠林格注射液 1000 mL，羟乙基淀粉 500 mL")],
)
ANAESTHESIA_COURSE = Section(
    "59774-0",
    "麻醉",
    [
        Entry(
            "DE05.10.129.00",
            "ASA分级标准代码",
            "2",
            "CD",
            coded=("2.16.156.10011.2.3.1.255", "美国麻醉医师协会(ASA)分级标准代码表", "II"),
        ),
        Entry("DE06.00.228.00", "气管插管分类", "经口明视气管插管（7.5 号导管）"),
        Entry("DE08.50.022.00", "麻醉药物名称", "丙泊酚、舒芬太尼、罗库溴铵、七氟烷"),
        Entry("DE04.10.260.00", "麻醉体位", "左侧卧位"),
        Entry(
            "DE06.00.226.00",
            "麻醉描述",
            "08:40 静脉诱导，插管顺利，七氟烷复合丙泊酚维持；离断中央静脉前血压最高 178/102 mmHg，"
            "予乌拉地尔 10 mg；10:05 手术结束，10:25 清醒拔管，送麻醉恢复室。",
        ),
        Entry("DE06.00.253.00", "麻醉效果", "满意"),
    ],
)
ANAESTHESIA_MONITORING = Section(
    "11450-4",
    "主要健康问题",
    [
        Entry(
            "DE06.00.216.00",
            "常规监测项目名称",
            "心电图、有创动脉压、脉搏血氧饱和度、呼气末二氧化碳",
            related=[
                Entry("DE06.00.281.00", "常规监测项目结果", "窦性心律，SpO₂ 98%～100%，PetCO₂ 35～40 mmHg。")
            ],
        )
    ],
)
SURGICAL_WEIGHT = Section(  # C0012.xsd and C0019.xsd want a PQ with two decimals
    "8716-3", "生命体征", [Entry("DE04.10.188.00", "体重", "72.00", "PQ", "kg")]
)
RECOVERY_STATUS = Section(
    "10210-3",
    "一般状况检查",
    [Entry("DE04.10.219.00", "一般状况检查结果", "神志清楚，对答切题，无恶心呕吐，切口疼痛 VAS 2 分。")],
)
RECOVERY_ANAESTHESIA = Section(
    "59774-0", "麻醉", [Entry("DE06.00.227.00", "麻醉适应证", "ASA Ⅱ 级择期腹腔镜手术，全身麻醉。")]
)
RECOVERY = Section(
    "11450-4",
    "主要健康问题",
    [
        Entry("DE06.00.225.00", "麻醉恢复情况", "麻醉恢复平稳，Steward 评分 6 分，生命体征稳定。"),
        Entry("DE06.00.233.00", "清醒日期时间", "20261205102500", "TS"),
        Entry("DE05.10.158.00", "特殊情况", "无"),
    ],
)
WIFE_VITALS = [
    Entry("DE04.10.186.00", "体温", "36.7", "PQ", "℃"),
    Entry("DE04.10.118.00", "脉率", "84", "PQ", "次/min"),
    Entry("DE04.10.081.00", "呼吸频率", "19", "PQ", "次/min"),
    Entry("DE04.10.174.00", "收缩压", "126", "PQ", "mmHg"),
    Entry("DE04.10.176.00", "舒张压", "78", "PQ", "mmHg"),
]
LOA = ("2.16.156.10011.2.3.1.106", "胎方位代码表", "左枕前(LOA)")
LABOUR_PROBLEMS = Section(
    "11450-4",
    "主要健康问题",
    [
        Entry("DE06.00.197.00", "待产日期时间", "20261201080000", "TS"),
        Entry("DE04.01.108.00", "孕次", "2", "INT"),
        Entry("DE02.10.002.00", "产次", "1", "INT"),
        Entry("DE02.10.051.00", "末次月经日期", "20260301000000", "TS"),
        Entry("DE05.10.098.00", "预产期", "20261206000000", "TS"),
        Entry("DE05.10.070.00", "此次妊娠特殊情况", "高龄经产妇；孕期血压、血糖正常。"),
    ],
)
LABOUR_VITALS = Section(
    "8716-3",
    "生命体征",
    [
        Entry("DE04.10.188.00", "产前体重", "68", "PQ", "kg"),
        Entry("DE04.10.167.00", "身高", "162", "PQ", "cm"),
        *WIFE_VITALS,
    ],
)
LABOUR_PAST = Section(
    "11348-0",
    "既往史",
    [
        Entry("DE02.10.099.00", "既往史", "体健，否认高血压、糖尿病、心脏病史，否认手术、输血史。"),
        Entry("DE02.10.098.00", "既往孕产史", "2019 年足月顺产一女婴，体健。"),
    ],
)
PRENATAL_EXAM = Section(
    "57073-9",
    "产前检查",
    [
        Entry("DE04.10.067.00", "宫底高度", "33", "PQ", "cm"),
        Entry("DE04.10.052.00", "腹围", "98", "PQ", "cm"),
        Entry("DE05.01.044.00", "胎方位代码", "01", "CD", coded=LOA),
        Entry("DE04.10.183.00", "胎心率", "142", "PQ", "次/min"),
        Entry("DE04.10.245.00", "宫缩情况", "规律宫缩，间隔 4～5 分钟，持续 30 秒，强度中等。"),
        Entry("DE04.10.265.00", "宫口情况", "宫口开大 2 cm，宫颈管消退 80%。"),
        Entry("DE04.10.262.00", "先露位置", "头先露，S-2"),
    ],
)
LABOUR_PLAN = Section(
    "18776-5",
    "处置计划",
    [
        Entry("DE05.10.014.00", "处置计划", "入产房待产，持续胎心监护，观察产程进展。"),
        Entry(
            "DE06.00.190.00", "产程经过", "04:00 出现规律宫缩，08:00 入院时宫口开大 2 cm，胎心 142 次/min。"
        ),
    ],
)
DELIVERY_PAST = Section(
    "11348-0",
    "既往史",
    [Entry("DE04.01.108.00", "孕次", "2", "INT"), Entry("DE02.10.002.00", "产次", "2", "INT")],
)
VAGINAL_DELIVERY = Section(
    "57074-7",
    "阴道分娩",
    [
        Entry("DE05.10.098.00", "预产期", "20261206000000", "TS"),
        Entry("DE06.00.224.00", "临产日期时间", "20261201040000", "TS"),
        Entry("DE05.10.154.00", "胎膜破裂日期时间", "20261201113000", "TS"),
        Entry("DE04.30.058.00", "前羊水性状", "清亮"),
        Entry("DE06.00.021.00", "第1产程时长", "630", "PQ", "min"),
        Entry("DE04.10.250.00", "宫口开全日期时间", "20261201143000", "TS"),
        Entry("DE06.00.019.00", "第2产程时长", "35", "PQ", "min"),
        Entry("DE02.01.014.00", "胎儿娩出日期时间", "20261201150500", "TS"),
        Entry("DE06.00.020.00", "第3产程时长", "7", "PQ", "min"),
        Entry("DE06.00.273.00", "胎盘娩出日期时间", "20261201151200", "TS"),
        Entry("DE04.10.236.00", "总产程时长", "672", "PQ", "min"),
        Entry("DE05.01.044.00", "胎方位代码", "01", "CD", coded=LOA),
        Entry(
            "DE06.00.182.00",
            "分娩过程摘要",
            "LOA 位自然分娩一活男婴，胎盘胎膜娩出完整；会阴Ⅰ度裂伤，可吸收线缝合。",
        ),
    ],
)
POSTPARTUM = Section(
    "57076-2",
    "产后处置",
    [
        Entry("DE05.10.007.00", "产后诊断", "孕2产2 孕39+2周 LOA 顺产 单活胎"),
        Entry("DE06.00.218.00", "产后观察日期时间", "20261201171200", "TS"),
        *WIFE_VITALS[1:],
        Entry("DE04.10.012.00", "产后出血量", "220", "PQ", "mL"),
    ],
)
NEWBORN = Section(
    "57075-4",
    "新生儿",
    [
        Entry(
            "DE02.01.040.00",
            "新生儿性别代码",
            "1",
            "CD",
            coded=("2.16.156.10011.2.3.3.4", "生理性别代码表(GB/T 2261.1)", "男性"),
        ),
        Entry("DE04.10.019.00", "新生儿出生体重", "3350", "PQ", "g"),
        Entry("DE04.10.018.00", "新生儿出生身长", "50", "PQ", "cm"),
    ],
)
DELIVERY_ASSESSMENT = Section(
    "51848-0",
    "分娩评估",
    [
        Entry(
            "DE06.00.215.00",
            "Apgar评分间隔时间代码",
            "1",
            "CD",
            coded=("2.16.156.10011.2.3.2.48", "Apgar评分间隔时间代码表", "1分钟"),
        ),
        Entry("DE05.10.001.00", "Apgar评分值", "9", "INT"),
        Entry(
            "DE06.00.026.00",
            "分娩结局代码",
            "1",
            "CD",
            coded=("2.16.156.10011.2.3.2.49", "分娩结局代码表", "活产"),
        ),
        Entry(
            "DE05.10.160.00",
            "新生儿异常情况代码",
            "1",
            "CD",
            coded=("2.16.156.10011.2.3.1.254", "新生儿异常情况代码表", "无"),
        ),
    ],
)
CAESAREAN = Section(
    "47519-4",
    "手术操作",
    [
        Entry("DE05.10.109.00", "产前诊断", "孕2产1 孕39+2周 LOA 临产 胎儿窘迫"),
        Entry("DE06.00.340.00", "手术指征", "胎儿窘迫（胎心监护反复出现晚期减速）"),
        Entry(
            "DE06.00.093.00",
            "手术及操作编码",
            "74.1",
            "CD",
            coded=("2.16.156.10011.2.3.3.12", "ICD-9-CM-3", "子宫下段剖宫产术"),
        ),
        Entry(
            "DE05.10.063.00",
            "剖宫产手术过程",
            "腰硬联合麻醉下取下腹横切口逐层进腹，子宫下段横切口，破膜见羊水Ⅱ度污染，以 LOA 位娩出一活男婴；"
            "胎盘胎膜娩出完整，缩宫素 10 U 宫体注射，子宫切口双层连续缝合，探查双附件无异常，逐层关腹。",
        ),
        Entry("DE04.10.233.00", "子宫情况", "子宫收缩好"),
        Entry("DE06.00.097.00", "出血量", "300", "PQ", "mL"),
        Entry("DE06.00.259.00", "手术全程时间", "48", "PQ", "min"),
    ],
)
CAESAREAN_POSTPARTUM = Section(
    "57076-2",
    "产后处置",
    [
        Entry("DE05.10.007.00", "产后诊断", "孕2产2 孕39+2周 LOA 剖宫产 单活胎；胎儿窘迫"),
        Entry("DE06.00.218.00", "产后观察日期时间", "20261201140000", "TS"),
        *WIFE_VITALS[1:],
        Entry("DE04.10.012.00", "产后出血量", "360", "PQ", "mL"),
    ],
)
NURSING_ASSESSMENT = Section(
    "51848-0",
    "健康评估",
    [
        Entry(
            "DE03.00.080.00",
            "饮食情况代码",
            "1",
            "CD",
            coded=("2.16.156.10011.2.3.2.34", "饮食情况代码表", "良好"),
        )
    ],
)
LIFESTYLE_GUIDANCE = Section(
    "69730-0",
    "健康指导",
    [
        Entry(
            "DE06.00.238.00",
            "生活方式指导",
            "低盐低脂饮食，每日食盐少于 5 g；戒烟限酒；起床、转身动作放缓，防跌倒。",
        )
    ],
)
SECOND_LEVEL_CARE = Entry(
    "DE06.00.211.00",
    "护理等级代码",
    "3",
    "CD",
    coded=("2.16.156.10011.2.3.1.259", "护理等级代码表", "二级护理"),
)
SPECIAL_CARE = Entry(
    "DE06.00.211.00",
    "护理等级代码",
    "1",
    "CD",
    coded=("2.16.156.10011.2.3.1.259", "护理等级代码表", "特级护理"),
)
BASIC_CARE = Entry(
    "DE06.00.212.00",
    "护理类型代码",
    "1",
    "CD",
    coded=("2.16.156.10011.2.3.1.260", "护理类型代码表", "基础护理"),
)
WARD_NURSING = Section("", "护理记录", [SECOND_LEVEL_CARE, BASIC_CARE])
WARD_OBSERVATION = Section(
    "",
    "护理观察",
    [
        Entry(
            "DE02.10.031.00",
            "护理观察项目名称",
            "头晕、乏力",
            related=[
                Entry("DE02.10.028.00", "护理观察结果", "头晕较前减轻，无视物模糊，双下肢乏力，步态平稳。")
            ],
        )
    ],
)
WARD_NURSING_PROCEDURE = Section(
    "",
    "护理操作",
    [
        Entry(
            "DE06.00.342.00",
            "护理操作名称",
            "血压监测",
            related=[
                Entry(
                    "DE06.00.210.00",
                    "护理操作项目类目名称",
                    "无创血压测量（右上臂，坐位）",
                    related=[Entry("DE06.00.209.00", "护理操作结果", "血压 138/86 mmHg")],
                )
            ],
        )
    ],
)
CRITICAL_VITALS = Section(
    "8716-3",
    "生命体征",
    [
        Entry("DE04.10.186.00", "体温", "37.8", "PQ", "℃"),
        Entry("DE04.10.206.00", "心率", "56", "PQ", "次/min"),
        Entry("DE04.10.081.00", "呼吸频率", "10", "PQ", "次/min"),
        Entry("DE04.10.174.00", "收缩压", "208", "PQ", "mmHg"),
        Entry("DE04.10.176.00", "舒张压", "118", "PQ", "mmHg"),
        Entry("DE04.50.149.00", "血氧饱和度", "92", "PQ", "%"),
        Entry("DE04.50.102.00", "血糖检测值", "8.6", "PQ", "mmol/L"),
    ],
)
CRITICAL_NURSING = Section("", "护理记录", [SPECIAL_CARE, BASIC_CARE])
CRITICAL_OBSERVATION = Section(
    "",
    "护理观察",
    [
        Entry(
            "DE02.10.031.00",
            "护理观察项目名称",
            "意识及瞳孔",
            related=[
                Entry(
                    "DE02.10.028.00",
                    "护理观察结果",
                    "深昏迷，GCS 5 分；右侧瞳孔 5 mm，左侧 3 mm，对光反射消失。",
                )
            ],
        )
    ],
)
CRITICAL_NURSING_PROCEDURE = Section(
    "",
    "护理操作",
    [
        Entry(
            "DE06.00.342.00",
            "护理操作名称",
            "人工气道护理",
            related=[
                Entry(
                    "DE06.00.210.00",
                    "护理操作项目类目名称",
                    "气管插管固定、声门下吸引",
                    related=[
                        Entry(
                            "DE06.00.209.00", "护理操作结果", "导管距门齿 23 cm，固定良好，吸出少量白色黏痰。"
                        )
                    ],
                )
            ],
        ),
        Entry(
            "DE06.00.207.00",
            "呼吸机监护项目",
            "SIMV 模式，潮气量 450 mL，频率 14 次/min，FiO₂ 50%，PEEP 5 cmH₂O",
        ),
    ],
)
OR_SKIN = Section(
    "29302-7", "皮肤", [Entry("DE04.10.126.00", "皮肤检查描述", "术前、术后皮肤完整，受压部位无压红。")]
)
OR_NURSING = Section(
    "",
    "护理记录",
    [
        Entry(
            "DE06.00.211.00",
            "护理等级代码",
            "2",
            "CD",
            coded=("2.16.156.10011.2.3.1.259", "护理等级代码表", "一级护理"),
        ),
        BASIC_CARE,
    ],
)
INSTRUMENT_COUNT = Section(
    "",
    "术前器械物品核对",
    [
        Entry("DE08.50.042.00", "术中所用物品名称", "纱布 10 块、缝针 2 枚、腹腔镜器械 1 套、结扎夹 4 枚"),
        Entry("DE09.00.111.00", "术前清点标志", "true", "BL"),
    ],
)
OR_HANDOVER = Section(
    "8648-8",
    "术后交接",
    [
        Entry(
            "DE06.00.206.00",
            "病人交接核对项目",
            "神志、生命体征、皮肤、切口敷料、引流管、静脉通路及病历资料核对无误，送回泌尿外科病房。",
        )
    ],
)
INTAKE_OUTPUT = Section(
    "",
    "护理观察",
    [
        Entry(
            "DE02.10.031.00",
            "护理观察项目名称",
            "24 小时出入量",
            related=[
                Entry(
                    "DE02.10.028.00",
                    "护理观察结果",
                    "入量 2400 mL（鼻饲 900 mL、静脉 1500 mL），出量 3100 mL（尿量 3000 mL、胃液 100 mL）。",
                )
            ],
        )
    ],
)
DEHYDRATION = Section(
    "10160-0",
    "用药",
    [
        Entry("DE08.50.022.00", "药物名称", "20% 甘露醇注射液"),
        Entry("DE06.00.136.00", "药物用法", "125 mL 静脉快速滴注，每 8 小时一次"),
        Entry("DE06.00.135.00", "药物使用总剂量", "375", "PQ", "mL"),
    ],
)
NURSING_FLAGS = Section(
    "",
    "护理标志",
    [
        Entry("DE04.01.048.00", "呕吐标志", "true", "BL"),
        Entry("DE04.01.051.00", "排尿困难标志", "false", "BL"),
    ],
)
IMPLANTS = Section(
    "10160-0",
    "高值耗材",
    [Entry("DE08.50.058.00", "植入性耗材标志", "true", "BL")],
    "可吸收结扎夹（Hem-o-lok）4 枚，用于夹闭右肾上腺中央静脉，植入体内。",
)
ADMISSION_INFO = Section(
    "",
    "入院信息",
    [
        Entry("DE05.10.053.00", "入院原因", "血压控制不佳伴头晕、乏力 1 周"),
        Entry(
            "DE06.00.339.00",
            "入院途径代码",
            "1",
            "CD",
            coded=("2.16.156.10011.2.3.1.270", "入院途径代码表", "门诊"),
        ),
        Entry("DE06.00.237.00", "入病房方式", "步行"),
    ],
)
ADMISSION_ASSESSMENT = Section(
    "51848-0",
    "健康评估",
    [
        Entry("DE05.10.065.00", "睡眠状况", "入睡困难，每晚睡眠约 5 小时"),
        Entry(
            "DE05.10.097.00",
            "营养状态代码",
            "1",
            "CD",
            coded=("2.16.156.10011.2.3.2.54", "营养状态代码表", "良好"),
        ),
        Entry(
            "DE05.10.122.00",
            "自理能力代码",
            "1",
            "CD",
            coded=("2.16.156.10011.2.3.2.55", "自理能力代码表", "完全自理"),
        ),
        *NURSING_ASSESSMENT.entries,
    ],
)
LIFESTYLE = Section(
    "",
    "生活方式",
    [
        Entry("DE03.00.070.00", "吸烟标志", "true", "BL"),
        Entry("DE03.00.053.00", "日吸烟量", "10", "PQ", "支"),
        Entry("DE03.00.030.00", "饮酒标志", "false", "BL"),
    ],
)
ADMISSION_NURSING_COURSE = Section(
    "8648-8",
    "住院过程",
    [
        Entry(
            "DE06.00.280.00",
            "通知医师标志",
            "true",
            "BL",
            related=[Entry("DE06.00.279.00", "通知医师日期时间", "20261124100000", "TS")],
        ),
        Entry("DE05.10.144.00", "评估日期时间", "20261124100000", "TS"),
    ],
)
CARE_PROBLEMS = Section(
    "11450-4", "主要健康问题", [Entry("DE05.01.024.00", "疾病诊断编码", "I10.x00", "CD", coded=DX)]
)
CARE_PLAN = Section(
    "",
    "护理记录",
    [
        SECOND_LEVEL_CARE,
        BASIC_CARE,
        Entry("DE05.10.136.00", "护理问题", "头晕、乏力（低钾血症），有跌倒的危险"),
        Entry(
            "DE06.00.178.00",
            "安全护理代码",
            "1",
            "CD",
            coded=("2.16.156.10011.2.3.2.52", "安全护理代码表", "勤巡视病房"),
        ),
    ],
)
DISCHARGE_STATUS = Section(
    "11535-2",
    "出院诊断",
    [
        Entry("DE05.01.024.00", "出院诊断编码", "I10.x00", "CD", coded=DX),
        Entry("DE06.00.017.00", "出院日期时间", "20261201103000", "TS"),
        Entry("DE06.00.193.00", "出院情况", "无头晕，血压 128/80 mmHg。"),
        Entry(
            "DE06.00.223.00",
            "离院方式代码",
            "1",
            "CD",
            coded=("2.16.156.10011.2.3.1.265", "离院方式代码表", "医嘱离院"),
        ),
    ],
)
DISCHARGE_GUIDANCE = Section(
    "69730-0",
    "健康指导",
    [
        Entry("DE06.00.238.00", "生活方式指导", "低盐低脂饮食，戒烟限酒，规律作息，适量有氧运动。"),
        Entry("DE06.00.124.00", "宣教内容", "家庭血压自测方法及记录；高血压急症的预警症状。"),
        Entry("DE06.00.299.00", "复诊指导", "出院 2 周后心血管内科门诊复诊，复查血压、血钾。"),
        Entry("DE06.00.136.00", "用药指导", "氨氯地平片 5 mg 口服 每日一次，不可自行停药。"),
    ],
)
DISCHARGE_ASSESSMENT = Section(
    "51848-0",
    "健康评估",
    [
        Entry(
            "DE05.10.122.00",
            "自理能力代码",
            "1",
            "CD",
            coded=("2.16.156.10011.2.3.2.55", "自理能力代码表", "完全自理"),
        ),
        *NURSING_ASSESSMENT.entries,
    ],
)
CONSENT_SURGERY_PLAN = Section(
    "18776-5",
    "治疗计划",
    [
        Entry(
            "DE06.00.093.00",
            "拟实施手术及操作编码",
            "07.2201",
            "CD",
            coded=("2.16.156.10011.2.3.3.12", "ICD-9-CM-3", "腹腔镜下单侧肾上腺切除术"),
        ),
        Entry("DE06.00.302.00", "手术方式", "腹腔镜经腹膜后入路右侧肾上腺切除术，必要时中转开放手术"),
        Entry("DE06.00.271.00", "术前准备", "螺内酯控制血压、纠正血钾至 4.0 mmol/L 以上；术前禁食 8 小时"),
        Entry("DE05.10.141.00", "手术禁忌症", "无"),
        Entry("DE06.00.340.00", "手术指征", "右肾上腺醛固酮瘤，药物控制血压不佳"),
        Entry(
            "DE06.00.073.00",
            "拟实施麻醉方法代码",
            "1",
            "CD",
            coded=("2.16.156.10011.2.3.1.159", "麻醉方法代码表", "全身麻醉"),
        ),
        Entry("DE06.00.301.00", "替代方案", "长期口服螺内酯等药物治疗，需终身服药并监测血钾。"),
    ],
)
SURGERY_RISK = Section(
    "",
    "操作风险",
    [
        Entry(
            "DE05.10.162.00",
            "手术中可能出现的意外及风险",
            "麻醉意外；术中血压剧烈波动、心脑血管意外；下腔静脉、肾血管损伤出血；中转开放手术。",
        ),
        Entry(
            "DE05.01.075.00",
            "手术后可能出现的意外及并发症",
            "切口感染、出血；低血钾或高血钾；肾上腺皮质功能不足。",
        ),
    ],
)

# -- sections first used by C0027-C0052 (keep this marker) --
# the surgical stay (WS/T 500.27-.29, .42, .46-.48): work-up of his hypertension finds a right adrenal
# aldosteronoma, removed laparoscopically under general anaesthesia
ALDOSTERONISM = ("2.16.156.10011.2.3.3.11", "ICD-10", "原发性醛固酮增多症")
ADRENALECTOMY = ("2.16.156.10011.2.3.3.12", "ICD-9-CM-3", "腹腔镜下单侧肾上腺切除术")
GENERAL_ANAESTHESIA = ("2.16.156.10011.2.3.1.159", "麻醉方法代码表", "全身麻醉")
# the fatal stay (WS/T 500.30, .36, .44, .50, .51): a hypertensive basal ganglia haemorrhage
BLEED = ("2.16.156.10011.2.3.3.11", "ICD-10", "基底节脑出血")
HERNIATION = ("2.16.156.10011.2.3.3.11", "ICD-10", "脑疝")
VERTIGO = ("2.16.156.10011.2.3.3.14", "中医病证分类与代码表(GB/T 15657)", "眩晕病")
ADRENAL_DX = Entry("DE05.01.024.00", "诊断编码", "E26.000", "CD", coded=ALDOSTERONISM)
BLEED_DX = Entry("DE05.01.024.00", "诊断编码", "I61.000", "CD", coded=BLEED)
RELIABLE = Entry("DE05.10.143.00", "陈述内容可靠标志", "true", "BL")
FOUR_EXAMINATIONS = Entry("DE02.10.028.00", "中医“四诊”观察结果", "面红目赤，舌红苔黄，脉弦数。")
SURGERY_DIAGNOSIS = Section("29548-5", "诊断记录", [ADRENAL_DX])
PRE_OP_DX = Section("10219-4", "术前诊断", [ADRENAL_DX])
CONSENT_OPINIONS = Section(
    "",
    "意见章节",
    [
        Entry("DE06.00.018.00", "医疗机构的意见", "已向患者及家属说明必要性、风险及替代方案，建议实施。"),
        Entry("DE06.00.018.00", "患者的意见", "已充分知情，同意实施，愿承担相应风险。"),
    ],
)
ANAESTHESIA_PLAN = Section(
    "18776-5",
    "治疗计划",
    [
        Entry("DE06.00.073.00", "拟实施麻醉方法代码", "1", "CD", coded=GENERAL_ANAESTHESIA),
        Entry("DE06.00.093.00", "拟实施手术及操作编码", "07.2201", "CD", coded=ADRENALECTOMY),
        Entry("DE04.01.121.00", "患者基础疾病", "高血压 3 级，低钾血症（已纠正）"),
        Entry("DE05.10.146.00", "基础疾病可能对麻醉产生的影响", "术中肿瘤挤压可致血压剧烈波动。"),
        Entry("DE06.00.240.00", "使用麻醉镇痛泵标志", "true", "BL"),
        Entry("DE01.00.016.00", "参加麻醉安全保险标志", "false", "BL"),
    ],
)
ANAESTHESIA_RISK = Section(
    "",
    "操作风险",
    [
        Entry(
            "DE05.01.075.00",
            "麻醉中、麻醉后可能发生的意外及并发症",
            "血压剧烈波动、心律失常、喉头水肿、反流误吸、术后恶心呕吐，严重时危及生命。",
        )
    ],
)
TRANSFUSION_HISTORY = Section(
    "56836-0",
    "输血",
    [
        Entry(
            "DE06.00.106.00",
            "输血史标识",
            "1",
            "CD",
            coded=("2.16.156.10011.2.3.2.49", "输血史标识代码表", "无"),
        )
    ],
)
TRANSFUSION_PLAN = Section(
    "18776-5",
    "治疗计划",
    [
        Entry("DE06.00.340.00", "输血指征", "术中出血量超过 800 ml 或血红蛋白低于 70 g/L。"),
        Entry("DE06.00.266.00", "输血方式", "静脉输注"),
        Entry(
            "DE05.10.109.00",
            "输血前有关检查项目及结果",
            "ABO 血型 A 型，Rh(D) 阳性；血红蛋白 142 g/L；乙肝、丙肝、梅毒、HIV 抗体阴性。",
        ),
    ],
)
TRANSFUSION_RISK = Section(
    "",
    "操作风险",
    [
        Entry(
            "DE06.00.130.00",
            "输血风险及可能发生的不良后果",
            "发热、过敏、溶血反应，经血传播疾病，输血相关急性肺损伤。",
        )
    ],
)
SPECIAL_EXAM_PLAN = Section(
    "59772-4",
    "治疗计划",
    [
        Entry(
            "DE06.00.306.00",
            "特殊检查及特殊治疗项目名称",
            "双侧肾上腺静脉采血术",
            related=[
                Entry("DE06.00.305.00", "特殊检查及特殊治疗目的", "明确醛固酮优势分泌侧别，指导手术决策。")
            ],
        ),
        Entry("DE06.00.301.00", "替代方案", "肾上腺增强 CT 结合临床资料判断，或长期口服螺内酯治疗。"),
    ],
)
SPECIAL_EXAM_RISK = Section(
    "",
    "操作风险",
    [
        Entry(
            "DE05.01.075.00",
            "特殊检查及特殊治疗可能引起的并发症及风险",
            "穿刺部位血肿、肾上腺静脉破裂出血、造影剂过敏。",
        )
    ],
)
BLEED_DIAGNOSIS = Section("29548-5", "诊断记录", [BLEED_DX])
CRITICAL_NOTICE = Section(
    "34895-3",
    "知情同意",
    [
        Entry(
            "DE06.00.183.00",
            "病情概况以及主要抢救措施",
            "右侧基底节脑出血破入脑室，昏迷，随时可能发生脑疝、呼吸心跳骤停；予脱水降颅压、控制血压、气管插管呼吸支持。",
        )
    ],
)
OTHER_CONSENT = Section(
    "34895-3",
    "知情同意",
    [
        Entry("DE09.00.117.00", "知情同意书名称", "自费药品使用知情同意书"),
        Entry("DE09.00.116.00", "知情同意内容", "病情需静脉使用乌拉地尔注射液，属医保目录外药品，费用自理。"),
    ],
)
FRONT_PAGE_DX = Section(
    "29548-5", "诊断记录", [Entry("DE05.01.024.00", "门(急)诊诊断疾病编码", "I10.x00", "CD", coded=DX)]
)
FRONT_PAGE_DISCHARGE = Section(
    "11535-2",
    "出院诊断",
    [
        Entry("DE05.01.024.00", "出院诊断-主要诊断疾病编码", "I10.x00", "CD", coded=DX),
        Entry(
            "DE09.00.104.00",
            "入院病情代码",
            "1",
            "CD",
            coded=("2.16.156.10011.2.3.1.253", "入院病情代码表", "有"),
        ),
        Entry(
            "DE06.00.223.00",
            "离院方式",
            "1",
            "CD",
            coded=("2.16.156.10011.2.3.1.265", "离院方式代码表", "医嘱离院"),
        ),
    ],
)
FRONT_PAGE_ALLERGY = Section("48765-2", "过敏史", [Entry("DE02.10.023.00", "过敏史标志", "false", "BL")])
BLOOD_GROUP = Section(
    "30954-2",
    "实验室检查",
    [
        Entry(
            "DE04.50.001.00", "ABO 血型", "1", "CD", coded=("2.16.156.10011.2.3.1.85", "ABO血型代码表", "A型")
        ),
        Entry(
            "DE04.50.010.00",
            "Rh 血型",
            "2",
            "CD",
            coded=("2.16.156.10011.2.3.1.250", "Rh(D)血型代码表", "阳性"),
        ),
    ],
)
ADMISSIONS = Section("11336-5", "住院史", [Entry("DE02.10.090.00", "住院次数", "1", "INT")])
TCM_ADMISSIONS = Section("11336-5", "住院史", [Entry("DE02.10.090.00", "住院次数", "1", "PQ", "次")])
LENGTH_OF_STAY = Section("8648-8", "住院过程", [Entry("DE06.00.310.00", "实际住院天数", "7", "PQ", "天")])
RECORD_QUALITY = Section(
    "",
    "行政管理",
    [
        Entry(
            "DE09.00.103.00", "病案质量", "1", "CD", coded=("2.16.156.10011.2.3.2.29", "病案质量等级表", "甲")
        )
    ],
)
READMISSION = Section(
    "18776-5", "治疗计划", [Entry("DE06.00.194.00", "出院 31 天内再住院标志", "false", "BL")]
)
PAYMENT = Section(
    "48768-6",
    "费用",
    [
        Entry(
            "DE07.00.007.00",
            "医疗付费方式代码",
            "01",
            "CD",
            coded=("2.16.156.10011.2.3.1.269", "医疗付费方式代码表", "城镇职工基本医疗保险"),
        )
    ],
)
TCM_DISCHARGE = Section(
    "11535-2",
    "出院诊断",
    [
        Entry("DE05.10.130.00", "出院中医诊断-主病代码", "BNG070", "CD", coded=VERTIGO),
        *FRONT_PAGE_DISCHARGE.entries,
    ],
)
PROBLEMS = Section(
    "11450-4",
    "主要健康问题",
    [
        RELIABLE,
        Entry(
            "DE04.01.118.00",
            "症状名称",
            "头晕",
            related=[Entry("DE04.01.117.00", "症状描述", "头晕呈昏沉感，晨起明显，无视物旋转。")],
        ),
    ],
)
DEATH_COMPLAINT = Section(
    "10154-3",
    "主诉",
    [Entry("DE04.01.119.00", "主诉", "突发意识不清伴呕吐 2 小时")],
    "突发意识不清伴呕吐 2 小时。",
)
DEATH_PROBLEMS = Section("11450-4", "主要健康问题", [RELIABLE])
DEATH_ADMISSION_DX = Section("46241-6", "入院诊断", [BLEED_DX])
DEATH_PLAN = Section("18776-5", "治疗计划", [Entry("DE06.00.300.00", "治则治法", "醒脑开窍，平肝息风")])
DEATH_DX = Entry(
    "DE05.01.025.00",
    "死亡诊断名称",
    "右侧基底节脑出血破入脑室，脑疝",
    related=[Entry("DE05.01.024.00", "死亡诊断编码", "I61.000", "CD", coded=BLEED)],
)
DEATH_COURSE = Section(
    "8648-8",
    "住院过程",
    [
        Entry(
            "DE05.10.148.00",
            "入院情况",
            "深昏迷，右侧瞳孔散大，血压 210/120 mmHg，CT 示右侧基底节出血约 45 ml 破入脑室。",
        ),
        Entry(
            "DE06.00.296.00",
            "诊疗过程描述",
            "予甘露醇脱水、乌拉地尔控制血压、气管插管呼吸支持，家属拒绝手术。",
        ),
        Entry("DE05.10.099.00", "死亡原因", "脑疝致中枢性呼吸循环衰竭"),
        DEATH_DX,
    ],
)
ROUNDS = Section(
    "51848-0",
    "健康评估",
    [
        Entry(
            "DE06.00.181.00",
            "查房记录",
            "主任医师查房：患者血压仍波动于 150-160/90-100 mmHg，低血钾，需排查继发性高血压。",
        )
    ],
)
TCM_DIAGNOSIS = Section("29548-5", "诊断记录", [FOUR_EXAMINATIONS])
TCM_MEDICATION = Section(
    "10160-0",
    "用药",
    [
        Entry("DE06.00.287.00", "中药处方医嘱内容", "天麻钩藤饮加减，每日一剂"),
        Entry("DE08.50.047.00", "中药煎煮方法", "水煎两次，取汁 400 ml"),
        Entry("DE06.00.136.00", "中药用药方法", "早晚分服，饭后温服"),
    ],
)
TCM_PLAN = Section(
    "18776-5",
    "治疗计划",
    [Entry("DE05.10.131.00", "辨证论治", "肝阳上亢证，治以平肝潜阳，方选天麻钩藤饮加减。")],
)
ROUNDS_ORDERS = Section(
    "46209-3",
    "医嘱",
    [Entry("DE06.00.287.00", "医嘱内容", "查血浆醛固酮/肾素比值，继续氨氯地平 5 mg 每日一次")],
)
DISCUSSION = Section(
    "51848-0",
    "健康评估",
    [
        Entry(
            "DE06.00.018.00",
            "讨论意见",
            "难治性高血压伴低血钾，醛固酮/肾素比值升高，CT 示右肾上腺结节，考虑醛固酮瘤。",
        ),
        Entry("DE06.00.018.00", "主持人总结意见", "行肾上腺静脉采血明确优势侧后，转泌尿外科手术治疗。"),
    ],
)
HANDOVER_ADMISSION_DX = Section(
    "46241-6",
    "入院诊断",
    [
        Entry("DE05.10.148.00", "入院情况", "神志清，血压 165/98 mmHg，血钾 3.1 mmol/L。"),
        Entry("DE05.01.024.00", "入院诊断-西医诊断编码", "I10.x00", "CD", coded=DX),
        Entry("DE05.10.130.00", "入院诊断-中医病名代码", "BNG070", "CD", coded=VERTIGO),
    ],
)
CURRENT_DX = Section(
    "29548-5",
    "诊断记录",
    [
        Entry("DE06.00.184.00", "目前情况", "头晕减轻，血压 150/92 mmHg，补钾后血钾 3.8 mmol/L。"),
        Entry("DE05.01.024.00", "目前诊断-西医诊断编码", "I10.x00", "CD", coded=DX),
        FOUR_EXAMINATIONS,
    ],
)
HANDOVER_PLAN = Section(
    "18776-5",
    "治疗计划",
    [
        Entry("DE06.00.298.00", "接班诊疗计划", "监测血压、血钾，完善醛固酮/肾素比值及肾上腺 CT。"),
        Entry("DE06.00.300.00", "治则治法", "平肝潜阳"),
        Entry("DE09.00.119.00", "注意事项", "夜间血压超过 180/110 mmHg 时通知值班医师。"),
    ],
)
WARD_COURSE = Section(
    "8648-8",
    "住院过程",
    [Entry("DE06.00.296.00", "诊疗过程描述", "入院后予氨氯地平降压、口服补钾，血压逐步下降。")],
)
TRANSFER_DX = Section(
    "29548-5",
    "诊断记录",
    [
        Entry(
            "DE06.00.184.00", "目前情况", "血压 145/90 mmHg，血钾 3.9 mmol/L，肾上腺静脉采血示右侧优势分泌。"
        ),
        Entry("DE05.01.024.00", "目前诊断-西医诊断编码", "E26.000", "CD", coded=ALDOSTERONISM),
    ],
)
TRANSFER_PLAN = Section(
    "18776-5",
    "治疗计划",
    [
        Entry("DE06.00.298.00", "转入诊疗计划", "完善术前准备，择期行腹腔镜下右侧肾上腺切除术。"),
        Entry("DE09.00.119.00", "注意事项", "术前继续螺内酯及补钾，监测血压、血钾。"),
    ],
)
TRANSFER = Section(
    "",
    "转科记录",
    [
        Entry(
            "DE06.00.314.00",
            "转科记录类型",
            "1",
            "CD",
            coded=("2.16.156.10011.2.3.2.56", "转科记录类型代码表", "转入记录"),
        ),
        Entry("DE08.10.026.00", "转出科室名称", "心血管内科"),
        Entry("DE08.10.026.00", "转入科室名称", "泌尿外科"),
        Entry("DE06.00.315.00", "转科目的", "右肾上腺醛固酮瘤手术治疗"),
    ],
)
RESCUE_DX = Section(
    "29548-5",
    "诊断记录",
    [
        Entry("DE05.01.025.00", "疾病诊断名称", "右侧基底节脑出血", related=[BLEED_DX]),
        Entry(
            "DE05.10.134.00", "病情变化情况", "突发呼吸节律不规则，右侧瞳孔散大至 5 mm，血氧饱和度降至 82%。"
        ),
    ],
)
RESCUE_PLAN = Section(
    "18776-5", "治疗计划", [Entry("DE09.00.119.00", "注意事项", "严密监测瞳孔、呼吸及血压变化。")]
)
RESCUE = Section(
    "47519-4",
    "手术操作",
    [
        Entry(
            "DE06.00.093.00",
            "手术及操作编码",
            "96.0400",
            "CD",
            coded=("2.16.156.10011.2.3.3.12", "ICD-9-CM-3", "气管内插管"),
        ),
        Entry("DE06.00.094.00", "抢救措施", "经口气管插管，呼吸机辅助通气，甘露醇 250 ml 快速静滴。"),
        Entry("DE06.00.251.00", "操作方法", "可视喉镜下经口插入 7.5 号气管导管，深度 23 cm。"),
        Entry("DE06.00.250.00", "操作次数", "1", "PQ", "次"),
        Entry("DE06.00.221.00", "抢救开始日期时间", "20261201233000", "TS"),
        Entry("DE06.00.218.00", "抢救结束日期时间", "20261202001500", "TS"),
    ],
)
RESCUE_STUDIES = Section(
    "30954-2",
    "实验室检查",
    [
        Entry(
            "DE04.30.020.00",
            "检查/检验项目名称",
            "头颅 CT",
            related=[
                Entry("DE04.30.009.00", "检查/检验结果", "右侧基底节出血约 45 ml，破入脑室，中线左移 8 mm。")
            ],
        )
    ],
)
CASE_SUMMARY = Section(
    "DE06.00.182.00",
    "病历摘要",
    text="男，41 岁，高血压 3 年伴低血钾，醛固酮/肾素比值升高，CT 及肾上腺静脉采血示右肾上腺醛固酮瘤。",
)
PRE_OP_SUMMARY_DX = Section(  # WS/T 500.46's example codes its 术前诊断 section 11535-2
    "11535-2",
    "术前诊断",
    [
        ADRENAL_DX,
        Entry(
            "DE05.01.070.00", "诊断依据", "高血压伴低血钾，醛固酮/肾素比值 68，CT 示右肾上腺 1.5 cm 结节。"
        ),
    ],
)
PRE_OP_PAST = Section(
    "11348-0",
    "既往史",
    [
        Entry("DE02.10.023.00", "过敏史标志", "false", "BL"),
        Entry("DE02.10.022.00", "过敏史", "否认药物及食物过敏史。"),
    ],
)
AUX_EXAM = Section(
    "", "辅助检查", [Entry("DE04.30.009.00", "辅助检查结果", "肾上腺增强 CT：右肾上腺 1.5 cm 低密度结节。")]
)
INDICATIONS = Section(
    "47519-4",
    "手术",
    [
        Entry("DE05.10.151.00", "手术适应证", "单侧醛固酮瘤"),
        Entry("DE05.10.141.00", "手术禁忌症", "无"),
        Entry("DE06.00.340.00", "手术指征", "右肾上腺醛固酮瘤，药物控制血压不佳。"),
    ],
)
PRE_OP_CONSULT = Section(
    "", "会诊意见", [Entry("DE06.00.018.00", "会诊意见", "心内科会诊：血压控制尚可，可耐受手术。")]
)
PLANNED_SURGERY = Section(
    "18776-5",
    "治疗计划",
    [
        Entry("DE06.00.093.00", "拟实施手术及操作编码", "07.2201", "CD", coded=ADRENALECTOMY),
        Entry("DE06.00.094.00", "拟实施手术及操作名称", "腹腔镜下右侧肾上腺切除术"),
        Entry("DE06.00.187.00", "拟实施手术目标部位名称", "右侧肾上腺"),
        Entry("DE06.00.221.00", "拟实施手术及操作日期时间", "20261205090000", "TS"),
        Entry("DE06.00.073.00", "拟实施麻醉方法代码", "1", "CD", coded=GENERAL_ANAESTHESIA),
    ],
)
PRE_OP_NOTES = Section(
    "DE09.00.119.00",
    "注意事项",
    [
        Entry("DE09.00.119.00", "注意事项", "术中挤压肿瘤时注意血压波动。"),
        Entry("DE06.00.254.00", "手术要点", "先处理肾上腺中央静脉，完整切除肿瘤。"),
        Entry(
            "DE06.00.271.00",
            "术前准备",
            "螺内酯 40 mg 每日三次，纠正血钾至 4.0 mmol/L 以上，术前禁食 8 小时。",
        ),
    ],
)
DISCUSSED_SURGERY = Section(
    "47519-4",
    "手术操作",
    [
        Entry("DE06.00.254.00", "手术要点", "先处理肾上腺中央静脉，完整切除肿瘤。"),
        Entry("DE06.00.271.00", "术前准备", "纠正血钾，控制血压在 140/90 mmHg 以下。"),
        Entry("DE06.00.340.00", "手术指征", "右肾上腺醛固酮瘤，药物控制血压不佳。"),
        Entry("DE06.00.301.00", "手术方案", "腹腔镜经腹膜后入路右侧肾上腺切除术"),
        Entry("DE09.00.119.00", "注意事项", "术中挤压肿瘤时注意血压波动。"),
    ],
)
DISCUSSION_SUMMARY = Section(
    "",
    "讨论总结",
    [
        Entry("DE06.00.018.00", "讨论意见", "诊断明确，手术指征充分，腹腔镜手术创伤小。"),
        Entry("DE06.00.018.00", "讨论结论", "同意择期行腹腔镜下右侧肾上腺切除术。"),
    ],
)
OPERATION_DONE = Section(
    "47519-4",
    "手术操作",
    [
        Entry("DE06.00.093.00", "手术及操作编码", "07.2201", "CD", coded=ADRENALECTOMY),
        Entry("DE06.00.094.00", "手术名称", "腹腔镜下右侧肾上腺切除术"),
        Entry("DE06.00.187.00", "手术目标部位名称", "右侧肾上腺"),
        Entry("DE06.00.221.00", "手术日期时间", "20261205090000", "TS"),
        Entry("DE06.00.073.00", "麻醉方法代码", "1", "CD", coded=GENERAL_ANAESTHESIA),
        Entry(
            "DE05.10.063.00",
            "手术过程",
            "经腹膜后入路，离断右肾上腺中央静脉，完整切除 1.5 cm 肿瘤，出血约 20 ml。",
        ),
    ],
)
POST_OP_DX = Section(
    "10218-6",
    "术后诊断",
    [
        Entry("DE05.01.025.00", "术后诊断名称", "右肾上腺醛固酮瘤", related=[ADRENAL_DX]),
        Entry("DE05.01.070.00", "诊断依据", "术中见右肾上腺金黄色结节，待病理证实。"),
    ],
)
POST_OP_NOTES = Section(
    "DE09.00.119.00",
    "注意事项",
    [Entry("DE09.00.119.00", "注意事项", "监测血压、血钾及引流量，停用螺内酯。")],
)
DEATH_RECORD_ADMISSION = Section(  # WS/T 500.50's example codes both its diagnosis sections 11535-2
    "11535-2",
    "入院诊断",
    [
        Entry("DE06.00.092.00", "入院日期时间", "20261201103000", "TS"),
        BLEED_DX,
        Entry("DE05.10.148.00", "入院情况", "深昏迷，右侧瞳孔散大，血压 210/120 mmHg。"),
    ],
)
DEATH_RECORD_COURSE = Section(
    "8648-8",
    "住院过程",
    [Entry("DE06.00.296.00", "诊疗过程描述", "予脱水降颅压、控制血压、气管插管呼吸支持，家属拒绝手术。")],
)
DEATH_CAUSE = Section(
    "",
    "死亡原因",
    [
        Entry("DE02.01.036.00", "死亡日期时间", "20261202031500", "TS"),
        Entry(
            "DE05.01.025.00",
            "直接死亡原因名称",
            "脑疝",
            related=[Entry("DE05.01.024.00", "直接死亡原因编码", "G93.500", "CD", coded=HERNIATION)],
        ),
    ],
)
DEATH_RECORD_DX = Section("11535-2", "诊断", [DEATH_DX])
AUTOPSY = Section("", "尸检意见", [Entry("DE09.00.115.00", "家属是否同意尸体解剖标志", "false", "BL")])
DISCUSSED_DEATH_CAUSE = Section(  # WS/T 500.51's example codes these two diagnoses DE05.01.021.00
    "",
    "死亡原因",
    [
        Entry(
            "DE05.01.025.00",
            "直接死亡原因名称",
            "脑疝",
            related=[Entry("DE05.01.021.00", "直接死亡原因编码", "G93.500", "CD", coded=HERNIATION)],
        )
    ],
)
DISCUSSED_DEATH_DX = Section(
    "29548-5",
    "诊断",
    [
        Entry(
            "DE05.01.025.00",
            "死亡诊断名称",
            "右侧基底节脑出血破入脑室",
            related=[Entry("DE05.01.021.00", "死亡诊断编码", "I61.000", "CD", coded=BLEED)],
        )
    ],
)
DEATH_DISCUSSION = Section(
    "DE06.00.181.00",
    "讨论内容",
    text="住院医师汇报病史；主治医师：出血量大、破入脑室，入院时已有脑疝征象；主任医师：死亡原因为脑疝致中枢性呼吸循环衰竭。",
)
DEATH_DISCUSSION_SUMMARY = Section(
    "DE06.00.018.00", "主持人总结意见", text="诊断明确，抢救及时；应加强高血压患者的长期血压管理与随访。"
)
ORDER_VITALS = Section("8716-3", "生命体征", [Entry("DE04.10.188.00", "体重", "72", "PQ", "kg")])
INPATIENT_ORDERS = Section(
    "46209-3",
    "医嘱",
    [
        Entry(
            "DE06.00.286.00",
            "医嘱类别",
            "1",
            "CD",
            coded=("2.16.156.10011.2.3.2.58", "医嘱类别代码表", "长期医嘱"),
        ),
        Entry(
            "DE06.00.289.00",
            "医嘱项目类型",
            "01",
            "CD",
            coded=("2.16.156.10011.2.3.1.268", "医嘱项目类型代码表", "用药类医嘱"),
        ),
        Entry("DE06.00.288.00", "医嘱项目内容", "苯磺酸氨氯地平片 5 mg 口服 每日一次"),
        Entry("DE06.00.290.00", "医嘱执行状态", "已执行"),
        Entry("DE06.00.179.00", "医嘱备注信息", "晨起服用，服药前测血压"),
    ],
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
    # -- C0001-C0026 (keep this marker) --
    "C0001": [
        BLOOD_GROUP,
        SUMMARY_PAST,
        TRANSFUSION,
        ALLERGY,
        VACCINATION,
        SOCIAL_HISTORY,
        FAMILY_HISTORY,
        HEALTH_EVENT,
    ],
    "C0003": [
        ALLERGY,
        ER_COMPLAINT,
        ER_HISTORY,
        ER_PAST,
        ER_EXAM,
        ER_STUDIES,
        ER_DIAGNOSIS,
        ER_ORDERS,
        ER_COURSE,
        ER_NOTES,
    ],
    "C0004": [DIAGNOSIS, RX_WESTERN, RX_WESTERN_FEE],
    "C0005": [RX_HERBAL_DX, RX_HERBAL, RX_HERBAL_FEE, PLAN],
    "C0008": [PRE_OP_PAST, WEIGHED_VITALS, ADMISSION_DX, ACUPUNCTURE, ACUPUNCTURE_DRUG, ACUPUNCTURE_PLAN],
    "C0009": [
        NO_SURGERY_HISTORY,
        PRE_OP_DX,
        OPERATION_DONE,
        SURGERY_BLOOD_LOSS,
        SURGERY_DRUGS,
        SURGERY_FLUIDS,
        POST_OP_DX,
        OPERATION_NARRATIVE,
    ],
    "C0010": [PRE_OP_DX, VISIT_HISTORY, PRE_OP_PAST, VISIT_EXAM, VISIT_STUDIES, VISIT_PLAN],
    "C0011": [
        BLOOD_GROUP,
        PRE_OP_DX,
        POST_OP_DX,
        ANAESTHESIA_DRUGS,
        ANAESTHESIA_FLUIDS,
        ANAESTHESIA_COURSE,
        ANAESTHESIA_MONITORING,
        VITAL_SIGNS,
        OPERATION_DONE,
        SURGERY_BLOOD_LOSS,
    ],
    "C0012": [
        SURGICAL_WEIGHT,
        RECOVERY_STATUS,
        BLOOD_GROUP,
        PRE_OP_DX,
        POST_OP_DX,
        OPERATION_DONE,
        RECOVERY_ANAESTHESIA,
        RECOVERY,
    ],
    "C0014": [LABOUR_PROBLEMS, LABOUR_VITALS, LABOUR_PAST, PRENATAL_EXAM, LABOUR_PLAN],
    "C0015": [DELIVERY_PAST, VAGINAL_DELIVERY, POSTPARTUM, NEWBORN, DELIVERY_ASSESSMENT],
    "C0016": [CAESAREAN, CAESAREAN_POSTPARTUM, NEWBORN, DELIVERY_ASSESSMENT],
    "C0017": [
        DIAGNOSIS,
        ALLERGY,
        WEIGHED_VITALS,
        NURSING_ASSESSMENT,
        LIFESTYLE_GUIDANCE,
        WARD_NURSING,
        WARD_OBSERVATION,
        WARD_NURSING_PROCEDURE,
    ],
    "C0018": [
        ALLERGY,
        BLEED_DIAGNOSIS,
        CRITICAL_VITALS,
        CRITICAL_NURSING,
        CRITICAL_OBSERVATION,
        CRITICAL_NURSING_PROCEDURE,
    ],
    "C0019": [
        PRE_OP_DX,
        SURGICAL_WEIGHT,
        BLOOD_GROUP,
        OR_SKIN,
        ALLERGY,
        OR_NURSING,
        INSTRUMENT_COUNT,
        OPERATION_DONE,
        OR_HANDOVER,
    ],
    "C0020": [DIAGNOSIS, WEIGHED_VITALS, WARD_OBSERVATION],
    "C0021": [BLEED_DIAGNOSIS, CRITICAL_VITALS, CRITICAL_NURSING, INTAKE_OUTPUT, DEHYDRATION, NURSING_FLAGS],
    "C0022": [SURGERY_DIAGNOSIS, IMPLANTS],
    "C0023": [
        ADMISSION_INFO,
        WEIGHED_VITALS,
        SUMMARY_PAST,
        ALLERGY,
        FAMILY_HISTORY,
        ADMISSION_ASSESSMENT,
        LIFESTYLE,
        ADMISSION_DX,
        WARD_OBSERVATION,
        ADMISSION_NURSING_COURSE,
    ],
    "C0024": [CARE_PROBLEMS, CARE_PLAN, LIFESTYLE_GUIDANCE],
    "C0025": [DISCHARGE_STATUS, DISCHARGE_GUIDANCE, DISCHARGE_ASSESSMENT],
    "C0026": [PRE_OP_DX, CONSENT_SURGERY_PLAN, CONSENT_OPINIONS, SURGERY_RISK],
    # -- C0027-C0052 (keep this marker) --
    "C0027": [PRE_OP_DX, ANAESTHESIA_PLAN, CONSENT_OPINIONS, ANAESTHESIA_RISK],
    "C0028": [SURGERY_DIAGNOSIS, TRANSFUSION_HISTORY, TRANSFUSION_PLAN, CONSENT_OPINIONS, TRANSFUSION_RISK],
    "C0029": [SURGERY_DIAGNOSIS, SPECIAL_EXAM_PLAN, SPECIAL_EXAM_RISK, CONSENT_OPINIONS],
    "C0030": [BLEED_DIAGNOSIS, CRITICAL_NOTICE],
    "C0031": [DIAGNOSIS, OTHER_CONSENT, CONSENT_OPINIONS],
    "C0032": [
        FRONT_PAGE_DX,
        FRONT_PAGE_DISCHARGE,
        FRONT_PAGE_ALLERGY,
        BLOOD_GROUP,
        ADMISSIONS,
        LENGTH_OF_STAY,
        RECORD_QUALITY,
        READMISSION,
        PAYMENT,
    ],
    "C0033": [
        FRONT_PAGE_DX,
        TCM_DISCHARGE,
        FRONT_PAGE_ALLERGY,
        BLOOD_GROUP,
        TCM_ADMISSIONS,
        LENGTH_OF_STAY,
        RECORD_QUALITY,
        READMISSION,
        PAYMENT,
    ],
    "C0035": [COMPLAINT, HISTORY, PROBLEMS, ADMISSION_DX, PLAN, COURSE, DISCHARGE_DX, ORDERS],
    "C0036": [DEATH_COMPLAINT, DEATH_PROBLEMS, DEATH_ADMISSION_DX, DEATH_PLAN, DEATH_COURSE],
    "C0039": [ROUNDS, TCM_DIAGNOSIS, TCM_MEDICATION, TCM_PLAN, ROUNDS_ORDERS],
    "C0040": [DISCUSSION, TCM_DIAGNOSIS, TCM_PLAN, TCM_MEDICATION],
    "C0041": [COMPLAINT, HANDOVER_ADMISSION_DX, CURRENT_DX, HANDOVER_PLAN, WARD_COURSE],
    "C0042": [
        COMPLAINT,
        HANDOVER_ADMISSION_DX,
        TRANSFER_DX,
        TRANSFER_PLAN,
        TRANSFER,
        MEDICATION,
        WARD_COURSE,
    ],
    "C0044": [RESCUE_DX, RESCUE_PLAN, RESCUE, RESCUE_STUDIES],
    "C0046": [
        CASE_SUMMARY,
        PRE_OP_SUMMARY_DX,
        PRE_OP_PAST,
        AUX_EXAM,
        INDICATIONS,
        PRE_OP_CONSULT,
        PLANNED_SURGERY,
        PRE_OP_NOTES,
    ],
    "C0047": [PRE_OP_DX, PLANNED_SURGERY, DISCUSSED_SURGERY, DISCUSSION_SUMMARY],
    "C0048": [OPERATION_DONE, POST_OP_DX, POST_OP_NOTES],
    "C0050": [DEATH_RECORD_ADMISSION, DEATH_RECORD_COURSE, DEATH_CAUSE, DEATH_RECORD_DX, AUTOPSY],
    "C0051": [DISCUSSED_DEATH_CAUSE, DISCUSSED_DEATH_DX, DEATH_DISCUSSION, DEATH_DISCUSSION_SUMMARY],
    "C0052": [ORDER_VITALS, INPATIENT_ORDERS],
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
    if decl.get("type") == "xs:byte" and not value.isdigit():
        return "1"  # C0022.xsd types an organisation id's extension as a number

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
        self.wife = schema.code in WIFE_DOCUMENTS
        self.ids = WIFE_ID_VALUES if self.wife else ID_VALUES

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
            wanted = wanted or name == "age"  # C0033.xsd makes its value and unit optional
            wanted = wanted or here == ["ClinicalDocument", "code"]  # C0003.xsd makes the C-code optional
            if attr.get("use") == "required" or attr.get("fixed") or wanted:
                try:
                    value = self.attribute(decl, attr, here)
                except ValueError:
                    if attr.get("use") == "required":
                        raise
                    continue  # optional, and nothing says which value (C0026's 代理人关系 codeSystem)
                element.set(attr.get("name", ""), fit(value, attr))
        if ct.find(f"{XS}simpleContent") is not None:
            return element
        for child in child_decls(ct):
            if child.get("minOccurs") == "0" and not self.wanted(child, here):
                continue
            if name == "ClinicalDocument" and child.get("name") == "component":
                continue  # the body is written from BODIES
            if name == "patientRole" and child.get("name") == "id" and child.get("maxOccurs") == "unbounded":
                for root in self.roots(annotation(child)) or ["2.16.156.10011.1.2"]:
                    ident = etree.SubElement(element, f"{{{V3}}}id", root=root, extension=self.ids[root])
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
        if element == "code" and name in ("code", "displayName", "codeSystem", "codeSystemName"):
            for word, *coded in CODES_BY_NOTE:
                if word in annotation(decl):
                    return coded[("code", "displayName", "codeSystem", "codeSystemName").index(name)]
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
            return {
                "code": self.schema.code,
                "codeSystem": "2.16.156.10011.2.4",
                "codeSystemName": "卫生信息共享文档规范编码体系",
            }[name]
        if element == "languageCode":
            return "zh-CN"
        if element == "id":
            return self.identifier(name, path, annotation(decl))
        if element == "age":
            return {"value": "41", "unit": "岁"}[name]
        if element == "width" and name == "value":  # 实际住院天数 or 手术或分娩后天数 (C0020)
            return "7" if "住院" in annotation(decl) else "0"
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
        return self.ids.get(
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
                return WIFE_NAMES.get(owner, NAMES[owner]) if self.wife else NAMES[owner]
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
    elif kind in ("TS", "INT", "BL"):
        element.set("value", entry.value)
    elif kind == "MO":  # an amount of money: its currency is the entry's unit
        element.set("value", entry.value)
        element.set("currency", entry.unit)
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
        code = {
            "code": section.loinc,
            "displayName": section.name,
            "codeSystem": "2.16.840.1.113883.6.1",
            "codeSystemName": "LOINC",
        }
        if section.loinc.startswith("DE"):  # a section named by a data element (WS/T 500.46, .51)
            code.update(codeSystem="2.16.156.10011.2.2.1", codeSystemName="卫生信息数据元目录")
        # a section WS/T 500 gives no LOINC code (护理记录, 护理观察 ...) carries its name only
        etree.SubElement(sec, f"{{{V3}}}code", code if section.loinc else {"displayName": section.name})
        etree.SubElement(sec, f"{{{V3}}}text").text = section.text or "；".join(
            e.value for e in section.entries
        )
        for item in section.entries:
            etree.SubElement(sec, f"{{{V3}}}entry").append(observation(item, available))
    return component


def observation(item: Entry, available: set[str]) -> etree._Element:
    """An entry's observation: its data element, its value and the observations related to it."""
    obs = etree.Element(f"{{{V3}}}observation", classCode="OBS", moodCode="EVN")
    etree.SubElement(
        obs,
        f"{{{V3}}}code",
        code=item.code,
        codeSystem="2.16.156.10011.2.2.1",
        codeSystemName="卫生信息数据元目录",
        displayName=item.name,
    )
    obs.append(value(item, available))
    for part in item.related:
        relationship = etree.SubElement(obs, f"{{{V3}}}entryRelationship", typeCode="COMP")
        relationship.append(observation(part, available))
    return obs


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
