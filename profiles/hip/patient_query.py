"""个人信息查询服务 PatientInfoQuery: ``PRPA_IN201305UV02`` in, ``PRPA_IN201306UV02`` out
(``services/PatientInfoQuery.xsd``; the assessment's EMR-PL-04 messages; HL7 V3 PDQ's structure,
IHE ITI TF-2 §3.47, written with the national wrapper's OIDs).

The query's ``parameterList`` becomes the PDQ Supplier's query over the EMPI (``profiles.pdq``):

=========================================================== ==================================
``id[@root=2.16.156.10011.2.5.1.4]/@extension``              the hospital's own patient id: in
                                                            the domain of the sender's hospital
``livingSubjectId/value/item[@root=2.16.156.10011.1.3]``    the ID-card number
``livingSubjectName/value/item/part/@value``                the whole name (Hanzi or pinyin;
                                                            a trailing ``*`` is a prefix)
``livingSubjectAdministrativeGender/value/@code``           sex, GB/T 2261.1
``livingSubjectBirthTime/value/@value``                     birth date, yyyyMMdd
``initialQuantity/@value``                                  at most this many patients
=========================================================== ==================================

A parameter sent empty (the assessment's templates leave most of them so) is not a condition. A
query with no condition at all is refused. Each patient found is one ``subject``: the person's ids
(every domain, the ID-card number among them), name, sex, birth date, address and phone; the
``queryAck`` says OK or NF (no match) and how many there were.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from lxml import etree

from engine.errors import MessageError
from ihe.iti21 import PdqAnswer, PdqParameter, PdqPatient, PdqQuery
from profiles.empi.domains import V3_PATIENT_ID
from profiles.hip.v3 import MESSAGE_ID_ROOT, V3, Wrapper, new_message

__all__ = ["PatientQuery", "query_response", "read_patient_query"]

_V = f"{{{V3}}}"
_PARAMS = f"{_V}controlActProcess/{_V}queryByParameter/{_V}parameterList"
_CHINA = dt.timezone(dt.timedelta(hours=8))
_SEX_NAMES = {"M": ("1", "男性"), "F": ("2", "女性"), "U": ("0", "未知的性别")}


@dataclass(frozen=True)
class PatientQuery:
    pdq: PdqQuery
    query_id: str
    echo: etree._Element  # queryByParameter, echoed in the answer


def _value(root: etree._Element, path: str, attribute: str) -> str:
    found = root.find(path)
    return (found.get(attribute) or "").strip() if found is not None else ""


def read_patient_query(root: etree._Element, wrapper: Wrapper, institution: str | None) -> PatientQuery:
    """The query as the PDQ Supplier takes it; MessageError for one that asks for nothing."""
    by_parameter = root.find(f"{_V}controlActProcess/{_V}queryByParameter")
    if by_parameter is None:
        raise MessageError("PRPA_IN201305UV02 has no controlActProcess/queryByParameter")
    found: list[tuple[str, int, int | None, int | None, str]] = []
    local = _value(root, f"{_PARAMS}/{_V}id[@root='{V3_PATIENT_ID}']", "extension")
    if local:
        if not institution:
            raise MessageError(
                f"the hospital's patient id {local} is asked for, but the sender "
                f"{wrapper.sender or '(none)'} is no hospital's system (empi.domains[].sources)"
            )
        found += [
            ("PID", 3, 1, None, local),
            ("PID", 3, 4, 1, institution),
            ("PID", 3, 4, 2, V3_PATIENT_ID),
        ]
    card = _value(
        root, f"{_PARAMS}/{_V}livingSubjectId/{_V}value/{_V}item[@root='2.16.156.10011.1.3']", "extension"
    )
    if card:
        found.append(("PID", 19, None, None, card))
    name = _value(root, f"{_PARAMS}/{_V}livingSubjectName/{_V}value/{_V}item/{_V}part", "value")
    if name:
        found.append(("PID", 5, None, None, name))
    sex = _value(root, f"{_PARAMS}/{_V}livingSubjectAdministrativeGender/{_V}value", "code")
    if sex:
        found.append(("PID", 8, None, None, sex))
    born = _value(root, f"{_PARAMS}/{_V}livingSubjectBirthTime/{_V}value", "value")
    if born:
        found.append(("PID", 7, None, None, born[:8]))
    if not found:
        raise MessageError(
            "the query has no parameter with a value (patient id, ID-card number, name, sex or birth date)"
        )
    quantity = _value(by_parameter, f"{_V}initialQuantity", "value")
    query_id = _value(by_parameter, f"{_V}queryId", "extension") or wrapper.message_id
    parameters = [PdqParameter(n, *p) for n, p in enumerate(found, start=1)]
    pdq = PdqQuery(
        tag=query_id,
        name="PatientInfoQuery",
        parameters=parameters,
        domains=[],
        count=int(quantity) if quantity.isdigit() and int(quantity) > 0 else None,
        pointer=None,
        qpd=str(etree.tostring(by_parameter, encoding="unicode")),
        requester=wrapper.sender,
    )
    return PatientQuery(pdq, query_id, by_parameter)


def _item(parent: etree._Element, tag: str, root: str, extension: str) -> None:
    etree.SubElement(etree.SubElement(parent, f"{_V}{tag}"), f"{_V}item", root=root, extension=extension)


def _patient(subject: etree._Element, patient: PdqPatient, institutions: dict[str, str]) -> None:
    event = etree.SubElement(subject, f"{_V}registrationEvent", classCode="REG", moodCode="EVN")
    etree.SubElement(event, f"{_V}statusCode", code="active")
    role = etree.SubElement(
        etree.SubElement(event, f"{_V}subject1", typeCode="SBJ"), f"{_V}patient", classCode="PAT"
    )
    ids = etree.SubElement(role, f"{_V}id")
    for ident in patient.identifiers:
        if ident.oid == "2.16.156.10011.1.3":
            continue  # the ID card is the person's, below
        # a hospital's id, as its V3 messages write it (2.16.156.10011.2.5.1.4 + its 组织机构代码),
        # when the domain is a hospital's; otherwise by the domain's own OID
        institution = institutions.get(ident.namespace)
        etree.SubElement(
            ids,
            f"{_V}item",
            root=V3_PATIENT_ID if institution else ident.oid,
            extension=ident.value,
            assigningAuthorityName=institution or ident.namespace,
        )
    etree.SubElement(role, f"{_V}statusCode", code="active")
    person = etree.SubElement(role, f"{_V}patientPerson", classCode="PSN", determinerCode="INSTANCE")
    if patient.national_id:
        _item(person, "id", "2.16.156.10011.1.3", patient.national_id)
    name = etree.SubElement(etree.SubElement(person, f"{_V}name"), f"{_V}item")
    etree.SubElement(name, f"{_V}part", value=f"{patient.family}{patient.given}")
    if patient.phone:
        telecom = etree.SubElement(person, f"{_V}telecom")
        etree.SubElement(telecom, f"{_V}item", value=patient.phone)
    if patient.sex in _SEX_NAMES:
        code, display = _SEX_NAMES[patient.sex]
        sex = etree.SubElement(
            person,
            f"{_V}administrativeGenderCode",
            code=code,
            codeSystem="2.16.156.10011.2.3.3.4",
            codeSystemName="生理性别代码表(GB/T 2261.1)",
        )
        etree.SubElement(sex, f"{_V}displayName", value=display)
    if patient.birth_date:
        etree.SubElement(person, f"{_V}birthTime", value=patient.birth_date)
    parts = [
        ("STA", patient.province),
        ("CTY", patient.city),
        ("STR", patient.street),
        ("ZIP", patient.postal_code),
    ]
    if any(v for _, v in parts):
        address = etree.SubElement(etree.SubElement(person, f"{_V}addr"), f"{_V}item")
        for kind, value in parts:
            if value:
                etree.SubElement(address, f"{_V}part", type=kind, value=value)


def query_response(
    request: Wrapper,
    query: PatientQuery,
    answer: PdqAnswer,
    *,
    device_id: str,
    institutions: dict[str, str],
    now: dt.datetime | None = None,
) -> str:
    """``PRPA_IN201306UV02``: the patients found (``institutions``: domain namespace -> 组织机构代码)."""
    out = new_message(
        "PRPA_IN201306UV02", receiver=request.sender, sender=device_id, accept_ack="NE", now=now
    )
    ack = etree.SubElement(out, f"{_V}acknowledgement", typeCode="AA")
    etree.SubElement(
        etree.SubElement(ack, f"{_V}targetMessage"),
        f"{_V}id",
        root=request.message_id_root or MESSAGE_ID_ROOT,
        extension=request.message_id,
    )
    act = etree.SubElement(out, f"{_V}controlActProcess", classCode="CACT", moodCode="EVN")
    etree.SubElement(act, f"{_V}code", code="PRPA_TE201306UV02", codeSystem="2.16.840.1.113883.1.18")
    for patient in answer.patients:
        _patient(etree.SubElement(act, f"{_V}subject", typeCode="SUBJ"), patient, institutions)
    query_ack = etree.SubElement(act, f"{_V}queryAck")
    etree.SubElement(query_ack, f"{_V}queryId", extension=query.query_id)
    etree.SubElement(query_ack, f"{_V}queryResponseCode", code="OK" if answer.patients else "NF")
    etree.SubElement(query_ack, f"{_V}resultTotalQuantity", value=str(answer.total))
    etree.SubElement(query_ack, f"{_V}resultCurrentQuantity", value=str(len(answer.patients)))
    etree.SubElement(query_ack, f"{_V}resultRemainingQuantity", value=str(answer.remaining))
    act.append(query.echo)
    return str(etree.tostring(out, encoding="unicode"))
