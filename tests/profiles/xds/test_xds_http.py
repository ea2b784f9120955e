"""The registry and repository over real HTTP (SQLite and PostgreSQL): the official ITI-Info example
messages replayed as sent, and the answers a Document Source and Consumer would read."""

from __future__ import annotations

import base64
import email.parser
import hashlib
import json
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import select

from engine.store.schema import audit_events, deliveries, messages
from ihe._soap import SOAP12
from ihe.iti18 import QUERY
from profiles.xds.schema import documents, repository_documents
from tests.engine.connectors.mllp_peers import rows, until
from tests.ihe.test_soap import EXAMPLES
from tests.profiles.xds.conftest import ITI, Xds, body_of, envelope

RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
RS = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"
XDSB = "urn:ihe:iti:xds-b:2007"
SUCCESS = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
FAILURE = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"
EXAMPLE_DOCUMENT = base64.b64decode("UjBsR09EbGhjZ0dTQUxNQUFBUUNBRU1tQ1p0dU1GUXhEUzhi")
REGISTER = '<rim:Slot name="creationTime">'
REPOSITORY_SLOTS = (
    '<rim:Slot name="hash"><rim:ValueList><rim:Value>DA39A3EE5E6B4B0D3255BFEF95601890AFD80709</rim:Value>'
    '</rim:ValueList></rim:Slot><rim:Slot name="size"><rim:ValueList><rim:Value>0</rim:Value></rim:ValueList>'
    '</rim:Slot><rim:Slot name="repositoryUniqueId"><rim:ValueList><rim:Value>1.2.156.112606.1.99</rim:Value>'
    "</rim:ValueList></rim:Slot>"
)
FIND_SELF_5 = f"""<query:AdhocQueryRequest xmlns:query="{QUERY}" xmlns:rim="{RIM}">
  <query:ResponseOption returnComposedObjects="true" returnType="LeafClass"/>
  <rim:AdhocQuery id="urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d">
    <rim:Slot name="$XDSDocumentEntryPatientId"><rim:ValueList>
      <rim:Value>'SELF-5^^^&amp;1.3.6.1.4.1.21367.2005.3.7&amp;ISO'</rim:Value></rim:ValueList></rim:Slot>
    <rim:Slot name="$XDSDocumentEntryStatus"><rim:ValueList>
      <rim:Value>('urn:oasis:names:tc:ebxml-regrep:StatusType:Approved')</rim:Value></rim:ValueList></rim:Slot>
  </rim:AdhocQuery></query:AdhocQueryRequest>"""


def held(xds: Xds) -> list[dict[str, object]]:
    with xds.rt.services.db.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(repository_documents))]


def mime_parts(content_type: str, body: bytes) -> list[tuple[dict[str, str], bytes]]:
    """An MTOM response read with the standard library's MIME parser (not the engine's)."""
    message = email.parser.BytesParser().parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    assert message.is_multipart()
    return [(dict(part.items()), part.get_payload(decode=True)) for part in message.get_payload()]


def retrieve(repository: str, unique_id: str) -> bytes:
    return envelope(
        f"{ITI}RetrieveDocumentSet",
        f'<RetrieveDocumentSetRequest xmlns="{XDSB}"><DocumentRequest>'
        f"<RepositoryUniqueId>{repository}</RepositoryUniqueId><DocumentUniqueId>{unique_id}</DocumentUniqueId>"
        "</DocumentRequest></RetrieveDocumentSetRequest>",
    )


async def test_the_official_provide_and_register_is_found_and_retrieved(xds: Xds) -> None:
    await xds.know("SELF-5")
    answer = await xds.post(
        xds.repository, (EXAMPLES / "ProvideAndRegisterDocumentSet-bRequest_SOAP.xml").read_bytes()
    )
    assert answer.status_code == 200, answer.text
    # the ITI-41 response is an MTOM package too (TF-2 §3.41.4.2.2)
    assert answer.headers["content-type"].startswith("multipart/related")
    ((_, root),) = mime_parts(answer.headers["content-type"], answer.content)
    response = body_of(root)
    assert response.tag == f"{{{RS}}}RegistryResponse" and response.get("status") == SUCCESS

    found = await xds.post(xds.registry, envelope(f"{ITI}RegistryStoredQuery", FIND_SELF_5))
    assert found.status_code == 200
    assert found.headers["content-type"].startswith("application/soap+xml")
    result = body_of(found.content)
    assert result.get("status") == SUCCESS
    (entry,) = result.iter(f"{{{RIM}}}ExtrinsicObject")
    slots = {s.get("name"): [v.text for v in s.iter(f"{{{RIM}}}Value")] for s in entry.iter(f"{{{RIM}}}Slot")}
    # the repository computed and set hash, size and its own id
    assert slots["hash"] == [hashlib.sha1(EXAMPLE_DOCUMENT).hexdigest()]
    assert slots["size"] == [str(len(EXAMPLE_DOCUMENT))]
    assert slots["repositoryUniqueId"] == [xds.unique_id]
    assert entry.get("status") == "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"

    got = await xds.post(xds.repository, retrieve(xds.unique_id, "1.3.6.1.4.1.21367.2005.3.9999.32"))
    assert got.status_code == 200
    (_root_headers, root), (doc_headers, document) = mime_parts(got.headers["content-type"], got.content)
    retrieved = body_of(root)
    assert retrieved.find(f"{{{RS}}}RegistryResponse").get("status") == SUCCESS  # type: ignore[union-attr]
    include = retrieved.find(f".//{{{XDSB}}}Document/{{http://www.w3.org/2004/08/xop/include}}Include")
    assert include is not None and include.get("href") == "cid:" + doc_headers["Content-ID"].strip("<>")
    assert document == EXAMPLE_DOCUMENT
    assert retrieved.findtext(f".//{{{XDSB}}}mimeType") == "text/xml"


def mtom(
    envelope_bytes: bytes, parts: list[tuple[str, bytes]], *, start: str = "root@example.org"
) -> tuple[str, bytes]:
    boundary = "MIMEBoundary_urn_uuid_1234"
    out = [
        f'--{boundary}\r\nContent-Type: application/xop+xml; charset=UTF-8; type="application/soap+xml"\r\n'
        f"Content-Transfer-Encoding: binary\r\nContent-ID: <{start}>\r\n\r\n".encode(),
        envelope_bytes,
        b"\r\n",
    ]
    for cid, content in parts:
        out += [
            f"--{boundary}\r\nContent-Type: text/xml\r\nContent-ID: <{cid}>\r\n\r\n".encode(),
            content,
            b"\r\n",
        ]
    out.append(f"--{boundary}--\r\n".encode())
    content_type = (
        f'multipart/related; boundary="{boundary}"; type="application/xop+xml"; start="<{start}>"; '
        'start-info="application/soap+xml"'
    )
    return content_type, b"".join(out)


def provide(
    document_ref: str, *, unique_id: str = "1.3.6.1.4.1.21367.2005.3.9999.32", ss: str = "9999.33"
) -> bytes:
    """The official ITI-41 example with its document's content replaced (an xop:Include, or base64)."""
    text = (EXAMPLES / "ProvideAndRegisterDocumentSet-bRequest_SOAP.xml").read_text("utf-8")
    text = re.sub(
        r'<Document id="Document01">[^<]*</Document>',
        f'<Document id="Document01">{document_ref}</Document>',
        text,
    )
    text = text.replace("1.3.6.1.4.1.21367.2005.3.9999.32", unique_id).replace("9999.33", ss)
    return text.encode("utf-8")


def include(cid: str) -> str:
    return f'<xop:Include xmlns:xop="http://www.w3.org/2004/08/xop/include" href="cid:{cid}"/>'


def errors_of(response: bytes) -> list[tuple[str, str]]:
    return [
        (e.get("errorCode", ""), e.get("location", ""))
        for e in body_of(response).iter(f"{{{RS}}}RegistryError")
    ]


CDA = (
    "<ClinicalDocument xmlns='urn:hl7-org:v3'><title>出院小结</title>"
    + "<!-- pad -->" * 20000
    + "</ClinicalDocument>"
).encode()


async def test_an_mtom_document_is_streamed_to_the_content_store_once_and_retrieved(xds: Xds) -> None:
    await xds.know("SELF-5")
    # the cid: reference URL-encoded, as some senders write it (RFC 2392)
    content_type, body = mtom(provide(include("doc1%40example.org")), [("doc1@example.org", CDA)])
    answer = await xds.post(xds.repository, body, content_type)
    ((_, root),) = mime_parts(answer.headers["content-type"], answer.content)
    assert body_of(root).get("status") == SUCCESS, root.decode()
    address = hashlib.sha256(CDA).hexdigest()
    stored = xds.rt.app.data_dir / "xds" / "documents" / address[:2] / address[2:4] / address
    assert stored.read_bytes() == CDA
    # the message store keeps the request with the part by its address, not the document again
    (message,) = [m for m in rows(xds.rt, messages) if m["channel_id"] == "xds-repository"]
    assert CDA not in message["raw"] and f"sha256={address}".encode() in message["raw"]
    assert message["control_id"] == "urn:uuid:6d296e90-e5dc-43d0-b455-7c1f3eb35d83"
    assert message["message_type"] == "ProvideAndRegisterDocumentSet-b"

    got = await xds.post(xds.repository, retrieve(xds.unique_id, "1.3.6.1.4.1.21367.2005.3.9999.32"))
    (_, _), (_, document) = mime_parts(got.headers["content-type"], got.content)
    assert document == CDA
    (retrieval,) = [
        d
        for d in rows(xds.rt, deliveries)
        if d["channel_id"] == "xds-repository" and d["sent_at"] and b"Retrieve" in (d["response"] or b"")
    ]
    assert CDA not in retrieval["response"]  # the store keeps the answer without the document


async def test_the_official_register_then_an_objectref_query(xds: Xds) -> None:
    await xds.know("SELF-5")
    official = (EXAMPLES / "RegisterDocumentSet-bRequest_SOAP.xml").read_text("utf-8")
    # as published, the example lacks what a repository adds before ITI-42 (xds.md §4 row 6)
    answer = await xds.post(xds.registry, official.encode())
    assert sorted(errors_of(answer.content)) == [("XDSRegistryMetadataError", "Document01")] * 3
    assert rows(xds.rt, documents) == []
    answer = await xds.post(xds.registry, official.replace(REGISTER, REPOSITORY_SLOTS + REGISTER, 1).encode())
    assert body_of(answer.content).get("status") == SUCCESS, answer.text
    found = await xds.post(
        xds.registry, envelope(f"{ITI}RegistryStoredQuery", FIND_SELF_5.replace("LeafClass", "ObjectRef"))
    )
    refs = list(body_of(found.content).iter(f"{{{RIM}}}ObjectRef"))
    assert len(refs) == 1 and refs[0].get("id", "").startswith("urn:uuid:")


async def test_submission_errors_have_their_codes_and_register_nothing(xds: Xds) -> None:
    # unknown patient: the EMPI has never heard of SELF-5 yet
    answer = await xds.post(xds.repository, provide(base64.b64encode(CDA).decode()))
    ((_, root),) = mime_parts(answer.headers["content-type"], answer.content)
    assert body_of(root).get("status") == FAILURE
    assert [c for c, _ in errors_of(root)] == ["XDSUnknownPatientId"]
    await xds.know("SELF-5")
    # a hash that is not the document's
    text = provide(base64.b64encode(CDA).decode()).replace(
        b'<rim:Slot name="languageCode">',
        b'<rim:Slot name="hash"><rim:ValueList><rim:Value>'
        + b"0" * 40
        + b'</rim:Value></rim:ValueList></rim:Slot><rim:Slot name="languageCode">',
        1,
    )
    answer = await xds.post(xds.repository, text)
    assert errors_of(mime_parts(answer.headers["content-type"], answer.content)[0][1]) == [
        ("XDSRepositoryMetadataError", "Document01")
    ]
    # a DocumentEntry without its document; a document without its entry
    answer = await xds.post(
        xds.repository,
        provide(base64.b64encode(CDA).decode()).replace(b'id="Document01">', b'id="Other">', 1),
    )
    ((_, root),) = mime_parts(answer.headers["content-type"], answer.content)
    assert sorted(errors_of(root)) == [
        ("XDSMissingDocument", "Document01"),
        ("XDSMissingDocumentMetadata", "Other"),
    ]
    # nothing of these was registered or stored
    assert held(xds) == [] and rows(xds.rt, documents) == []
    # accepted; the same again is accepted; another document under the uniqueId is not
    first = await xds.post(xds.repository, provide(base64.b64encode(CDA).decode()))
    assert body_of(mime_parts(first.headers["content-type"], first.content)[0][1]).get("status") == SUCCESS
    again = await xds.post(xds.repository, provide(base64.b64encode(CDA).decode(), ss="9999.34"))
    assert body_of(mime_parts(again.headers["content-type"], again.content)[0][1]).get("status") == SUCCESS
    other = await xds.post(xds.repository, provide(base64.b64encode(b"<x/>").decode(), ss="9999.35"))
    assert [c for c, _ in errors_of(mime_parts(other.headers["content-type"], other.content)[0][1])] == [
        "XDSNonIdenticalHash"
    ]
    assert len(held(xds)) == 1 and len(rows(xds.rt, documents)) == 1
    # each refusal is an errored delivery, with its reason, for the auditors
    refused = [d["last_error"] for d in rows(xds.rt, deliveries) if d["status"] == "errored"]
    assert any(r.startswith("XDSNonIdenticalHash") for r in refused) and len(refused) == 4


async def test_query_and_retrieve_errors(xds: Xds) -> None:
    await xds.know("SELF-5")
    unknown_query = FIND_SELF_5.replace(
        "14d4debf-8f97-4251-9a74-a90016b0af0d", "00000000-0000-0000-0000-000000000000"
    )
    answer = await xds.post(xds.registry, envelope(f"{ITI}RegistryStoredQuery", unknown_query))
    assert body_of(answer.content).get("status") == FAILURE
    assert [c for c, _ in errors_of(answer.content)] == ["XDSUnknownStoredQuery"]
    stranger = FIND_SELF_5.replace("SELF-5", "NOBODY-1")
    assert [
        c
        for c, _ in errors_of(
            (await xds.post(xds.registry, envelope(f"{ITI}RegistryStoredQuery", stranger))).content
        )
    ] == ["XDSUnknownPatientId"]
    no_status = re.sub(
        r'<rim:Slot name="\$XDSDocumentEntryStatus">.*?</rim:Slot>', "", FIND_SELF_5, flags=re.S
    )
    assert [
        c
        for c, _ in errors_of(
            (await xds.post(xds.registry, envelope(f"{ITI}RegistryStoredQuery", no_status))).content
        )
    ] == ["XDSStoredQueryMissingParam"]

    await xds.post(xds.repository, provide(base64.b64encode(CDA).decode()))
    two = retrieve(xds.unique_id, "1.3.6.1.4.1.21367.2005.3.9999.32").replace(
        b"</DocumentRequest>",
        f"</DocumentRequest><DocumentRequest><RepositoryUniqueId>{xds.unique_id}</RepositoryUniqueId>"
        "<DocumentUniqueId>1.2.3.404</DocumentUniqueId></DocumentRequest>".encode(),
    )
    got = await xds.post(xds.repository, two)
    (_, root), (_, document) = mime_parts(got.headers["content-type"], got.content)
    status = body_of(root).find(f"{{{RS}}}RegistryResponse")
    assert status is not None and status.get("status") == "urn:ihe:iti:2007:ResponseStatusType:PartialSuccess"
    assert errors_of(root) == [("XDSDocumentUniqueIdError", "1.2.3.404")] and document == CDA
    elsewhere = await xds.post(xds.repository, retrieve("1.2.3.999", "1.3.6.1.4.1.21367.2005.3.9999.32"))
    ((_, root),) = mime_parts(elsewhere.headers["content-type"], elsewhere.content)
    assert body_of(root).find(f"{{{RS}}}RegistryResponse").get("status") == FAILURE  # type: ignore[union-attr]
    assert [c for c, _ in errors_of(root)] == ["XDSUnknownRepositoryId"]


def fault_of(response: bytes) -> tuple[str, str]:
    fault = body_of(response)
    assert fault.tag == f"{{{SOAP12}}}Fault"
    return fault.findtext(f".//{{{SOAP12}}}Value") or "", fault.findtext(f".//{{{SOAP12}}}Text") or ""


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code", "reason"),
    [
        (b"hello", "text/plain", 415, "s:Sender", "not SOAP 1.2"),
        (b"<a>", "application/soap+xml", 400, "s:Sender", "not well-formed"),
        (
            b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><x>&e;</x></s:Body></s:Envelope>',
            "application/soap+xml",
            400,
            "s:Sender",
            "DTD",
        ),
        (
            b'<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body><x/></e:Body></e:Envelope>',
            "text/xml",
            500,
            "s:VersionMismatch",
            "SOAP 1.1",
        ),
        (
            envelope(f"{ITI}RetrieveDocumentSet", "<x/>"),
            "application/soap+xml",
            400,
            "s:Sender",
            "does not serve action",
        ),
        (
            envelope(f"{ITI}RegistryStoredQuery", FIND_SELF_5).replace(
                b"</s:Header>", b'<t:Security xmlns:t="urn:x" s:mustUnderstand="true"/></s:Header>'
            ),
            "application/soap+xml",
            500,
            "s:MustUnderstand",
            "not understood",
        ),
        (
            b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><x/></s:Body></s:Envelope>',
            "application/soap+xml",
            400,
            "s:Sender",
            "wsa:Action",
        ),
    ],
)
async def test_envelope_errors_are_soap_faults_and_errored_records(
    xds: Xds, body: bytes, content_type: str, status: int, code: str, reason: str
) -> None:
    answer = await xds.post(xds.registry, body, content_type)
    assert answer.status_code == status
    got_code, text = fault_of(answer.content)
    assert got_code == code and reason in text
    # kept for the auditors: an envelope refused as errored bytes, a refused action as an errored delivery
    (record,) = [m for m in rows(xds.rt, messages) if m["channel_id"] == "xds-registry"]
    errored = [d["last_error"] for d in rows(xds.rt, deliveries) if d["status"] == "errored"]
    reasons = [record["error"]] if record["status"] == "errored" else errored
    assert len(reasons) == 1 and reason in (reasons[0] or "")
    # the listener goes on
    again = await xds.post(xds.registry, envelope(f"{ITI}RegistryStoredQuery", FIND_SELF_5))
    assert again.status_code == 200


async def test_broken_mtom_packages_are_faults_naming_the_problem(xds: Xds) -> None:
    content_type, body = mtom(provide(include("missing@example.org")), [("doc1@example.org", CDA)])
    answer = await xds.post(xds.repository, body, content_type)
    assert answer.status_code == 400 and "names no part" in fault_of(answer.content)[1]
    answer = await xds.post(xds.repository, body[: len(body) // 2], content_type)
    assert answer.status_code == 400 and "truncated" in fault_of(answer.content)[1]
    assert rows(xds.rt, documents) == []


async def test_an_upload_over_the_limit_is_stopped_and_the_listener_goes_on(xds: Xds) -> None:
    limit = 1024 * 1024  # the test channel's max_body_bytes

    async def two_gigabytes() -> AsyncIterator[bytes]:
        yield b"--b\r\nContent-Type: application/xop+xml\r\nContent-ID: <r>\r\n\r\n<x/>\r\n"
        yield b"--b\r\nContent-ID: <d>\r\n\r\n"
        chunk = b"\0" * (1 << 20)
        for _ in range(2048):
            yield chunk

    try:
        answer = await xds.client.post(
            xds.repository,
            content=two_gigabytes(),
            headers={"Content-Type": 'multipart/related; boundary=b; type="application/xop+xml"'},
        )
        assert answer.status_code == 413 and str(limit) in fault_of(answer.content)[1]
    except httpx.TransportError:
        pass  # the engine stopped reading and closed the connection while the client still wrote
    await until(lambda: any(m["status"] == "errored" for m in rows(xds.rt, messages)))
    (record,) = rows(xds.rt, messages)
    assert "larger than" in record["error"] and len(record["raw"]) <= 64 * 1024
    leftovers = [p for p in (xds.rt.app.data_dir / "xds" / "documents").glob("*.tmp")]
    assert leftovers == []  # the part being written was abandoned
    await xds.know("SELF-5")
    assert (
        await xds.post(xds.registry, envelope(f"{ITI}RegistryStoredQuery", FIND_SELF_5))
    ).status_code == 200


async def test_atna_records_of_the_four_transactions(xds: Xds) -> None:
    await xds.know("SELF-5")
    await xds.post(xds.repository, provide(base64.b64encode(CDA).decode()))
    await xds.post(xds.registry, envelope(f"{ITI}RegistryStoredQuery", FIND_SELF_5))
    await xds.post(xds.repository, retrieve(xds.unique_id, "1.3.6.1.4.1.21367.2005.3.9999.32"))
    events = {
        e["event_type"].split("^")[0]: e
        for e in rows(xds.rt, audit_events)
        if e["event_type"].startswith("ITI-4") or e["event_type"].startswith("ITI-18")
    }
    assert set(events) == {"ITI-41", "ITI-18", "ITI-43"}
    patient = "SELF-5^^^&1.3.6.1.4.1.21367.2005.3.7&ISO"
    assert events["ITI-41"]["event_id"].startswith("110107") and events["ITI-41"]["patient_ids"] == patient
    submission = [o for o in json.loads(events["ITI-41"]["objects"]) if o["role"] == 20]
    assert submission[0]["id"] == "1.3.6.1.4.1.21367.2005.3.9999.33"
    assert events["ITI-18"]["event_id"].startswith("110112") and events["ITI-18"]["patient_ids"] == patient
    (query,) = [o for o in json.loads(events["ITI-18"]["objects"]) if o["role"] == 24]
    assert b"AdhocQueryRequest" in base64.b64decode(query["query"])
    assert events["ITI-43"]["event_id"].startswith("110106") and events["ITI-43"]["action"] == "R"
    (doc,) = json.loads(events["ITI-43"]["objects"])
    assert doc["id"] == "1.3.6.1.4.1.21367.2005.3.9999.32"


async def test_after_an_a40_merge_the_entries_follow_the_surviving_patient(xds: Xds) -> None:
    await xds.know("SELF-5")
    await xds.know("SELF-6", name="另一^个人", born="19700707")
    await xds.post(xds.repository, provide(base64.b64encode(CDA).decode()))
    survivor = FIND_SELF_5.replace("SELF-5", "SELF-6")
    before = await xds.post(xds.registry, envelope(f"{ITI}RegistryStoredQuery", survivor))
    assert list(body_of(before.content).iter(f"{{{RIM}}}ExtrinsicObject")) == []
    await xds.know("SELF-6", name="另一^个人", born="19700707", merges="SELF-5")  # SELF-5 was SELF-6
    after = await xds.post(xds.registry, envelope(f"{ITI}RegistryStoredQuery", survivor))
    (entry,) = body_of(after.content).iter(f"{{{RIM}}}ExtrinsicObject")
    assert entry.find(f"{{{RIM}}}ExternalIdentifier[@value='1.3.6.1.4.1.21367.2005.3.9999.32']") is not None
    subsumed = await xds.post(xds.registry, envelope(f"{ITI}RegistryStoredQuery", FIND_SELF_5))
    assert [c for c, _ in errors_of(subsumed.content)] == ["XDSUnknownPatientId"]
