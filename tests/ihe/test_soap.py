"""SOAP 1.2 envelopes from outside: the official IHE examples parse; every malformed or hostile
envelope is a SOAP fault in SOAP's own terms, and never an entity expanded or a file read."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from lxml import etree

from ihe._soap import SOAP12, WSA, SoapFault, build_envelope, build_fault, parse_envelope

EXAMPLES = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "ihe-iti-info" / "examples" / "XDS.b"
ACTIONS = {
    "ProvideAndRegisterDocumentSet-bRequest_SOAP.xml": "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b",
    "RegisterDocumentSet-bRequest_SOAP.xml": "urn:ihe:iti:2007:RegisterDocumentSet-b",
    "RegistryStoredQueryRequest_SOAP.xml": "urn:ihe:iti:2007:RegistryStoredQuery",
    "RetrieveDocumentSetRequest_SOAP.xml": "urn:ihe:iti:2007:RetrieveDocumentSet",
}


def envelope(
    body: str = "<q:Ping xmlns:q='urn:test'/>", header: str | None = None, ns: str = SOAP12
) -> bytes:
    if header is None:
        header = "<a:Action>urn:test:Ping</a:Action><a:MessageID>urn:uuid:1234</a:MessageID>"
    return (
        f"<s:Envelope xmlns:s='{ns}' xmlns:a='{WSA}'><s:Header>{header}</s:Header>"
        f"<s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


@pytest.mark.parametrize("name", sorted(ACTIONS))
def test_the_official_requests_parse_with_their_addressing_headers(name: str) -> None:
    request = parse_envelope((EXAMPLES / name).read_bytes())
    assert request.action == ACTIONS[name]
    assert request.message_id and request.message_id.startswith("urn:uuid:")
    assert request.reply_to == "http://www.w3.org/2005/08/addressing/anonymous"
    assert etree.QName(request.body).namespace in (
        "urn:ihe:iti:xds-b:2007",
        "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0",
        "urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0",
    )


def fault_of(data: bytes) -> SoapFault:
    with pytest.raises(SoapFault) as raised:
        parse_envelope(data)
    return raised.value


def test_external_entities_are_refused_and_never_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    xxe = f'<?xml version="1.0"?><!DOCTYPE e [<!ENTITY x SYSTEM "file://{secret}">]>'.encode() + envelope(
        "<q:Ping xmlns:q='urn:test'>&x;</q:Ping>"
    )
    fault = fault_of(xxe)
    assert fault.code == "Sender" and "DTD" in fault.reason
    assert "TOP-SECRET" not in fault.reason


def test_a_billion_laughs_is_refused_at_once() -> None:
    lol = "".join(
        f'<!ENTITY l{i} "{"&l" + str(i - 1) + ";" * 1}{("&l" + str(i - 1) + ";") * 9}">' for i in range(1, 10)
    )
    bomb = f'<?xml version="1.0"?><!DOCTYPE e [<!ENTITY l0 "lol">{lol}]>'.encode() + envelope(
        "<q:Ping xmlns:q='urn:test'>&l9;</q:Ping>"
    )
    started = time.monotonic()
    fault = fault_of(bomb)
    assert fault.code == "Sender" and time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("data", "code", "words"),
    [
        (b"", "Sender", "no XML body"),
        (b"<s:Envelope xmlns:s='x'", "Sender", "not well-formed"),
        (b"<Ping/>", "Sender", "not a SOAP Envelope"),
        (envelope(ns="http://schemas.xmlsoap.org/soap/envelope/"), "VersionMismatch", "SOAP 1.1"),
        (envelope(body=""), "Sender", "one request element, not 0"),
        (envelope(body="<a:x xmlns:a='u'/><a:y xmlns:a='u'/>"), "Sender", "not 2"),
        (envelope(header="<a:MessageID>urn:uuid:1</a:MessageID>"), "Sender", "wsa:Action"),
        (
            envelope(
                header="<a:Action>urn:x</a:Action><w:Security xmlns:w='urn:wss' s:mustUnderstand='true'/>"
            ),
            "MustUnderstand",
            "{urn:wss}Security",
        ),
    ],
)
def test_malformed_envelopes_are_faults_naming_the_problem(data: bytes, code: str, words: str) -> None:
    fault = fault_of(data)
    assert fault.code == code and words in fault.reason, fault


def test_a_missing_action_fault_carries_the_ws_addressing_subcode() -> None:
    fault = fault_of(envelope(header="<a:MessageID>urn:uuid:1</a:MessageID>"))
    written = etree.fromstring(build_fault(fault, relates_to="urn:uuid:1"))
    ns = {"s": SOAP12, "a": WSA}
    assert written.findtext("s:Header/a:Action", namespaces=ns) == f"{WSA}/soap/fault"
    assert written.findtext("s:Header/a:RelatesTo", namespaces=ns) == "urn:uuid:1"
    assert written.findtext("s:Body/s:Fault/s:Code/s:Value", namespaces=ns) == "s:Sender"
    sub = written.find("s:Body/s:Fault/s:Code/s:Subcode/s:Value", namespaces=ns)
    assert sub is not None and sub.text == "a:MessageAddressingHeaderRequired" and sub.nsmap["a"] == WSA
    assert "wsa:Action" in (written.findtext("s:Body/s:Fault/s:Reason/s:Text", namespaces=ns) or "")


def test_a_response_relates_to_its_request() -> None:
    request = parse_envelope(envelope())
    pong = etree.Element("{urn:test}Pong")
    answer = parse_envelope(
        build_envelope(pong, action="urn:test:PingResponse", relates_to=request.message_id)
    )
    assert answer.action == "urn:test:PingResponse" and answer.message_id != request.message_id
    assert answer.envelope.findtext(f"{{{SOAP12}}}Header/{{{WSA}}}RelatesTo") == "urn:uuid:1234"
