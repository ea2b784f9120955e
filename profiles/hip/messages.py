"""Messages a hospital's integration platform sends, built for ``hie hip`` (and anyone testing the
interface): the ``HIPMessageServer`` call itself, and the document-register message
``RCMR_IN000002UV02`` around a CDA document (``services/DocumentRegister.xsd``)."""

from __future__ import annotations

import base64
import datetime as dt
import uuid

from lxml import etree

from ihe._soap import SOAP12
from profiles.hip.service import NAMESPACE
from profiles.hip.v3 import new_message

__all__ = ["call_envelope", "document_register"]

_V = f"{{{NAMESPACE}}}"
_CHINA = dt.timezone(dt.timedelta(hours=8))


def call_envelope(action: str, message: str) -> bytes:
    """A SOAP 1.2 ``HIPMessageServer`` call (the message as an escaped string, as the WSDL says)."""
    envelope = etree.Element(f"{{{SOAP12}}}Envelope", nsmap={"s": SOAP12, "v3": NAMESPACE})
    call = etree.SubElement(etree.SubElement(envelope, f"{{{SOAP12}}}Body"), f"{_V}HIPMessageServer")
    etree.SubElement(call, f"{_V}action").text = action
    etree.SubElement(call, f"{_V}message").text = message
    return bytes(etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"))


SENDER = "HIS-0001"  # a sending system id the assessment's schemas accept (7 characters or more)


def document_register(
    document: bytes,
    *,
    code: str,
    title: str,
    document_id: str = "",
    sender: str = SENDER,
    receiver: str = "HIE-CITY-PLATFORM",
    now: dt.datetime | None = None,
    header: etree._Element | None = None,
) -> str:
    """``RCMR_IN000002UV02`` carrying ``document`` (base64) of type ``code``/``title``; with the
    document's parsed ``header``, its patient, author and custodian too (as the assessment's schema
    requires)."""
    moment = (now or dt.datetime.now(_CHINA)).astimezone(_CHINA).strftime("%Y%m%d%H%M%S")
    root = new_message("RCMR_IN000002UV02", receiver=receiver, sender=sender, accept_ack="AL", now=now)
    act = etree.SubElement(root, f"{_V}controlActProcess", classCode="CACT", moodCode="EVN")
    doc = etree.SubElement(
        etree.SubElement(act, f"{_V}subject", typeCode="SUBJ"),
        f"{_V}clinicalDocument",
        classCode="DOCCLIN",
        moodCode="EVN",
    )
    etree.SubElement(
        etree.SubElement(doc, f"{_V}id"),
        f"{_V}item",
        root="2.16.156.10011.2.5.1.24",
        extension=document_id or uuid.uuid4().hex,
    )
    kind = etree.SubElement(
        doc, f"{_V}code", code=code, codeSystem="2.16.156.10011.2.5.1.23", codeSystemName="文档类型代码"
    )
    etree.SubElement(kind, f"{_V}displayName", value=title)
    etree.SubElement(doc, f"{_V}statusCode")
    etree.SubElement(doc, f"{_V}effectiveTime", value=moment)
    privacy = etree.SubElement(
        doc,
        f"{_V}confidentialityCode",
        code="N",
        codeSystem="2.16.156.10011.2.5.1.25",
        codeSystemName="文档保密级别",
    )
    etree.SubElement(privacy, f"{_V}displayName", value="正常访问保密级别")
    etree.SubElement(doc, f"{_V}versionNumber", value="1")
    storage = etree.SubElement(doc, f"{_V}storageCode")
    etree.SubElement(storage, f"{_V}originalText", value=base64.b64encode(document).decode("ascii"))
    etree.SubElement(storage, f"{_V}translation")
    if header is not None:
        _parties(doc, header, moment)
    return str(etree.tostring(root, encoding="unicode"))


def _first(node: etree._Element, path: str, attribute: str | None = None) -> str:
    found = node.find(path)
    if found is None:
        return ""
    return ((found.get(attribute) or "") if attribute else (found.text or "")).strip()


def _item(parent: etree._Element, tag: str, root: str, extension: str) -> None:
    etree.SubElement(etree.SubElement(parent, f"{_V}{tag}"), f"{_V}item", root=root, extension=extension)


def _parties(doc: etree._Element, cda: etree._Element, moment: str) -> None:
    """recordTarget, author and custodian, as the document's header states them."""
    role = cda.find(f"{_V}recordTarget/{_V}patientRole")
    patient = etree.SubElement(
        etree.SubElement(doc, f"{_V}recordTarget", typeCode="RCT"), f"{_V}patient", classCode="PAT"
    )
    ids = etree.SubElement(patient, f"{_V}id")
    for ident in role.iterfind(f"{_V}id") if role is not None else []:
        etree.SubElement(ids, f"{_V}item", root=ident.get("root", ""), extension=ident.get("extension", ""))
    etree.SubElement(patient, f"{_V}statusCode")
    visit = etree.SubElement(patient, f"{_V}effectiveTime")
    etree.SubElement(visit, f"{_V}low", value=moment[:8])
    etree.SubElement(visit, f"{_V}high")
    person = etree.SubElement(patient, f"{_V}patientPerson", classCode="PSN", determinerCode="INSTANCE")
    card = role.find(f"{_V}patient/{_V}id[@root='2.16.156.10011.1.3']") if role is not None else None
    _item(person, "id", "2.16.156.10011.1.3", card.get("extension", "") if card is not None else "")
    etree.SubElement(person, f"{_V}name").text = (
        _first(role, f"{_V}patient/{_V}name") if role is not None else ""
    )
    custodian = f"{_V}custodian/{_V}assignedCustodian/{_V}representedCustodianOrganization"
    org_id, org_name = _first(cda, f"{custodian}/{_V}id", "extension"), _first(cda, f"{custodian}/{_V}name")
    provider = etree.SubElement(
        patient, f"{_V}providerOrganization", classCode="ORG", determinerCode="INSTANCE"
    )
    _item(provider, "id", "2.16.156.10011.1.5", org_id)
    etree.SubElement(provider, f"{_V}name").text = org_name
    department = etree.SubElement(provider, f"{_V}organizationContains", classCode="ORG")
    _item(
        department,
        "id",
        "2.16.156.10011.1.26",
        _first(cda, f".//{_V}wholeOrganization/{_V}id[@root='2.16.156.10011.1.26']", "extension") or "00",
    )
    author = etree.SubElement(doc, f"{_V}author", typeCode="AUT")
    etree.SubElement(author, f"{_V}time").text = moment
    assigned = etree.SubElement(author, f"{_V}assignedAuthor", classCode="ASSIGNED")
    _item(
        assigned,
        "id",
        "2.16.156.10011.1.7",
        _first(cda, f"{_V}author/{_V}assignedAuthor/{_V}id", "extension"),
    )
    who = etree.SubElement(assigned, f"{_V}assignedPerson", classCode="PSN", determinerCode="INSTANCE")
    etree.SubElement(who, f"{_V}name").text = _first(
        cda, f"{_V}author/{_V}assignedAuthor/{_V}assignedPerson/{_V}name"
    )
    kept = etree.SubElement(
        etree.SubElement(
            etree.SubElement(doc, f"{_V}custodian", typeCode="CST"),
            f"{_V}assignedCustodian",
            classCode="ASSIGNED",
        ),
        f"{_V}representedOrganization",
        classCode="ORG",
        determinerCode="INSTANCE",
    )
    _item(kept, "id", "2.16.156.10011.1.5", org_id)
    etree.SubElement(kept, f"{_V}name").text = org_name
