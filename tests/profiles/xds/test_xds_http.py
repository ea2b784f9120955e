"""The registry and repository over real HTTP (SQLite and PostgreSQL): the official ITI-Info example
messages replayed as sent, and the answers a Document Source and Consumer would read."""

from __future__ import annotations

import base64
import email.parser
import hashlib
import re

import pytest

from ihe._soap import SOAP12
from ihe.iti18 import QUERY
from tests.ihe.test_soap import EXAMPLES
from tests.profiles.xds.conftest import ITI, Xds, body_of, envelope

RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
RS = "urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0"
XDSB = "urn:ihe:iti:xds-b:2007"
SUCCESS = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
FAILURE = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"
EXAMPLE_DOCUMENT = base64.b64decode("UjBsR09EbGhjZ0dTQUxNQUFBUUNBRU1tQ1p0dU1GUXhEUzhi")
FIND_SELF_5 = f"""<query:AdhocQueryRequest xmlns:query="{QUERY}" xmlns:rim="{RIM}">
  <query:ResponseOption returnComposedObjects="true" returnType="LeafClass"/>
  <rim:AdhocQuery id="urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d">
    <rim:Slot name="$XDSDocumentEntryPatientId"><rim:ValueList>
      <rim:Value>'SELF-5^^^&amp;1.3.6.1.4.1.21367.2005.3.7&amp;ISO'</rim:Value></rim:ValueList></rim:Slot>
    <rim:Slot name="$XDSDocumentEntryStatus"><rim:ValueList>
      <rim:Value>('urn:oasis:names:tc:ebxml-regrep:StatusType:Approved')</rim:Value></rim:ValueList></rim:Slot>
  </rim:AdhocQuery></query:AdhocQueryRequest>"""


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
    (root_headers, root), (doc_headers, document) = mime_parts(got.headers["content-type"], got.content)
    retrieved = body_of(root)
    assert retrieved.find(f"{{{RS}}}RegistryResponse").get("status") == SUCCESS  # type: ignore[union-attr]
    include = retrieved.find(f".//{{{XDSB}}}Document/{{http://www.w3.org/2004/08/xop/include}}Include")
    assert include is not None and include.get("href") == "cid:" + doc_headers["Content-ID"].strip("<>")
    assert document == EXAMPLE_DOCUMENT
    assert retrieved.findtext(f".//{{{XDSB}}}mimeType") == "text/xml"
