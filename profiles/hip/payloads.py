"""What a document-register message carries: the CDA document, base64-encoded, and what the message
says about it (china-hie.md §3). Both generations are read:

* ``RCMR_IN000002UV02`` (WS/T 846, ``services/DocumentRegister.xsd``): under
  ``controlActProcess/subject/clinicalDocument``, the document's type ``code/@code`` (C00NN in
  ``2.16.156.10011.2.5.1.23``), its id ``id/item/@extension`` (root ``2.16.156.10011.2.5.1.24``) and
  the document itself in ``storageCode/originalText/@value``;
* ``ProvideAndRegisterDocumentSetRequest`` of the 2017-era interface (a China-specific XML, not IHE
  ebRIM; any namespace): ``Document/Content`` (base64) with ``Document/@id``.

A payload that is not what its service expects is refused with the reason (``PayloadError``): the
wrong root element, no document, text that is not base64 (a CDA wrapped in the wrong encoding).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from lxml import etree

__all__ = ["DocumentUpload", "PayloadError", "read_document_upload"]

_V = "{urn:hl7-org:v3}"
_DOCUMENT = f"{_V}controlActProcess/{_V}subject/{_V}clinicalDocument"
_SPACE = re.compile(rb"\s+")


class PayloadError(Exception):
    pass


@dataclass(frozen=True)
class DocumentUpload:
    generation: str  # the root element: RCMR_IN000002UV02 or ProvideAndRegisterDocumentSetRequest
    document: bytes  # the CDA, decoded
    document_code: str  # C00NN as the message states it ("" when it does not)
    document_id: str  # the message's id for the document ("" when none)


def _decode(text: str, where: str) -> bytes:
    data = _SPACE.sub(b"", text.encode("ascii", "replace"))
    if not data:
        raise PayloadError(f"{where} is empty: the message carries no document")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise PayloadError(
            f"{where} is not base64 ({exc}): the CDA document must be base64-encoded"
        ) from None


def read_document_upload(root: etree._Element) -> DocumentUpload:
    name = etree.QName(root).localname
    if name == "RCMR_IN000002UV02":
        document = root.find(_DOCUMENT)
        if document is None:
            raise PayloadError("RCMR_IN000002UV02 has no controlActProcess/subject/clinicalDocument")
        stored = document.find(f"{_V}storageCode/{_V}originalText")
        if stored is None:
            raise PayloadError(
                "clinicalDocument has no storageCode/originalText: the message carries no document"
            )
        code = document.find(f"{_V}code")
        ident = document.find(f"{_V}id/{_V}item")
        return DocumentUpload(
            name,
            _decode(stored.get("value", ""), "storageCode/originalText/@value"),
            (code.get("code") or "").strip() if code is not None else "",
            (ident.get("extension") or "").strip() if ident is not None else "",
        )
    if name == "ProvideAndRegisterDocumentSetRequest":
        content = next(
            (e for e in root.iter() if isinstance(e.tag, str) and etree.QName(e).localname == "Content"), None
        )
        if content is None:
            raise PayloadError("ProvideAndRegisterDocumentSetRequest has no Document/Content: no document")
        holder = content.getparent()
        return DocumentUpload(
            name,
            _decode(content.text or "", "Document/Content"),
            "",
            (holder.get("id") or "").strip() if holder is not None else "",
        )
    raise PayloadError(
        "a document register message is RCMR_IN000002UV02 (or the older "
        f"ProvideAndRegisterDocumentSetRequest), not {name}"
    )
