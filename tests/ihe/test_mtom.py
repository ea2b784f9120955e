"""MTOM/XOP packages: the documents come out of their parts whatever way the sender wrote the
reference, and a package that is broken is a SOAP fault naming what is wrong."""

from __future__ import annotations

import base64
import hashlib

import pytest
from lxml import etree

from ihe._mtom import XOP, include_parts, join_related, split_related
from ihe._soap import SoapFault, parse_envelope
from ihe._xsd import schema_errors, xds_schema
from tests.ihe.test_soap import EXAMPLES

XDSB = "urn:ihe:iti:xds-b:2007"
CDA = "<ClinicalDocument xmlns='urn:hl7-org:v3'><title>出院小结</title></ClinicalDocument>".encode()


def package(
    envelope: bytes, parts: list[tuple[str, bytes]], *, boundary: str = "MIMEBoundary_1"
) -> tuple[str, bytes]:
    out = [
        f'--{boundary}\r\nContent-Type: application/xop+xml; charset=UTF-8; type="application/soap+xml"\r\n'
        "Content-Transfer-Encoding: binary\r\nContent-ID: <0.root@example.org>\r\n\r\n".encode(),
        envelope,
        b"\r\n",
    ]
    for cid, content in parts:
        out += [
            f"--{boundary}\r\nContent-Type: text/xml\r\nContent-ID: {cid}\r\n\r\n".encode(),
            content,
            b"\r\n",
        ]
    out.append(f"--{boundary}--\r\n".encode())
    content_type = (
        f'multipart/related; boundary={boundary}; type="application/xop+xml"; '
        'start="<0.root@example.org>"; start-info="application/soap+xml"'
    )
    return content_type, b"".join(out)


def pnr_with(document: str) -> bytes:
    """The official ITI-41 example with its Document element's content replaced."""
    text = (EXAMPLES / "ProvideAndRegisterDocumentSet-bRequest_SOAP.xml").read_text("utf-8")
    start = text.index('<Document id="Document01">') + len('<Document id="Document01">')
    end = text.index("</Document>", start)
    return (text[:start] + document + text[end:]).encode("utf-8")


def documents(content_type: str, body: bytes) -> dict[str, bytes]:
    related = split_related(content_type, body)
    request = parse_envelope(related.root)
    found = include_parts(request.body, related.parts)
    out = {}
    for element in request.body.iter(f"{{{XDSB}}}Document"):
        out[element.get("id", "")] = found.get(element, base64.b64decode(element.text or ""))
    assert schema_errors(xds_schema(), request.body) == []  # valid once the Includes are resolved
    return out


def test_a_referenced_part_is_the_document_even_with_a_url_encoded_cid() -> None:
    include = f"<xop:Include xmlns:xop='{XOP}' href='cid:doc1%40example.org'/>"
    content_type, body = package(pnr_with(include), [("<doc1@example.org>", CDA)])
    assert documents(content_type, body) == {"Document01": CDA}


def test_inline_base64_inside_an_mtom_package_is_accepted() -> None:
    content_type, body = package(pnr_with(base64.b64encode(CDA).decode()), [])
    assert documents(content_type, body) == {"Document01": CDA}


def test_binary_content_with_crlf_and_boundary_like_bytes_survives() -> None:
    blob = b"\r\n--MIMEBoundary_\x00\xff" * 1000 + bytes(range(256))
    include = f"<xop:Include xmlns:xop='{XOP}' href='cid:blob@x'/>"
    content_type, body = package(pnr_with(include), [("<blob@x>", blob)])
    got = documents(content_type, body)["Document01"]
    assert hashlib.sha1(got).hexdigest() == hashlib.sha1(blob).hexdigest()


@pytest.mark.parametrize(
    ("mangle", "words"),
    [
        (lambda ct, b: ("text/plain", b), "not multipart/related"),
        (lambda ct, b: (ct.replace("boundary=MIMEBoundary_1; ", ""), b), "no boundary"),
        (lambda ct, b: (ct, b[: len(b) // 2]), "truncated"),
        (lambda ct, b: (ct.replace("0.root@example.org", "nothere@x"), b), "no root part"),
        (
            lambda ct, b: (ct, b.replace(b"cid:doc1%40example.org", b"cid:other@x")),
            "<other@x>, which is not in",
        ),
        (lambda ct, b: (ct, b.replace(b"cid:doc1%40example.org", b"http://evil/doc")), "not a cid:"),
    ],
)
def test_broken_packages_are_faults_naming_the_problem(mangle: object, words: str) -> None:
    include = f"<xop:Include xmlns:xop='{XOP}' href='cid:doc1%40example.org'/>"
    content_type, body = package(pnr_with(include), [("<doc1@example.org>", CDA)])
    content_type, body = mangle(content_type, body)  # type: ignore[operator]
    with pytest.raises(SoapFault) as raised:
        documents(content_type, body)
    assert raised.value.code == "Sender" and words in raised.value.reason, raised.value.reason


def test_a_response_package_splits_back_into_its_parts() -> None:
    envelope = b"<s:Envelope xmlns:s='http://www.w3.org/2003/05/soap-envelope'><s:Body/></s:Envelope>"
    content_type, body = join_related(
        envelope, [("doc-1@hie", "text/xml", CDA), ("doc-2@hie", "application/pdf", b"%PDF")]
    )
    related = split_related(content_type, body)
    assert related.root == envelope and related.parts == {"doc-1@hie": CDA, "doc-2@hie": b"%PDF"}
    assert etree.fromstring(related.root) is not None
