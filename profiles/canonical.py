"""The platform's canonical models: what every vendor dialect maps to, and what the platform sends.

Each hospital's HIS speaks its own HL7 v2 dialect (and later CDA/V3 and XDS metadata); mapping every
dialect to one model, and the model to each output, keeps the number of mappings linear in the
number of systems. Field names are snake_case English; each field's docstring names the HL7 v2.5
field it usually comes from and the national code system (WS/T 364 data element value sets, GB
standards) its codes belong to, with the codeSystem OID of china-hie.md §6-§7. The value sets
themselves are the files of ``mappings/code_tables/``.

A mapping writes ``to: model:AdtEvent``; the mapping compiler finds the model in ``MODELS`` and
checks every ``to:`` path against these fields when the mapping is loaded. Every model forbids
unknown fields, so a misspelt field is an error, not a silently lost value. Validation runs once
per mapped message, so constraints stay cheap (a length or a pattern, never a lookup).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "MODELS",
    "Address",
    "AdtEvent",
    "Coded",
    "ContactPoint",
    "DocumentEntry",
    "Encounter",
    "HumanName",
    "Identifier",
    "Organization",
    "Patient",
    "Practitioner",
    "RelatedPerson",
]

# GB 11643-1999 §5: 17 digits and a check character (ISO 7064 MOD 11-2), upper-case X. Only the
# shape is checked here: a wrong check digit is a warning by default (china-hie.md §8), decided by
# the mapping's id_card transform and checks, not by the model.
NationalId = Annotated[str, Field(pattern=r"^[0-9]{17}[0-9X]$")]
# GB/T 2260 administrative division code: 6 digits (province 2, city 2, county 2).
RegionCode = Annotated[str, Field(pattern=r"^[0-9]{6}$")]
# FHIR R4 ContactPoint.system / ContactPoint.use codes, so the FHIR output copies them unchanged.
TelecomSystem = Annotated[str, Field(pattern=r"^(phone|fax|email|pager|url|sms|other)$")]
TelecomUse = Annotated[str, Field(pattern=r"^(home|work|temp|old|mobile)$")]
# XDS hash: SHA-1 of the document, 40 hexadecimal characters (ITI TF-3 §4.2.3.2, hash).
Sha1Hex = Annotated[str, Field(pattern=r"^[0-9a-fA-F]{40}$")]


class _Model(BaseModel):
    # Attribute docstrings become field descriptions: the JSON schema and `hie` docs show them.
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class Coded(_Model):
    """A code from a code system (HL7 v2.5 CWE/CE: code, text, name of coding system)."""

    code: str
    """The code as the code system writes it (CWE-1), e.g. ``"1"`` in GB/T 2261.1."""
    system: str | None = None
    """The code system's OID (CWE-3 in the platform's v2.5 output), e.g. ``2.16.156.10011.2.3.3.4``."""
    display: str | None = None
    """The code's display name (CWE-2), e.g. ``男性``."""


class Identifier(_Model):
    """An identifier with its assigning authority (HL7 v2.5 CX, PID-3)."""

    value: str
    """The identifier (CX-1)."""
    system: str | None = None
    """Assigning authority OID (CX-4.2, universal id; CX-4.3 is ``ISO``), e.g. ``2.16.156.10011.1.3``
    for resident ID-card numbers, ``.1.11`` 门(急)诊号, ``.1.12`` 住院号, ``.1.19`` 健康卡号."""
    namespace: str | None = None
    """Assigning authority namespace id (CX-4.1), e.g. ``HOSP_A``."""
    type: str | None = None
    """Identifier type code (CX-5, HL7 table 0203): NI national id, PI patient internal, MR medical
    record, PN person number, PT patient external, VN visit number; local codes such as NNCHN."""
    facility: str | None = None
    """Assigning facility namespace (CX-6.1)."""


class HumanName(_Model):
    """A person's name (HL7 v2.5 XPN, PID-5). Chinese names are usually sent whole in XPN-1."""

    text: str | None = None
    """The name as written, e.g. ``张晓红`` or ``ZHANG XIAOHONG``."""
    family: str | None = None
    """Family name (XPN-1.1), e.g. ``诸葛``."""
    given: str | None = None
    """Given name(s) (XPN-2), e.g. ``秀英``."""
    use: str | None = None
    """Name type (XPN-7, HL7 table 0200): L legal, A alias, D display, M maiden, C adopted..."""


class Address(_Model):
    """A postal address (HL7 v2.5 XAD, PID-11), with the levels of the national health data element
    directory's address (省, 市, 县, 乡, 村/街道, 门牌号)."""

    text: str | None = None
    """The whole address as one line, as written."""
    province: str | None = None
    """Province, autonomous region or municipality 省(自治区、直辖市) (XAD-4)."""
    city: str | None = None
    """City 市(地区、州) (XAD-3)."""
    county: str | None = None
    """County or district 县(区) (XAD-9 county/parish code or its name)."""
    township: str | None = None
    """Township or sub-district 乡(镇、街道办事处)."""
    street: str | None = None
    """Street, road or village 村(街、路、弄等) (XAD-1)."""
    house_number: str | None = None
    """House number 门牌号码 (XAD-1.3 dwelling number in v2.5)."""
    postal_code: str | None = None
    """Postal code (XAD-5); 6 digits in China."""
    country: str | None = None
    """Country (XAD-6): GB/T 2659 numeric (``156``) or ISO 3166 alpha-3 (``CHN``)."""
    use: str | None = None
    """Address type (XAD-7, HL7 table 0190): H home, B business, C current/temporary, N birth,
    M mailing, L legal, P permanent, BR residence at birth."""
    region_code: RegionCode | None = None
    """GB/T 2260 administrative division code of the county (6 digits), when the sender has it."""


class ContactPoint(_Model):
    """A telephone number or e-mail address (HL7 v2.5 XTN, PID-13/PID-14). ``system`` and ``use``
    take FHIR R4's ContactPoint codes, so FHIR output copies them unchanged."""

    value: str
    """The number or address (XTN-1 before v2.5, XTN-12 unformatted number, XTN-4 e-mail)."""
    system: TelecomSystem | None = None
    """phone | fax | email | pager | url | sms | other (from XTN-3: PH, CP → phone; FX fax;
    Internet email)."""
    use: TelecomUse | None = None
    """home | work | temp | old | mobile (from XTN-2: PRN home, WPN work; XTN-3 CP → mobile)."""


class Practitioner(_Model):
    """A doctor or nurse (HL7 v2.5 XCN: PV1-7 attending, PV1-17 admitting)."""

    id: str | None = None
    """Staff number (XCN-1)."""
    name: str | None = None
    """Name as written (XCN-2 and XCN-3 joined), e.g. ``王建国``."""
    system: str | None = None
    """OID of the id's assigning authority (XCN-9), e.g. the hospital's ``2.16.156.10011.1.4`` branch."""


class Organization(_Model):
    """A hospital or other institution (HL7 v2.5 XON; XDS authorInstitution)."""

    name: str | None = None
    """Organization name (XON-1), e.g. ``某市第一人民医院``."""
    id: str | None = None
    """Organization id (XON-10), e.g. the unified social credit or organization code."""
    system: str | None = None
    """OID of the id's assigning authority (XON-6.2), e.g. ``2.16.156.10011.1.5`` 医疗卫生机构."""


class RelatedPerson(_Model):
    """A next of kin or contact (HL7 v2.5 NK1)."""

    name: HumanName | None = None
    """Name (NK1-2)."""
    relationship: Coded | None = None
    """Relationship to the patient (NK1-3): GB/T 4761 家庭关系 (``2.16.156.10011.2.3.3.8``) or
    HL7 table 0063."""
    telecoms: list[ContactPoint] = []
    """Phone numbers (NK1-5, NK1-6)."""
    address: Address | None = None
    """Address (NK1-4)."""


class Patient(_Model):
    """A person receiving care (HL7 v2.5 PID), as the platform and its EMPI know them."""

    identifiers: list[Identifier] = []
    """Identifiers in the sending hospital's and other domains (PID-3; PID-2/PID-4 in older versions)."""
    national_id: NationalId | None = None
    """Resident ID-card number 居民身份证号 (GB 11643-1999), normalised: 18 characters, upper-case X,
    15-digit legacy numbers upgraded; identifier domain ``2.16.156.10011.1.3``. Senders put it in PID-19
    (SSN), PID-3 (type NI) or PID-4."""
    id_document_type: Coded | None = None
    """Type of identity document 身份证件类别 CV02.01.101 (``2.16.156.10011.2.3.1.1``): 01 居民身份证."""
    name: HumanName | None = None
    """Legal name (PID-5)."""
    mother_maiden_name: HumanName | None = None
    """Mother's maiden name (PID-6): how a newborn is told apart (PDQ's Pediatric Demographics option)."""
    sex: Coded | None = None
    """Sex (PID-8) in GB/T 2261.1-2003 生理性别 (``2.16.156.10011.2.3.3.4``): 0 未知的性别,
    1 男性 (male), 2 女性 (female), 9 未说明的性别. HL7 table 0001 (M/F/U) is mapped to it on input."""
    birth_date: dt.date | None = None
    """Date of birth (PID-7, date part)."""
    birth_time: dt.datetime | None = None
    """Time of birth (PID-7), when it has a time: newborns."""
    marital_status: Coded | None = None
    """Marital status (PID-16) in GB/T 2261.2-2003 婚姻状况 (``2.16.156.10011.2.3.3.5``): 10 未婚,
    20 已婚, 30 丧偶, 40 离婚, 90 未说明的婚姻状况."""
    ethnicity: Coded | None = None
    """Ethnic group 民族 (PID-22) in GB 3304-1991 (``2.16.156.10011.2.3.3.3``): 01 汉族 ... 56 基诺族."""
    nationality: Coded | None = None
    """Nationality 国籍 (PID-28; PID-26 citizenship) in GB/T 2659-2000 (``2.16.156.10011.2.3.3.1``):
    156 中国."""
    occupation: Coded | None = None
    """Employment status 从业状况 in GB/T 2261.4 (``2.16.156.10011.2.3.3.13``, WS/T 500 occupationCode),
    or occupation 职业 in GB/T 6565 (``2.16.156.10011.2.3.3.7``): ``system`` says which."""
    education: Coded | None = None
    """Education level 学历 in GB/T 4658 (``2.16.156.10011.2.3.3.6``)."""
    addresses: list[Address] = []
    """Addresses (PID-11)."""
    telecoms: list[ContactPoint] = []
    """Phone numbers and e-mail (PID-13 home, PID-14 business)."""
    deceased: bool | None = None
    """Patient death indicator (PID-30: Y/N)."""
    deceased_time: dt.datetime | None = None
    """Date and time of death (PID-29)."""
    health_card_number: str | None = None
    """Resident health card number 居民健康卡号 (identifier domain ``2.16.156.10011.1.19``)."""
    health_record_number: str | None = None
    """Resident health record number 城乡居民健康档案编号 (identifier domain ``2.16.156.10011.1.2``)."""
    account_number: Identifier | None = None
    """Patient account number (PID-18, CX), with the authority that issued it (CX-4): the billing
    account of the visit in the sending hospital."""
    insurance_type: Coded | None = None
    """Medical insurance type 医疗保险类别 CV02.01.204 (``2.16.156.10011.2.3.1.248``),
    e.g. 01 城镇职工基本医疗保险."""
    contacts: list[RelatedPerson] = []
    """Next of kin and contacts (NK1)."""


class Encounter(_Model):
    """A visit (HL7 v2.5 PV1/PV2): an outpatient or emergency visit, or an inpatient stay."""

    visit_number: str | None = None
    """Visit number (PV1-19)."""
    outpatient_number: str | None = None
    """Outpatient/emergency number 门(急)诊号 (identifier domain ``2.16.156.10011.1.11``)."""
    inpatient_number: str | None = None
    """Inpatient number 住院号 (identifier domain ``2.16.156.10011.1.12``)."""
    patient_class: Coded | None = None
    """Patient type 患者类型 (PV1-2) in CV09.00.404 (``2.16.156.10011.2.3.1.271``): 1 门诊, 2 急诊,
    3 住院, 9 其他. HL7 table 0004 (O/E/I...) is mapped to it on input."""
    admission_type: Coded | None = None
    """Admission type (PV1-4, HL7 table 0007: E emergency, R routine, U urgent...)."""
    department: Coded | None = None
    """Department 科室 (PV1-10 hospital service, or the point of care's department); the code system is
    the hospital's department list (e.g. under ``2.16.156.10011.1.26``)."""
    ward: str | None = None
    """Ward 病区 (PV1-3.1 point of care; domain ``2.16.156.10011.1.27``)."""
    room: str | None = None
    """Room 病房号 (PV1-3.2; domain ``2.16.156.10011.1.21``)."""
    bed: str | None = None
    """Bed 病床号 (PV1-3.3; domain ``2.16.156.10011.1.22``)."""
    attending_doctor: Practitioner | None = None
    """Attending doctor (PV1-7)."""
    admitting_doctor: Practitioner | None = None
    """Admitting doctor (PV1-17)."""
    admit_time: dt.datetime | None = None
    """Admit or visit start time (PV1-44)."""
    discharge_time: dt.datetime | None = None
    """Discharge time (PV1-45)."""
    discharge_disposition: Coded | None = None
    """Discharge disposition 离院方式 (PV1-36, HL7 table 0112, or the national value set)."""
    diagnoses: list[Coded] = []
    """Diagnoses (DG1-3) in ICD-10 (``2.16.156.10011.2.3.3.11``) or GB/T 15657 TCM
    (``2.16.156.10011.2.3.3.14``)."""
    status: str | None = None
    """Visit status as FHIR Encounter.status (planned, arrived, in-progress, finished, cancelled),
    usually decided by the trigger event (A05 planned, A01/A04 in-progress, A03 finished, A11 cancelled)."""


class AdtEvent(_Model):
    """One ADT message (HL7 v2.5 chapter 3) as the platform sees it: the envelope a vendor ADT maps to."""

    event: str
    """Trigger event (MSH-9.2 / EVN-1): A01 admit, A03 discharge, A04 register, A08 update, A40 merge..."""
    message_type: str | None = None
    """Message type as sent (MSH-9.1^MSH-9.2), e.g. ``ADT^A01``."""
    control_id: str | None = None
    """Message control id (MSH-10)."""
    sent_at: dt.datetime | None = None
    """When the message was created (MSH-7)."""
    recorded_at: dt.datetime | None = None
    """When the event was recorded (EVN-2)."""
    sending_application: str | None = None
    """Sending application (MSH-3)."""
    sending_facility: str | None = None
    """Sending facility (MSH-4)."""
    facility_oid: str | None = None
    """The sending hospital's OID (a branch of ``2.16.156.10011.1.5`` or its own root)."""
    patient: Patient
    """The patient (PID, PD1, NK1)."""
    encounter: Encounter | None = None
    """The visit (PV1, PV2), when the event has one."""
    prior_identifiers: list[Identifier] = []
    """Identifiers being merged away (MRG-1), for A40 and other merge events."""
    warnings: list[str] = []
    """Warnings raised while mapping (e.g. the ID-card number disagrees with the birth date)."""


class DocumentEntry(_Model):
    """XDS.b document metadata (IHE ITI TF-3 §4.2.3.2, DocumentEntry) for a registered document.

    Only what the platform needs; registry-assigned attributes (entryUUID, availabilityStatus) are
    not part of it. ``unique_id`` and ``patient_id`` are required by every XDS transaction.
    """

    unique_id: str
    """Document unique id (uniqueId, an OID); for WS/T 500 documents the 文档流水号
    under ``2.16.156.10011.1.1``."""
    patient_id: Identifier
    """Affinity domain patient id (patientId), with the domain's assigning authority OID."""
    source_patient_id: Identifier | None = None
    """The patient id in the source system (sourcePatientId)."""
    class_code: Coded | None = None
    """Document class (classCode)."""
    type_code: Coded | None = None
    """Document type (typeCode): the WS/T 500 C-code (``2.16.156.10011.2.4``), e.g. C0001."""
    format_code: Coded | None = None
    """Format (formatCode), e.g. the WS/T 500 template id."""
    confidentiality: list[Coded] = []
    """Confidentiality codes (confidentialityCode), e.g. HL7 ``N`` normal."""
    practice_setting: Coded | None = None
    """Clinical specialty (practiceSettingCode)."""
    facility_type: Coded | None = None
    """Type of facility (healthcareFacilityTypeCode)."""
    creation_time: dt.datetime | None = None
    """When the document was created (creationTime; sent as UTC)."""
    title: str | None = None
    """Title (title), e.g. ``门(急)诊病历``."""
    mime_type: str | None = None
    """MIME type (mimeType), e.g. ``text/xml``."""
    hash: Sha1Hex | None = None
    """SHA-1 of the document, hexadecimal (hash)."""
    size: int | None = Field(default=None, ge=0)
    """Size in bytes (size)."""
    language: str | None = None
    """Language (languageCode, RFC 5646), e.g. ``zh-CN``."""
    author_institution: Organization | None = None
    """The author's institution (author.authorInstitution)."""
    repository_id: str | None = None
    """The repository holding the document (repositoryUniqueId), an OID."""


MODELS: dict[str, type[BaseModel]] = {
    m.__name__: m
    for m in (
        AdtEvent,
        Patient,
        Encounter,
        DocumentEntry,
        Identifier,
        Coded,
        HumanName,
        Address,
        ContactPoint,
        Practitioner,
        Organization,
        RelatedPerson,
    )
}
"""Every canonical model by name, for ``model:<Name>`` in a mapping's ``input`` or ``output``."""
