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
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from email.parser import BytesHeaderParser
from typing import Protocol
from urllib.parse import unquote

from lxml import etree

from ihe._soap import SOAP_MEDIA_TYPE, SoapFault

__all__ = [
    "XOP",
    "PartSink",
    "Related",
    "RelatedStream",
    "StreamedPart",
    "include_parts",
    "is_related",
    "join_related",
    "split_related",
]

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


# -- reading a package as it arrives ----------------------------------------------------------------
class PartSink(Protocol):
    """Where the content of a part that is not the root goes as it arrives (a file, for a document)."""

    def write(self, data: bytes) -> None: ...


@dataclass
class StreamedPart:
    content_id: str
    headers: Message
    sink: PartSink


class _Base64Sink:
    """Decodes a base64 part (Content-Transfer-Encoding: base64) on its way to the real sink."""

    def __init__(self, sink: PartSink, cid: str) -> None:
        self.sink = sink
        self.cid = cid
        self._rest = b""

    def write(self, data: bytes) -> None:
        data = self._rest + b"".join(data.split())
        cut = len(data) - len(data) % 4
        self._rest = data[cut:]
        if cut:
            self._decode(data[:cut])

    def close(self) -> None:
        if self._rest:
            self._decode(self._rest)

    def _decode(self, data: bytes) -> None:
        try:
            self.sink.write(base64.b64decode(data, validate=True))
        except ValueError:
            raise SoapFault("Sender", f"MTOM part <{self.cid}> is not valid base64") from None


class RelatedStream:
    """A multipart/related body parsed as its chunks arrive (``feed``), never held whole in memory.

    The root part (the one ``start`` names, else the first) is kept in memory up to ``root_limit``
    bytes; every other part's content goes to the sink ``open_part(content_id, headers)`` returns,
    so a document is written to disk as it is read. ``close`` checks the package was complete.
    Every problem is a SoapFault (Sender), as ``split_related`` reports them.
    """

    _HEADERS_LIMIT = 16 * 1024

    def __init__(
        self,
        content_type: str,
        open_part: Callable[[str, Message], PartSink],
        *,
        root_limit: int,
    ) -> None:
        media, params = _params(content_type)
        if media != "multipart/related":
            raise SoapFault("Sender", f"Content-Type {media} is not multipart/related")
        boundary = params.get("boundary")
        if not boundary:
            raise SoapFault("Sender", "the multipart/related Content-Type has no boundary parameter")
        self._delimiter = _CRLF + b"--" + boundary.encode("ascii", "replace")
        self._start = _content_id(params["start"]) if params.get("start") else None
        self._open_part = open_part
        self._root_limit = root_limit
        self._buffer = bytearray(_CRLF)  # the first delimiter may open the body itself
        self._state = "preamble"
        self._count = 0
        self._current: PartSink | bytearray | None = None
        self._decoder: _Base64Sink | None = None
        self.root: bytes | None = None
        self.root_headers: Message | None = None
        self.parts: list[StreamedPart] = []

    def feed(self, chunk: bytes) -> None:
        self._buffer += chunk
        while self._step():
            pass

    def close(self) -> None:
        if self._state == "preamble":
            raise SoapFault("Sender", "the MTOM package holds no part (no boundary line found in the body)")
        if self._state != "epilogue":
            raise SoapFault("Sender", "the MTOM package is truncated: its closing boundary is missing")
        if self._count == 0:
            raise SoapFault("Sender", "the MTOM package holds no part between its boundaries")
        if self.root is None or self.root_headers is None:
            raise SoapFault("Sender", f"the MTOM package has no root part (start=<{self._start}>)")
        root_type = self.root_headers.get("Content-Type", "")
        root_media = _params(root_type)[0] if root_type else ""
        if root_media not in (XOP_MEDIA_TYPE, SOAP_MEDIA_TYPE, "text/xml", "application/xml"):
            raise SoapFault(
                "Sender", f"the MTOM root part is {root_media or 'untyped'}, not application/xop+xml"
            )

    # -- the state machine: each step consumes what it can and says whether to go on --------------
    def _step(self) -> bool:
        buf = self._buffer
        if self._state == "preamble":
            at = buf.find(self._delimiter)
            if at < 0:
                del buf[: max(0, len(buf) - len(self._delimiter))]
                return False
            del buf[: at + len(self._delimiter)]
            self._state = "delimiter"
            return True
        if self._state == "delimiter":
            if len(buf) < 2:
                return False
            if buf[:2] == b"--":
                self._state = "epilogue"
                return True
            end = buf.find(_CRLF)
            if end < 0:
                if len(buf) > 1024:
                    raise SoapFault("Sender", "an MTOM boundary line is not followed by a line end")
                return False
            if buf[:end].strip(b" \t"):
                raise SoapFault("Sender", "an MTOM boundary line has text after the boundary")
            del buf[: end + 2]
            self._state = "headers"
            return True
        if self._state == "headers":
            end = buf.find(_CRLF + _CRLF)
            if buf.startswith(_CRLF):  # a part without headers
                end = -2
            if end < 0 and not buf.startswith(_CRLF):
                if len(buf) > self._HEADERS_LIMIT:
                    raise SoapFault("Sender", f"MTOM part {self._count + 1} has headers over 16 KB")
                return False
            head = bytes(buf[: end + 2]) if end >= 0 else b""
            del buf[: end + 4]
            self._begin(BytesHeaderParser().parsebytes(head + _CRLF))
            self._state = "body"
            return True
        if self._state == "body":
            at = buf.find(self._delimiter)
            if at < 0:
                keep = len(self._delimiter) - 1
                if len(buf) > keep:
                    self._write(bytes(buf[: len(buf) - keep]))
                    del buf[: len(buf) - keep]
                return False
            self._write(bytes(buf[:at]))
            del buf[: at + len(self._delimiter)]
            self._end()
            self._state = "delimiter"
            return True
        buf.clear()  # epilogue: ignored (RFC 2046 §5.1.1)
        return False

    def _begin(self, headers: Message) -> None:
        self._count += 1
        cid = _content_id(headers.get("Content-ID", ""))
        encoding = (headers.get("Content-Transfer-Encoding") or "binary").strip().lower()
        if encoding not in ("binary", "8bit", "7bit", "base64"):
            raise SoapFault(
                "Sender",
                f"MTOM part {cid or self._count}: Content-Transfer-Encoding {encoding} is not supported",
            )
        is_root = (cid == self._start) if self._start is not None else self.root_headers is None
        if is_root and self.root_headers is None:
            self.root_headers = headers
            self._current = bytearray()
        else:
            if any(p.content_id == cid for p in self.parts):
                raise SoapFault("Sender", f"two MTOM parts have Content-ID <{cid}>")
            sink = self._open_part(cid, headers)
            self.parts.append(StreamedPart(cid, headers, sink))
            self._current = sink
        self._decoder = _Base64Sink(self._sinkless(), cid) if encoding == "base64" else None

    def _sinkless(self) -> PartSink:
        current = self._current
        assert current is not None
        if isinstance(current, bytearray):
            return _Appender(current)
        return current

    def _write(self, data: bytes) -> None:
        if not data:
            return
        if self._decoder is not None:
            self._decoder.write(data)
        elif isinstance(self._current, bytearray):
            self._current += data
        elif self._current is not None:
            self._current.write(data)
        if isinstance(self._current, bytearray) and len(self._current) > self._root_limit:
            raise SoapFault("Sender", f"the SOAP envelope is larger than {self._root_limit} bytes")

    def _end(self) -> None:
        if self._decoder is not None:
            self._decoder.close()
        if isinstance(self._current, bytearray):
            self.root = bytes(self._current)
        self._current = self._decoder = None


class _Appender:
    def __init__(self, target: bytearray) -> None:
        self.target = target

    def write(self, data: bytes) -> None:
        self.target += data
