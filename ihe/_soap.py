"""SOAP 1.2 envelopes with WS-Addressing, as the IHE web-service transactions use them (ITI TF-2 App. V).

Every request is parsed with ``parse_envelope``: XML from outside, so with entities, DTD loading
and network access off, and any document type declaration refused outright (no XXE, no billion
laughs). What is wrong with an envelope becomes a ``SoapFault`` in SOAP's own terms (SOAP 1.2 Part 1
§5.4), which ``build_fault`` writes:

* not well-formed XML, a DTD, no ``Envelope``/``Body``, a Body without exactly one element:
  ``env:Sender``;
* a SOAP 1.1 envelope (or any other namespace): ``env:VersionMismatch`` (§5.4.7);
* a header block with ``mustUnderstand="true"`` the engine does not process: ``env:MustUnderstand``
  (§5.4.8), naming the block;
* no ``wsa:Action``: ``env:Sender`` with subcode ``wsa:MessageAddressingHeaderRequired``
  (WS-Addressing 1.0 SOAP Binding §6.4.3); IHE requires Action, and MessageID on requests.

Responses (``build_envelope``) carry ``wsa:Action`` (the request's action + ``Response`` for IHE),
``wsa:RelatesTo`` the request's MessageID, and a new ``wsa:MessageID``.

Why the IHE envelope is handled here with lxml rather than by spyne (which suits a single
document/literal operation such as the national ``HIPMessageServer`` interface): IHE
dispatches on ``wsa:Action`` and answers with ``wsa:RelatesTo``, while spyne dispatches on the
Body element's name and has no WS-Addressing; spyne does not check ``mustUnderstand`` headers,
which SOAP 1.2 requires a receiver to fault on; the IHE WSDLs import ebRIM, whose
``RegistryObjectList`` is built on substitution groups that spyne's Python-class models cannot
express, so the published WSDLs could not be served as they are; and its MTOM reading holds whole
requests in memory (see ``profiles.xds.source``). The ebRIM bodies are read and written with lxml
and validated against the vendored schemas (``ihe._xsd``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from lxml import etree

__all__ = [
    "SOAP11",
    "SOAP12",
    "WSA",
    "SoapFault",
    "SoapRequest",
    "build_envelope",
    "build_fault",
    "parse_envelope",
    "parse_xml",
]

SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
WSA = "http://www.w3.org/2005/08/addressing"
FAULT_ACTION = f"{WSA}/soap/fault"
ANONYMOUS = f"{WSA}/anonymous"
SOAP_MEDIA_TYPE = "application/soap+xml"
# Header blocks the engine processes: a mustUnderstand block outside these is a MustUnderstand fault.
_UNDERSTOOD = frozenset(
    f"{{{WSA}}}{name}" for name in ("Action", "MessageID", "To", "ReplyTo", "FaultTo", "From", "RelatesTo")
)
_TRUE = ("true", "1")

# External XML: no entity expansion, no DTD, no network, no huge text nodes beyond libxml2's limits.
_PARSER = etree.XMLParser(
    resolve_entities=False, load_dtd=False, no_network=True, dtd_validation=False, huge_tree=False
)


@dataclass
class SoapFault(Exception):
    """A SOAP 1.2 fault: ``code`` one of Sender, Receiver, MustUnderstand, VersionMismatch,
    DataEncodingUnknown; ``subcode`` a QName in Clark notation (``{ns}local``) or None."""

    code: str
    reason: str
    subcode: str | None = None
    detail: str | None = None

    def __str__(self) -> str:
        return self.reason


@dataclass
class SoapRequest:
    envelope: etree._Element
    body: etree._Element  # the one child element of soap:Body
    action: str
    message_id: str | None
    to: str | None = None
    reply_to: str | None = None
    headers: list[etree._Element] = field(default_factory=list)


def parse_xml(data: bytes) -> etree._Element:
    """Parse XML from outside; SoapFault (Sender) when it is not well-formed or declares a DTD."""
    if not data.strip():
        raise SoapFault("Sender", "the request has no XML body")
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise SoapFault("Sender", f"the request is not well-formed XML: {exc}") from None
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        # entities are not expanded anyway; a document type declaration has no place in SOAP
        raise SoapFault("Sender", "XML with a document type declaration (DTD) is refused")
    return root


def parse_envelope(data: bytes) -> SoapRequest:
    """The envelope of a SOAP 1.2 request with its WS-Addressing headers, or SoapFault."""
    root = parse_xml(data)
    qname = etree.QName(root)
    if qname.localname != "Envelope":
        raise SoapFault("Sender", f"the root element is {qname.localname}, not a SOAP Envelope")
    if qname.namespace != SOAP12:
        what = "a SOAP 1.1 envelope" if qname.namespace == SOAP11 else f"namespace {qname.namespace!r}"
        raise SoapFault("VersionMismatch", f"{what}: this service speaks SOAP 1.2 ({SOAP12})")
    header = root.find(f"{{{SOAP12}}}Header")
    body = root.find(f"{{{SOAP12}}}Body")
    if body is None:
        raise SoapFault("Sender", "the SOAP Envelope has no Body")
    children = [c for c in body if isinstance(c.tag, str)]
    if len(children) != 1:
        raise SoapFault("Sender", f"the SOAP Body must hold one request element, not {len(children)}")
    blocks = [h for h in header if isinstance(h.tag, str)] if header is not None else []
    for block in blocks:
        if (
            block.get(f"{{{SOAP12}}}mustUnderstand", "false").strip() in _TRUE
            and block.tag not in _UNDERSTOOD
        ):
            raise SoapFault("MustUnderstand", f"header block {block.tag} is not understood by this service")

    def text(name: str) -> str | None:
        found = header.find(f"{{{WSA}}}{name}") if header is not None else None
        return (found.text or "").strip() if found is not None else None

    action = text("Action")
    if not action:
        raise SoapFault(
            "Sender",
            "the request has no wsa:Action header (IHE requires WS-Addressing, ITI TF-2 Appendix V)",
            subcode=f"{{{WSA}}}MessageAddressingHeaderRequired",
        )
    reply = header.find(f"{{{WSA}}}ReplyTo/{{{WSA}}}Address") if header is not None else None
    return SoapRequest(
        envelope=root,
        body=children[0],
        action=action,
        message_id=text("MessageID"),
        to=text("To"),
        reply_to=(reply.text or "").strip() if reply is not None else None,
        headers=blocks,
    )


def build_envelope(body: etree._Element, *, action: str, relates_to: str | None) -> bytes:
    """A SOAP 1.2 response envelope around ``body`` (UTF-8, with the XML declaration)."""
    env = etree.Element(f"{{{SOAP12}}}Envelope", nsmap={"s": SOAP12, "a": WSA})
    header = etree.SubElement(env, f"{{{SOAP12}}}Header")
    act = etree.SubElement(header, f"{{{WSA}}}Action")
    act.set(f"{{{SOAP12}}}mustUnderstand", "1")
    act.text = action
    etree.SubElement(header, f"{{{WSA}}}MessageID").text = f"urn:uuid:{uuid.uuid4()}"
    if relates_to:
        etree.SubElement(header, f"{{{WSA}}}RelatesTo").text = relates_to
    etree.SubElement(env, f"{{{SOAP12}}}Body").append(body)
    return bytes(etree.tostring(env, xml_declaration=True, encoding="UTF-8"))


def build_fault(fault: SoapFault, *, relates_to: str | None = None) -> bytes:
    """The SOAP 1.2 Fault element (Code/Value, optional Subcode, Reason/Text, Detail) in an envelope."""
    element = etree.Element(f"{{{SOAP12}}}Fault", nsmap={"s": SOAP12, "a": WSA})
    code = etree.SubElement(element, f"{{{SOAP12}}}Code")
    etree.SubElement(code, f"{{{SOAP12}}}Value").text = f"s:{fault.code}"
    if fault.subcode:
        sub = etree.SubElement(code, f"{{{SOAP12}}}Subcode")
        namespace, _, local = fault.subcode.lstrip("{").partition("}")
        if namespace == WSA:
            etree.SubElement(sub, f"{{{SOAP12}}}Value").text = f"a:{local}"
        else:  # the subcode's namespace declared where its QName is used
            etree.SubElement(sub, f"{{{SOAP12}}}Value", nsmap={"sub": namespace}).text = f"sub:{local}"
    reason = etree.SubElement(element, f"{{{SOAP12}}}Reason")
    text = etree.SubElement(reason, f"{{{SOAP12}}}Text")
    text.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
    text.text = fault.reason
    if fault.detail:
        etree.SubElement(element, f"{{{SOAP12}}}Detail").text = fault.detail
    return build_envelope(element, action=FAULT_ACTION, relates_to=relates_to)
