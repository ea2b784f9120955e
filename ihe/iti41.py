"""ITI-41 Provide and Register Document Set-b, as a Document Source writes it (ITI TF-3 §4.2, TF-2 §3.41).

``provide_request`` builds the ProvideAndRegisterDocumentSetRequest of one document: a
DocumentEntry with every attribute the registry requires (xds.md §4 row 6), a SubmissionSet, their
HasMember association, and the document as an ``xop:Include`` of an MTOM part (or inline). The
CLI (``hie xds submit``) sends it; the CDA upload and the imaging source will build theirs with it.
Codes are ``code^^scheme`` with an optional display name after a second ``^^``.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from lxml import etree

from ihe._ebxml import (
    DE_AUTHOR,
    DE_CODES,
    DE_PATIENT_ID,
    DE_UNIQUE_ID,
    HAS_MEMBER,
    LCM,
    RIM,
    SS_CONTENT_TYPE,
    SS_PATIENT_ID,
    SS_SOURCE_ID,
    SS_UNIQUE_ID,
    STABLE,
    SUBMISSION_SET_NODE,
)
from ihe._mtom import XOP
from ihe.iti43 import XDSB

__all__ = ["DocumentMetadata", "provide_request"]

_R = f"{{{RIM}}}"


@dataclass
class DocumentMetadata:
    patient_id: str  # the affinity domain's id, ID^^^&OID&ISO
    source_id: str  # the Document Source's OID
    mime_type: str = "text/xml"
    title: str = ""
    unique_id: str = ""  # an OID; made from a UUID (2.25.<int>) when empty
    submission_set_unique_id: str = ""
    creation_time: str = ""  # DTM; now (UTC) when empty
    language: str = "zh-CN"
    class_code: str = "34133-9^^2.16.840.1.113883.6.1^^Summary of episode note"
    type_code: str = "34133-9^^2.16.840.1.113883.6.1^^Summary of episode note"
    format_code: str = "urn:ihe:iti:xds:2017:mimeTypeSufficient^^1.3.6.1.4.1.19376.1.2.3"
    confidentiality_code: str = "N^^2.16.840.1.113883.5.25^^Normal"
    facility_type_code: str = "22232009^^2.16.840.1.113883.6.96^^Hospital"
    practice_setting_code: str = "394802001^^2.16.840.1.113883.6.96^^General medicine"
    content_type_code: str = "34133-9^^2.16.840.1.113883.6.1^^Summary of episode note"
    author_person: str = ""
    author_institution: str = ""
    event_codes: list[str] = field(default_factory=list)
    # urn:ihe:iti:xds:2013:referenceIdList (CXi values: a study's UID, an accession number...)
    reference_ids: list[str] = field(default_factory=list)
    replaces: str = ""  # the entryUUID of a DocumentEntry this document replaces (RPLC)


def _uid() -> str:
    return f"2.25.{uuid.uuid4().int}"


def _slot(parent: etree._Element, name: str, *values: str) -> None:
    slot = etree.SubElement(parent, f"{_R}Slot", name=name)
    value_list = etree.SubElement(slot, f"{_R}ValueList")
    for v in values:
        etree.SubElement(value_list, f"{_R}Value").text = v


def _name(parent: etree._Element, text: str, tag: str = "Name") -> None:
    if text:
        etree.SubElement(etree.SubElement(parent, f"{_R}{tag}"), f"{_R}LocalizedString", value=text)


def _classification(parent: etree._Element, scheme: str, owner: str, code: str, n: list[int]) -> None:
    value, _, rest = code.partition("^^")
    coding, _, display = rest.partition("^^")
    n[0] += 1
    c = etree.SubElement(
        parent,
        f"{_R}Classification",
        id=f"cl{n[0]:02d}",
        classificationScheme=scheme,
        classifiedObject=owner,
        nodeRepresentation=value,
    )
    _slot(c, "codingScheme", coding)
    _name(c, display or value)


def _external_id(
    parent: etree._Element, scheme: str, owner: str, value: str, name: str, n: list[int]
) -> None:
    n[0] += 1
    e = etree.SubElement(
        parent,
        f"{_R}ExternalIdentifier",
        id=f"ei{n[0]:02d}",
        registryObject=owner,
        identificationScheme=scheme,
        value=value,
    )
    _name(e, name)


def provide_request(
    meta: DocumentMetadata, *, content_id: str | None = None, inline: bytes | None = None
) -> etree._Element:
    """The request for one document: its content an xop:Include of ``content_id``, or ``inline``."""
    meta.unique_id = meta.unique_id or _uid()
    meta.submission_set_unique_id = meta.submission_set_unique_id or _uid()
    now = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    n = [0]
    request = etree.Element(
        f"{{{XDSB}}}ProvideAndRegisterDocumentSetRequest", nsmap={None: XDSB, "lcm": LCM, "rim": RIM}
    )
    objects = etree.SubElement(
        etree.SubElement(request, f"{{{LCM}}}SubmitObjectsRequest"), f"{_R}RegistryObjectList"
    )

    doc = etree.SubElement(
        objects, f"{_R}ExtrinsicObject", id="Document01", mimeType=meta.mime_type, objectType=STABLE
    )
    _slot(doc, "creationTime", meta.creation_time or now)
    _slot(doc, "languageCode", meta.language)
    _slot(doc, "sourcePatientId", meta.patient_id)
    if meta.reference_ids:
        _slot(doc, "urn:ihe:iti:xds:2013:referenceIdList", *meta.reference_ids)
    _name(doc, meta.title)
    if meta.author_person or meta.author_institution:
        n[0] += 1
        author = etree.SubElement(
            doc,
            f"{_R}Classification",
            id=f"cl{n[0]:02d}",
            classificationScheme=DE_AUTHOR,
            classifiedObject="Document01",
            nodeRepresentation="",
        )
        if meta.author_person:
            _slot(author, "authorPerson", meta.author_person)
        if meta.author_institution:
            _slot(author, "authorInstitution", meta.author_institution)
    codes = {
        "classCode": [meta.class_code],
        "typeCode": [meta.type_code],
        "formatCode": [meta.format_code],
        "confidentialityCode": [meta.confidentiality_code],
        "healthcareFacilityTypeCode": [meta.facility_type_code],
        "practiceSettingCode": [meta.practice_setting_code],
        "eventCodeList": meta.event_codes,
    }
    for name, values in codes.items():
        for code in values:
            _classification(doc, DE_CODES[name], "Document01", code, n)
    _external_id(doc, DE_PATIENT_ID, "Document01", meta.patient_id, "XDSDocumentEntry.patientId", n)
    _external_id(doc, DE_UNIQUE_ID, "Document01", meta.unique_id, "XDSDocumentEntry.uniqueId", n)

    ss = etree.SubElement(objects, f"{_R}RegistryPackage", id="SubmissionSet01")
    _slot(ss, "submissionTime", now)
    _name(ss, meta.title)
    _classification(ss, SS_CONTENT_TYPE, "SubmissionSet01", meta.content_type_code, n)
    _external_id(
        ss, SS_UNIQUE_ID, "SubmissionSet01", meta.submission_set_unique_id, "XDSSubmissionSet.uniqueId", n
    )
    _external_id(ss, SS_SOURCE_ID, "SubmissionSet01", meta.source_id, "XDSSubmissionSet.sourceId", n)
    _external_id(ss, SS_PATIENT_ID, "SubmissionSet01", meta.patient_id, "XDSSubmissionSet.patientId", n)
    etree.SubElement(
        objects,
        f"{_R}Classification",
        id="SubmissionSet01Class",
        classifiedObject="SubmissionSet01",
        classificationNode=SUBMISSION_SET_NODE,
    )
    member = etree.SubElement(
        objects,
        f"{_R}Association",
        id="HasMember01",
        associationType=HAS_MEMBER,
        sourceObject="SubmissionSet01",
        targetObject="Document01",
    )
    _slot(member, "SubmissionSetStatus", "Original")
    if meta.replaces:
        etree.SubElement(
            objects,
            f"{_R}Association",
            id="Replaces01",
            associationType="urn:ihe:iti:2007:AssociationType:RPLC",
            sourceObject="Document01",
            targetObject=meta.replaces,
        )

    document = etree.SubElement(request, f"{{{XDSB}}}Document", id="Document01")
    if content_id is not None:
        etree.SubElement(document, f"{{{XOP}}}Include", href=f"cid:{content_id}")
    else:
        document.text = base64.b64encode(inline or b"").decode("ascii")
    return request
