"""MTOM/XOP packaging of SOAP 1.2 messages (W3C XOP 1.0, SOAP MTOM; ITI TF-2 App. V, xds.md §6).

ITI-41 requests and ITI-41/43 responses travel as ``multipart/related; type="application/xop+xml"``:
a root part holding the SOAP envelope, in which each document's content is an
``<xop:Include href="cid:..."/>`` pointing at a binary part by its ``Content-ID``.

``split_related`` takes a request body apart by its Content-Type (boundary, ``start``), and
``include_parts`` resolves the Includes of an envelope: each ``cid:`` reference URL-decoded before
it is matched (``cid:doc1%40example.org`` is part ``<doc1@example.org>``, RFC 2392), the Include
removed from its element, and the part's bytes returned beside the element, never base64-encoded
into the tree (a schema accepts the emptied element: base64Binary may be empty). Content sent
inline as base64 inside an MTOM package, as some senders do, is read as it is. Every problem is a
``SoapFault`` (Sender) naming it: no boundary, no root part, a truncated package, a reference to
a part that is not there.

``join_related`` packages a response: the envelope as root part and each document as a binary
part.
"""

from __future__ import annotations

import base64
import re
import uuid
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesHeaderParser
from urllib.parse import unquote

from lxml import etree

from ihe._soap import SOAP_MEDIA_TYPE, SoapFault

__all__ = ["XOP", "Related", "include_parts", "is_related", "join_related", "split_related"]

XOP = "http://www.w3.org/2004/08/xop/include"
XOP_MEDIA_TYPE = "application/xop+xml"
_CRLF = b"\r\n"


@dataclass
class Related:
    """A multipart/related package: the root part's bytes, and the other parts by Content-ID."""

    root: bytes
    parts: dict[str, bytes] = field(default_factory=dict)
    root_type: str = ""  # the root part's Content-Type


def _params(content_type: str) -> tuple[str, dict[str, str]]:
    message = Message()
    message["Content-Type"] = content_type
    media = message.get_content_type()
    params = {k.lower(): v for k, v in (message.get_params() or [])[1:]}
    return media, params


def is_related(content_type: str) -> bool:
    return _params(content_type)[0] == "multipart/related"


def _content_id(value: str) -> str:
    return unquote(value.strip()).strip("<>")


def split_related(content_type: str, body: bytes) -> Related:
    """The parts of a multipart/related body; SoapFault (Sender) for a malformed package."""
    media, params = _params(content_type)
    if media != "multipart/related":
        raise SoapFault("Sender", f"Content-Type {media} is not multipart/related")
    boundary = params.get("boundary")
    if not boundary:
        raise SoapFault("Sender", "the multipart/related Content-Type has no boundary parameter")
    # a delimiter is CRLF "--" boundary (RFC 2046 §5.1.1): the first may open the body itself
    delimiter = _CRLF + b"--" + boundary.encode("ascii", "replace")
    chunks = (_CRLF + body).split(delimiter)
    if len(chunks) < 2:
        raise SoapFault("Sender", "the MTOM package holds no part (no boundary line found in the body)")
    if not chunks[-1].startswith(b"--"):
        raise SoapFault("Sender", "the MTOM package is truncated: its closing boundary is missing")
    if len(chunks) < 3:
        raise SoapFault("Sender", "the MTOM package holds no part between its boundaries")
    start = _content_id(params["start"]) if params.get("start") else None
    related: Related | None = None
    parts: dict[str, bytes] = {}
    headers_parser = BytesHeaderParser()
    for n, chunk in enumerate(chunks[1:-1], 1):
        chunk = chunk.lstrip(b" \t")  # transport padding after the boundary
        if chunk.startswith(_CRLF):
            chunk = chunk[2:]
        head, sep, content = chunk.partition(_CRLF + _CRLF)
        if not sep:
            raise SoapFault("Sender", f"MTOM part {n} has no blank line between its headers and content")
        headers = headers_parser.parsebytes(head + _CRLF + _CRLF)
        cid = _content_id(headers.get("Content-ID", ""))
        encoding = (headers.get("Content-Transfer-Encoding") or "binary").strip().lower()
        if encoding == "base64":
            try:
                content = base64.b64decode(content, validate=False)
            except ValueError:
                raise SoapFault("Sender", f"MTOM part {cid or n} is not valid base64") from None
        elif encoding not in ("binary", "8bit", "7bit"):
            raise SoapFault(
                "Sender", f"MTOM part {cid or n}: Content-Transfer-Encoding {encoding} is not supported"
            )
        is_root = cid == start if start is not None else related is None
        if is_root and related is None:
            related = Related(root=content, root_type=headers.get("Content-Type", ""))
        else:
            parts[cid] = content
    if related is None:
        raise SoapFault("Sender", f"the MTOM package has no root part (start={params.get('start')!r})")
    root_media = _params(related.root_type)[0] if related.root_type else ""
    if root_media not in (XOP_MEDIA_TYPE, SOAP_MEDIA_TYPE, "text/xml", "application/xml"):
        raise SoapFault("Sender", f"the MTOM root part is {root_media or 'untyped'}, not application/xop+xml")
    related.parts = parts
    return related


def include_parts(root: etree._Element, parts: dict[str, bytes]) -> dict[etree._Element, bytes]:
    """Resolve every ``xop:Include`` under ``root``: the element that held it, with the part's bytes.

    The Include is removed, so the element validates as (empty) base64Binary. SoapFault (Sender)
    for an Include without a ``cid:`` href or naming a part that is not in the package.
    """
    found: dict[etree._Element, bytes] = {}
    for include in root.iter(f"{{{XOP}}}Include"):
        href = include.get("href", "")
        if not href.startswith("cid:"):
            raise SoapFault("Sender", f"xop:Include href {href!r} is not a cid: reference")
        cid = _content_id(href[4:])
        if cid not in parts:
            raise SoapFault("Sender", f"xop:Include refers to MTOM part <{cid}>, which is not in the package")
        holder = include.getparent()
        assert holder is not None
        found[holder] = parts[cid]
    for holder in found:
        for include in holder.findall(f"{{{XOP}}}Include"):
            holder.remove(include)
    return found


_MEDIA_UNSAFE = re.compile(r"[^0-9A-Za-z'()+_,\-./:=?]")


def join_related(envelope: bytes, parts: list[tuple[str, str, bytes]]) -> tuple[str, bytes]:
    """An MTOM response: (its Content-Type header, its body). ``parts`` = (Content-ID, media type,
    bytes); the envelope's xop:Include elements must name them as ``cid:<Content-ID>``."""
    boundary = f"MIMEBoundary_{uuid.uuid4().hex}"
    root_id = f"root.message@{uuid.uuid4().hex}.hie"
    out = [
        f"--{boundary}\r\n".encode(),
        f'Content-Type: {XOP_MEDIA_TYPE}; charset=UTF-8; type="{SOAP_MEDIA_TYPE}"\r\n'.encode(),
        b"Content-Transfer-Encoding: binary\r\n",
        f"Content-ID: <{root_id}>\r\n\r\n".encode(),
        envelope,
        b"\r\n",
    ]
    for cid, media, content in parts:
        out += [
            f"--{boundary}\r\n".encode(),
            f"Content-Type: {_MEDIA_UNSAFE.sub('', media) or 'application/octet-stream'}\r\n".encode(),
            b"Content-Transfer-Encoding: binary\r\n",
            f"Content-ID: <{cid}>\r\n\r\n".encode(),
            content,
            b"\r\n",
        ]
    out.append(f"--{boundary}--\r\n".encode())
    content_type = (
        f'multipart/related; type="{XOP_MEDIA_TYPE}"; boundary="{boundary}"; '
        f'start="<{root_id}>"; start-info="{SOAP_MEDIA_TYPE}"'
    )
    return content_type, b"".join(out)
