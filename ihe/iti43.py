"""ITI-43 Retrieve Document Set: the request read, the response built (ITI TF-2 §3.43; xds.md §1, §5).

A request asks for one or more documents, each by ``RepositoryUniqueId`` and ``DocumentUniqueId``
(and ``HomeCommunityId`` across communities). The response holds an ``rs:RegistryResponse`` and one
``DocumentResponse`` per document found, its content an ``xop:Include`` of an MTOM part; each
document not returned is a RegistryError, located at its uniqueId:

* a repository id that is not this repository: XDSUnknownRepositoryId;
* a document this repository does not hold: XDSDocumentUniqueIdError;
* a stored document that can no longer be read as registered: XDSRepositoryError.

Status: Success when all were found, PartialSuccess (IHE's URN) when some were, Failure when none.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from ihe._ebxml import RS, RegistryError, registry_response
from ihe._mtom import XOP

__all__ = ["XDSB", "DocumentRequest", "Retrieved", "parse_retrieve", "retrieve_response"]

XDSB = "urn:ihe:iti:xds-b:2007"
_B = f"{{{XDSB}}}"


@dataclass(frozen=True)
class DocumentRequest:
    repository_unique_id: str
    document_unique_id: str
    home_community_id: str = ""


@dataclass(frozen=True)
class Retrieved:
    request: DocumentRequest
    mime_type: str
    content_id: str  # the MTOM part holding its bytes


def _text(element: etree._Element, name: str) -> str:
    found = element.find(f"{_B}{name}")
    return (found.text or "").strip() if found is not None else ""


def parse_retrieve(request: etree._Element) -> list[DocumentRequest]:
    """The documents asked for, in order (the schema has already required at least one)."""
    return [
        DocumentRequest(
            _text(item, "RepositoryUniqueId"), _text(item, "DocumentUniqueId"), _text(item, "HomeCommunityId")
        )
        for item in request.iterfind(f"{_B}DocumentRequest")
    ]


def retrieve_response(found: list[Retrieved], errors: list[RegistryError]) -> etree._Element:
    """xdsb:RetrieveDocumentSetResponse; each found document's Document an xop:Include of its part."""
    response = etree.Element(f"{_B}RetrieveDocumentSetResponse", nsmap={None: XDSB, "rs": RS, "xop": XOP})
    response.append(registry_response(errors, partial=bool(found)))
    for item in found:
        doc = etree.SubElement(response, f"{_B}DocumentResponse")
        if item.request.home_community_id:
            etree.SubElement(doc, f"{_B}HomeCommunityId").text = item.request.home_community_id
        etree.SubElement(doc, f"{_B}RepositoryUniqueId").text = item.request.repository_unique_id
        etree.SubElement(doc, f"{_B}DocumentUniqueId").text = item.request.document_unique_id
        etree.SubElement(doc, f"{_B}mimeType").text = item.mime_type
        content = etree.SubElement(doc, f"{_B}Document")
        etree.SubElement(content, f"{{{XOP}}}Include", href=f"cid:{item.content_id}")
    return response
