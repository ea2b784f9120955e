"""The SOAP 1.2 source (``soap://host:port/path``): IHE web services on the engine's HTTP listener.

A channel per endpoint, as IHE names them (the registry: ITI-42 and ITI-18; the repository:
ITI-41 and ITI-43)::

    source:
      url: soap://127.0.0.1:8089/xds/repository
      wsdl: repository
    ack: after_delivery
    ack_from: repository
    destinations:
      - {id: repository, url: "xds-repository:"}

What it does before the channel sees the request:

* **Content-Type**: ``application/soap+xml`` (SOAP 1.2) or an MTOM package
  (``multipart/related; type="application/xop+xml"``); anything else is answered 415 with a
  Sender fault. ``text/xml`` is read too: a SOAP 1.1 envelope in it is a VersionMismatch fault.
* **MTOM is read here, with lxml and our own streaming multipart reader, not with spyne**: spyne's
  MIME support (``spyne.protocol.soap.mime``, documented there as "not well tested and reportedly
  not working") collapses a package by reading the whole request into a string and inlining each
  part as base64 into the envelope, so a 1 GB document would be held in memory several times over,
  and it does not URL-decode ``cid:`` references the way IHE senders write them. IHE senders'
  packages vary (URL-encoded ``cid:`` references, WCF's ``uuid:`` boundaries, inline base64 inside
  MTOM, ITI TF-2 Appendix V). Each part that is not the envelope goes to the repository's content
  store as it arrives, hashed on the way, so a document is never held in memory; the envelope is
  kept in memory up to ``max_envelope_bytes``.
* **Limits**: a request over ``max_body_bytes`` is stopped where it crosses the limit and answered
  413 with a Sender fault; its first bytes are kept as an errored record for the auditors.
* **Envelope errors** (not XML, a DTD, SOAP 1.1, no wsa:Action, a mustUnderstand header we do not
  process, a broken package) are SOAP faults (``ihe._soap``), answered at once and kept as errored
  records; they never reach the channel.

The channel stores the request as a MIME entity (``profiles.xds.package``: the documents stay in
the content store, once) with the WS-Addressing MessageID as control id and the action as message
type, and its answering destination's response, a MIME entity too, goes back as it is.

``GET <path>?wsdl`` publishes the service's WSDL (``xsd/wsdl/``) with its endpoint address and its
schema locations pointing at this endpoint's ``<path>/xsd/...``, where the vendored schemas are
served; the W3C ``xml.xsd`` that ebRIM imports from www.w3.org is served from the local copy, so a
client on a private hospital network can load the WSDL without reaching the internet.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from email.message import Message as MimeHeaders
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import SplitResult

from lxml import etree
from pydantic import Field
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from engine.connectors.base import Options
from engine.connectors.http import HttpSource
from engine.hl7v2.peek import Header
from engine.message import ContentType, OutcomeStatus
from engine.services import Services
from ihe._mtom import RelatedStream
from ihe._soap import SOAP_MEDIA_TYPE, SoapFault, build_fault, parse_envelope
from ihe._xsd import XSD_DIR
from profiles.xds.blobs import BlobStore, BlobWriter, StoredBlob
from profiles.xds.config import XdsConfig
from profiles.xds.package import entity, fault_status, read_entity, stored_related

if TYPE_CHECKING:
    from engine.config import AppConfig
    from engine.connectors.base import Receiver

__all__ = ["SoapSource", "SoapSourceOptions"]

log = logging.getLogger(__name__)

_WSDL = {
    "registry": XSD_DIR / "wsdl" / "XDS.b_DocumentRegistry.wsdl",
    "repository": XSD_DIR / "wsdl" / "XDS.b_DocumentRepository.wsdl",
}
_W3C_XML = "http://www.w3.org/2001/xml.xsd"
_XSD = "{http://www.w3.org/2001/XMLSchema}"
_SOAP12_WSDL = "{http://schemas.xmlsoap.org/wsdl/soap12/}"
_KEPT_OF_REFUSED = 64 * 1024  # bytes of a refused request kept for the auditors


class SoapSourceOptions(Options):
    wsdl: Literal["registry", "repository"] | None = Field(
        None, description="the WSDL published at <path>?wsdl (with the schemas under <path>/xsd/)"
    )
    max_body_bytes: int = Field(
        1024 * 1024 * 1024,
        ge=1024,
        description="larger requests are stopped and answered 413 (documents are streamed to disk)",
    )
    max_envelope_bytes: int = Field(
        32 * 1024 * 1024, ge=1024, description="the SOAP envelope (and inline base64 documents) in memory"
    )
    tls: str | None = Field(None, description="name of a tls: entry of config.yaml: serve HTTPS")


class _TooLarge(Exception):
    pass


class _Reading:
    """One request being read: its first bytes (kept if it is refused) and its documents' writers."""

    def __init__(self) -> None:
        self.first = bytearray()
        self.writers: list[BlobWriter] = []

    def keep(self, chunk: bytes) -> None:
        if len(self.first) < _KEPT_OF_REFUSED:
            self.first += chunk[: _KEPT_OF_REFUSED - len(self.first)]

    def abandon(self) -> None:
        for w in self.writers:
            w.abort()


class SoapSource(HttpSource):
    """SOAP 1.2 requests (plain or MTOM) POSTed to one path; WSDL and schemas by GET."""

    scheme = "soap"
    Options = SoapSourceOptions  # type: ignore[assignment]
    options: SoapSourceOptions  # type: ignore[assignment]

    def __init__(
        self, url: SplitResult, options: Any, receiver: Receiver, app: AppConfig, tls: ssl.SSLContext | None
    ) -> None:
        super().__init__(url, options, receiver, app, tls)
        config = app.section("xds", XdsConfig)
        self.blobs = BlobStore(app.data_dir / config.documents_dir)

    def attach(self, services: Services) -> None:
        pass

    def routes(self) -> list[BaseRoute]:
        return [
            Route(self.path, self.handle, methods=["POST"]),
            Route(self.path, self.describe_service, methods=["GET"]),
            Route(self.path.rstrip("/") + "/xsd/{name:path}", self.schema, methods=["GET"]),
        ]

    # -- requests -----------------------------------------------------------------------------
    async def handle(self, request: Request) -> Response:
        peer = f"{request.client.host}:{request.client.port}" if request.client else "unknown"
        content_type = request.headers.get("content-type", "")
        media = content_type.split(";", 1)[0].strip().lower()
        reading = _Reading()
        try:
            if media == "multipart/related":
                raw, envelope = await self._read_related(request, content_type, reading)
            elif media in (SOAP_MEDIA_TYPE, "text/xml", "application/xml"):
                envelope = await self._read_plain(request, reading)
                raw = entity(envelope, content_type)
            else:
                await _read_some(request, reading)
                reason = (
                    f"Content-Type {media or '(none)'} is not SOAP 1.2: send application/soap+xml, "
                    'or an MTOM package (multipart/related; type="application/xop+xml")'
                )
                return await self._refuse(reading, peer, SoapFault("Sender", reason), status=415)
            soap = parse_envelope(envelope)
        except _TooLarge:
            limit = self.options.max_body_bytes
            fault = SoapFault("Sender", f"the request is larger than {limit} bytes (max_body_bytes)")
            return await self._refuse(reading, peer, fault, status=413)
        except SoapFault as fault:
            return await self._refuse(reading, peer, fault)
        except ClientDisconnect:
            reading.abandon()
            return Response(status_code=400)
        header = Header(
            "|",
            "^",
            "~",
            "&",
            control_id=(soap.message_id or "")[:64],
            message_code=soap.action.rsplit(":", 1)[-1][:32],
        )
        try:
            outcome, _ = await self.receiver.receive(raw, peer, content_type=ContentType.MIME, header=header)
        except Exception as exc:
            log.warning("soap source %s: request from %s not taken: %s", self.path, peer, type(exc).__name__)
            busy = SoapFault("Receiver", "the engine cannot take requests now; retry later")
            return _fault_response(busy, soap.message_id, status=503)
        if outcome.response is not None:
            headers, body = read_entity(outcome.response)
            status = int(headers.get("Status", "200"))
            return Response(
                body, status_code=status, headers={"Content-Type": headers.get("Content-Type", "")}
            )
        if outcome.status in (OutcomeStatus.ACCEPTED, OutcomeStatus.FILTERED):
            return Response(status_code=202)  # stored, nobody answers (ack: after_store): one-way
        text = outcome.error.text if outcome.error is not None else "the request was not processed"
        code = "Sender" if outcome.status is OutcomeStatus.REJECTED else "Receiver"
        return _fault_response(SoapFault(code, text), soap.message_id)

    async def _read_plain(self, request: Request, reading: _Reading) -> bytes:
        limit = min(self.options.max_envelope_bytes, self.options.max_body_bytes)
        buf = bytearray()
        async for chunk in request.stream():
            buf += chunk
            reading.keep(chunk)
            if len(buf) > limit:
                raise _TooLarge()
        return bytes(buf)

    async def _read_related(
        self, request: Request, content_type: str, reading: _Reading
    ) -> tuple[bytes, bytes]:
        def open_part(cid: str, headers: MimeHeaders) -> BlobWriter:
            writer = self.blobs.writer()
            reading.writers.append(writer)
            return writer

        stream = RelatedStream(content_type, open_part, root_limit=self.options.max_envelope_bytes)
        limit = self.options.max_body_bytes
        total = 0
        async for chunk in request.stream():
            total += len(chunk)
            reading.keep(chunk)
            if total > limit:
                raise _TooLarge()
            stream.feed(chunk)
        stream.close()
        # the documents durable before the request is stored: its answer may say they are registered
        stored: list[StoredBlob] = await asyncio.gather(
            *(asyncio.to_thread(w.commit) for w in reading.writers)
        )
        blobs = {part.content_id: blob for part, blob in zip(stream.parts, stored, strict=True)}
        assert stream.root is not None
        return stored_related(content_type, stream, blobs), stream.root

    async def _refuse(
        self, reading: _Reading, peer: str, fault: SoapFault, *, status: int | None = None
    ) -> Response:
        """A request that never became a message: kept as an errored record, answered with a fault."""
        reading.abandon()
        reason = f"SOAP fault {fault.code}: {fault.reason}"
        try:
            await self.receiver.reject_unframed(bytes(reading.first), peer, reason)
        except Exception as exc:
            log.warning("soap source %s: refused request from %s not recorded: %s", self.path, peer, exc)
        return _fault_response(fault, None, status=status)

    # -- publication --------------------------------------------------------------------------
    async def describe_service(self, request: Request) -> Response:
        if "wsdl" not in {k.lower() for k in request.query_params}:
            return PlainTextResponse(
                f"SOAP 1.2 endpoint {self.path}; its WSDL is at {self.path}?wsdl\n"
                if self.options.wsdl
                else f"SOAP 1.2 endpoint {self.path}\n"
            )
        if self.options.wsdl is None:
            return PlainTextResponse("this endpoint publishes no WSDL\n", status_code=404)
        base = f"{request.url.scheme}://{request.url.netloc}"
        tree = etree.parse(str(_WSDL[self.options.wsdl]), parser=_TRUSTED)
        for node in tree.iter(f"{_XSD}import", f"{_XSD}include"):
            location = node.get("schemaLocation", "")
            if location.startswith("../"):
                node.set("schemaLocation", f"{self._xsd_prefix()}{location[3:]}")
        for address in tree.iter(f"{_SOAP12_WSDL}address"):
            address.set("location", f"{base}{self.path}")
        return Response(
            etree.tostring(tree, xml_declaration=True, encoding="UTF-8"), media_type="text/xml; charset=utf-8"
        )

    async def schema(self, request: Request) -> Response:
        """A vendored schema, its imports pointed at this endpoint (the W3C one at our copy)."""
        name = str(request.path_params["name"])
        path = (XSD_DIR / name).resolve()
        if not name.endswith(".xsd") or not path.is_relative_to(XSD_DIR) or not path.is_file():
            return PlainTextResponse("no such schema\n", status_code=404)
        tree = etree.parse(str(path), parser=_TRUSTED)
        for node in tree.iter(f"{_XSD}import", f"{_XSD}include"):
            if node.get("schemaLocation") == _W3C_XML:
                node.set("schemaLocation", f"{self._xsd_prefix()}w3c/xml.xsd")
        return Response(
            etree.tostring(tree, xml_declaration=True, encoding="UTF-8"), media_type="text/xml; charset=utf-8"
        )

    def _xsd_prefix(self) -> str:
        return self.path.rstrip("/") + "/xsd/"


# our own files, not input: parsed without network, like every schema
_TRUSTED = etree.XMLParser(resolve_entities=False, no_network=True)


def _fault_response(fault: SoapFault, relates_to: str | None, *, status: int | None = None) -> Response:
    return Response(
        build_fault(fault, relates_to=relates_to),
        status_code=status if status is not None else fault_status(fault),
        media_type=SOAP_MEDIA_TYPE,
    )


async def _read_some(request: Request, reading: _Reading) -> None:
    """The first bytes of a request refused for what it is; the rest is left unread."""
    with contextlib.suppress(ClientDisconnect):
        async for chunk in request.stream():
            reading.keep(chunk)
            if len(reading.first) >= _KEPT_OF_REFUSED:
                break
