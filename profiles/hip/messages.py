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
from profiles.hip.v3 import DEVICE_ROOT, INTERACTION_ROOT, MESSAGE_ID_ROOT

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


def _device(parent: etree._Element, role: str, type_code: str, system: str) -> None:
    device = etree.SubElement(
        etree.SubElement(parent, f"{_V}{role}", typeCode=type_code),
        f"{_V}device",
        classCode="DEV",
        determinerCode="INSTANCE",
    )
    etree.SubElement(etree.SubElement(device, f"{_V}id"), f"{_V}item", root=DEVICE_ROOT, extension=system)


def document_register(
    document: bytes,
    *,
    code: str,
    title: str,
    document_id: str = "",
    sender: str = "HIS",
    receiver: str = "HIE-CITY-PLATFORM",
    now: dt.datetime | None = None,
) -> str:
    """``RCMR_IN000002UV02`` carrying ``document`` (base64) of type ``code``/``title``."""
    moment = (now or dt.datetime.now(_CHINA)).astimezone(_CHINA).strftime("%Y%m%d%H%M%S")
    root = etree.Element(f"{_V}RCMR_IN000002UV02", nsmap={None: NAMESPACE}, ITSVersion="XML_1.0")
    etree.SubElement(root, f"{_V}id", root=MESSAGE_ID_ROOT, extension=uuid.uuid4().hex)
    etree.SubElement(root, f"{_V}creationTime", value=moment)
    etree.SubElement(root, f"{_V}interactionId", root=INTERACTION_ROOT, extension="RCMR_IN000002UV02")
    etree.SubElement(root, f"{_V}processingCode", code="P")
    etree.SubElement(root, f"{_V}processingModeCode")
    etree.SubElement(root, f"{_V}acceptAckCode", code="AL")
    _device(root, "receiver", "RCV", receiver)
    _device(root, "sender", "SND", sender)
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
    return str(etree.tostring(root, encoding="unicode"))
