"""A SOAP request as the message store keeps it: a MIME entity whose documents live in the content store.

An ITI-41 request carries its documents as MTOM parts, often megabytes each. The SOAP source writes
each part to the repository's content store as it arrives (``BlobStore``, addressed by SHA-256)
and keeps, as the message's raw bytes, the request as a MIME entity: its ``Content-Type`` header,
a blank line, and the body, in which each stored part keeps its headers plus::

    X-Hie-Stored: sha256=<hex>; sha1=<hex>; size=<bytes>

and no content. So the message store never holds a document twice (the repository registers the
very file the source wrote), an auditor still sees every part of the request and can fetch each
document by its address, and a repository destination reads the package without reading the
documents. A request that was plain SOAP (``application/soap+xml``, documents inline as base64)
is kept as it came, behind its Content-Type.

The same form carries responses back to the source: ``Content-Type`` (and, for faults, a CGI-style
``Status``) above the body.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesHeaderParser

from lxml import etree

from ihe._mtom import RelatedStream, is_related, join_related
from ihe._soap import SOAP_MEDIA_TYPE, SoapFault, build_envelope, build_fault
from profiles.xds.blobs import StoredBlob

__all__ = [
    "STORED",
    "Package",
    "PartRef",
    "entity",
    "fault_entity",
    "fault_status",
    "open_package",
    "read_entity",
    "recorded_related",
    "soap_entity",
    "stored_related",
]

STORED = "X-Hie-Stored"
_CRLF = b"\r\n"


@dataclass(frozen=True)
class PartRef:
    """An MTOM part the content store keeps."""

    content_id: str
    media_type: str
    blob: StoredBlob


@dataclass
class Package:
    """A stored request: the envelope's bytes, and its other parts by Content-ID."""

    envelope: bytes
    parts: dict[str, PartRef | bytes] = field(default_factory=dict)


def entity(body: bytes, content_type: str, *, status: int | None = None) -> bytes:
    head = f"Content-Type: {content_type}\r\n"
    if status is not None:
        head += f"Status: {status}\r\n"
    return head.encode("latin-1", "replace") + _CRLF + body


# SOAP 1.2 HTTP binding (Part 2 §7.5.1.2 Table 20): a Sender fault is 400, every other one 500
_FAULT_STATUS = {"Sender": 400}


def fault_status(fault: SoapFault) -> int:
    return _FAULT_STATUS.get(fault.code, 500)


def fault_entity(fault: SoapFault, relates_to: str | None) -> bytes:
    return entity(build_fault(fault, relates_to=relates_to), SOAP_MEDIA_TYPE, status=fault_status(fault))


def soap_entity(body: etree._Element, *, action: str, relates_to: str | None, mtom: bool = False) -> bytes:
    """A response: plain SOAP 1.2, or (``mtom``) the envelope as the root of an MTOM package."""
    envelope = build_envelope(body, action=action, relates_to=relates_to)
    if not mtom:
        return entity(envelope, f"{SOAP_MEDIA_TYPE}; charset=UTF-8")
    content_type, package = join_related(envelope, [])
    return entity(package, content_type)


def read_entity(raw: bytes) -> tuple[Message, bytes]:
    """The headers and the body of a stored entity."""
    head, sep, body = raw.partition(_CRLF + _CRLF)
    if not sep:
        raise SoapFault(
            "Receiver", "the stored request is not a MIME entity (no blank line after its headers)"
        )
    return BytesHeaderParser().parsebytes(head + _CRLF + _CRLF), body


def _headers(headers: Message, extra: dict[str, str] | None = None) -> bytes:
    lines = [
        f"{k}: {v}\r\n"
        for k, v in headers.items()
        if k.lower() not in ("content-transfer-encoding", STORED.lower())
    ]
    lines.append("Content-Transfer-Encoding: binary\r\n")
    lines += [f"{k}: {v}\r\n" for k, v in (extra or {}).items()]
    return "".join(lines).encode("utf-8", "replace")


def stored_related(content_type: str, stream: RelatedStream, blobs: dict[str, StoredBlob]) -> bytes:
    """The entity kept for an MTOM request read by ``stream``, each part in ``blobs`` left out."""
    boundary = _boundary(content_type)
    assert stream.root is not None and stream.root_headers is not None
    out = [f"--{boundary}\r\n".encode(), _headers(stream.root_headers), _CRLF, stream.root, _CRLF]
    for part in stream.parts:
        blob = blobs[part.content_id]
        stored = {STORED: f"sha256={blob.address}; sha1={blob.sha1}; size={blob.size}"}
        out += [f"--{boundary}\r\n".encode(), _headers(part.headers, stored), _CRLF, _CRLF]
    out.append(f"--{boundary}--\r\n".encode())
    return entity(b"".join(out), content_type)


def recorded_related(content_type: str, envelope: bytes, parts: list[tuple[str, str, StoredBlob]]) -> bytes:
    """What the store keeps of an MTOM response (ITI-43): the envelope, and each document part by
    its address in the content store, as a request's are kept."""
    boundary = _boundary(content_type)
    out = [f"--{boundary}\r\nContent-Type: application/xop+xml\r\n\r\n".encode(), envelope, _CRLF]
    for cid, media, blob in parts:
        marker = f"sha256={blob.address}; sha1={blob.sha1}; size={blob.size}"
        head = f"Content-Type: {media}\r\nContent-ID: <{cid}>\r\n{STORED}: {marker}\r\n\r\n"
        out += [f"--{boundary}\r\n".encode(), head.encode("utf-8", "replace"), _CRLF]
    out.append(f"--{boundary}--\r\n".encode())
    return entity(b"".join(out), content_type)


def _boundary(content_type: str) -> str:
    message = Message()
    message["Content-Type"] = content_type
    boundary = message.get_param("boundary")
    if not isinstance(boundary, str) or not boundary:
        raise SoapFault("Sender", "the multipart/related Content-Type has no boundary parameter")
    return boundary


def _stored_blob(value: str) -> StoredBlob:
    fields = dict(p.strip().partition("=")[::2] for p in value.split(";"))
    return StoredBlob(fields["sha256"], fields["sha1"], int(fields["size"]))


class _Keep:
    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> None:
        self.data += data


def open_package(raw: bytes) -> Package:
    """The envelope and parts of a stored request (the documents stay in the content store)."""
    headers, body = read_entity(raw)
    content_type = headers.get("Content-Type", "")
    if not is_related(content_type):
        return Package(envelope=body)
    kept: dict[str, _Keep] = {}

    def open_part(cid: str, part_headers: Message) -> _Keep:
        kept[cid] = _Keep()
        return kept[cid]

    stream = RelatedStream(content_type, open_part, root_limit=len(body) + 1)
    stream.feed(body)
    stream.close()
    assert stream.root is not None
    package = Package(envelope=stream.root)
    for part in stream.parts:
        marker = part.headers.get(STORED)
        media = part.headers.get_content_type()
        if marker:
            package.parts[part.content_id] = PartRef(part.content_id, media, _stored_blob(marker))
        else:
            package.parts[part.content_id] = bytes(kept[part.content_id].data)
    return package
