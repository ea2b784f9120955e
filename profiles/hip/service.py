"""The ``HIPMessageServer`` SOAP service of the national interoperability assessment, built with spyne
(china-hie.md §2): one document/literal operation ``HIPMessageServer(action, message) -> string``
in namespace ``urn:hl7-org:v3``, the HL7 V3 message carried as an escaped string, the answer in
``HIPMessageServerResult``. SOAP 1.2 is the binding; SOAP 1.1 requests are answered in SOAP 1.1,
since many hospital toolkits still send it.

spyne models this operation well, so it does the SOAP work here: it reads the envelope and the
operation's two strings, writes the response and faults, and generates the WSDL. It is driven
as a codec (``HipCodec``: bytes in, bytes out) rather than as its WSGI server, because the
engine's HTTP listener is asyncio and the request must be stored and answered by the channel
between the two halves. What spyne does not do is refused before it sees the request: a DTD (no
XXE, no entity expansion), an oversized body (the source's limit).
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree
from spyne import Application, MethodContext, ServiceBase, Unicode, rpc
from spyne.interface.wsdl import Wsdl11
from spyne.model.fault import Fault
from spyne.protocol.soap import Soap11, Soap12
from spyne.server import ServerBase

from ihe._soap import SOAP11, SOAP12, SoapFault

__all__ = ["NAMESPACE", "HipCall", "HipCodec", "codec_for", "wsdl"]

NAMESPACE = "urn:hl7-org:v3"
# XML from outside: no entities, no DTD, no network; huge text nodes allowed (see _application)
_PARSER = etree.XMLParser(resolve_entities=False, load_dtd=False, no_network=True, huge_tree=True)


class _HipService(ServiceBase):  # type: ignore[misc]
    """The operation as the assessment declares it; the engine answers it, not this method."""

    __service_name__ = "HIPMessageServer"

    @rpc(  # type: ignore[untyped-decorator]
        Unicode,
        Unicode,
        _returns=Unicode,
        _body_style="wrapped",
        _operation_name="HIPMessageServer",
        _in_message_name="HIPMessageServer",
        _soap_body_style="document",
    )
    def HIPMessageServer(ctx: object, action: str, message: str) -> str:
        raise NotImplementedError("HipCodec decodes requests; the channel answers them")


def _application(version: str) -> Application:
    protocol = Soap12 if version == SOAP12 else Soap11
    return Application(
        [_HipService],
        tns=NAMESPACE,
        name="HIPMessageServer",
        # entities, DTDs and the network are off in spyne's parser by default; huge_tree lets a
        # message string (a base64 document) exceed libxml2's 10 MB text node limit: the source's
        # max_body_bytes bounds it instead
        in_protocol=protocol(huge_tree=True),
        out_protocol=protocol(),
    )


@dataclass(frozen=True)
class HipCall:
    action: str
    message: str
    context: MethodContext  # spyne's, to write the answer in the same SOAP version


class HipCodec(ServerBase):  # type: ignore[misc]
    """One SOAP version of the service: requests decoded, answers and faults encoded by spyne."""

    transport = "http://schemas.xmlsoap.org/soap/http"

    def __init__(self, version: str) -> None:
        super().__init__(_application(version))
        self.version = version

    def decode(self, body: bytes) -> HipCall:
        """The call's action and message; SoapFault (Sender) for what is not this operation."""
        ctx = MethodContext(self, MethodContext.SERVER)
        ctx.in_string = [body]
        ctx = self.generate_contexts(ctx)[0]
        if ctx.in_error is None:
            self.get_in_object(ctx)
        if ctx.in_error is not None:
            reason = getattr(ctx.in_error, "faultstring", None) or str(ctx.in_error)
            raise SoapFault("Sender", f"not a HIPMessageServer request: {reason}")
        action, message = ctx.in_object
        return HipCall((action or "").strip(), message or "", ctx)

    def answer(self, call: HipCall, result: str) -> bytes:
        ctx = call.context
        ctx.out_object = [result]
        self.get_out_string(ctx)
        return b"".join(ctx.out_string)

    def fault(self, fault: SoapFault) -> bytes:
        ctx = MethodContext(self, MethodContext.SERVER)
        ctx.out_error = Fault("Client" if fault.code == "Sender" else "Server", fault.reason)
        self.get_out_string(ctx)
        return b"".join(ctx.out_string)


_CODECS = {SOAP12: HipCodec(SOAP12), SOAP11: HipCodec(SOAP11)}


def codec_for(body: bytes) -> HipCodec:
    """The codec of the request's SOAP version; SoapFault for what is not a SOAP envelope (a DTD
    included: it is refused before spyne parses anything)."""
    if not body.strip():
        raise SoapFault("Sender", "the request has no XML body")
    try:
        root = etree.fromstring(body, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise SoapFault("Sender", f"the request is not well-formed XML: {exc}") from None
    info = root.getroottree().docinfo
    if info.doctype or info.internalDTD is not None:
        raise SoapFault("Sender", "XML with a document type declaration (DTD) is refused")
    namespace = etree.QName(root).namespace or ""
    if etree.QName(root).localname != "Envelope" or namespace not in _CODECS:
        raise SoapFault("Sender", "the request is not a SOAP 1.2 (or 1.1) Envelope")
    return _CODECS[namespace]


def wsdl(address: str) -> bytes:
    """The service's WSDL (SOAP 1.2 binding) with ``address`` as its endpoint."""
    document = Wsdl11(_CODECS[SOAP12].app.interface)  # the codec's: it names the HTTP transport
    document.build_interface_document(address)
    return bytes(document.get_interface_document())
