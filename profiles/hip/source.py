"""The ``hip://`` source: the national ``HIPMessageServer`` SOAP service on the engine's HTTP listener
(china-hie.md §2)::

    source:
      url: hip://127.0.0.1:8089/hip        # shares the port with the http:// and soap:// sources
    ack: after_delivery
    ack_from: platform
    destinations:
      - {id: platform, url: "hip-service:"}

A POST is a call: read up to ``max_body_bytes``, its envelope refused with a SOAP fault if it is not
one (not XML, a DTD, not SOAP, not this operation: ``profiles.hip.service``), otherwise stored as it
arrived (control id: the V3 message's id; message type: the action) and answered with
``HIPMessageServerResult``: the channel's answer (the ``MCCI_IN000002UV01`` the destination wrote),
in the SOAP version of the request. A GET with ``?wsdl`` publishes the WSDL spyne writes, its
address this endpoint as the client reached it.

A request refused before it became a message (a fault) is still kept, its first bytes as an errored
record, for the auditors.
"""

from __future__ import annotations

import io
import logging

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
from ihe._soap import SOAP12, SoapFault, build_fault
from profiles.hip.config import HipConfig
from profiles.hip.service import HipCall, HipCodec, codec_for, wsdl
from profiles.hip.v3 import acknowledgement

__all__ = ["HipSource", "HipSourceOptions"]

log = logging.getLogger(__name__)

_KEPT_OF_REFUSED = 64 * 1024
_MEDIA = {SOAP12: "application/soap+xml; charset=utf-8"}
_SOAP11_MEDIA = "text/xml; charset=utf-8"


class HipSourceOptions(Options):
    max_body_bytes: int = Field(
        128 * 1024 * 1024, ge=1024, description="larger requests are stopped and answered 413"
    )
    tls: str | None = Field(None, description="name of a tls: entry of config.yaml: serve HTTPS")


class _TooLarge(Exception):
    def __init__(self, first: bytes) -> None:
        self.first = first


class HipSource(HttpSource):
    scheme = "hip"
    Options = HipSourceOptions  # type: ignore[assignment]
    options: HipSourceOptions  # type: ignore[assignment]

    def attach(self, services: Services) -> None:
        pass

    def routes(self) -> list[BaseRoute]:
        return [
            Route(self.path, self.handle, methods=["POST"]),
            Route(self.path, self.publish, methods=["GET"]),
        ]

    async def handle(self, request: Request) -> Response:
        peer = f"{request.client.host}:{request.client.port}" if request.client else "unknown"
        try:
            body = await self._read(request)
        except _TooLarge as exc:
            fault = SoapFault("Sender", f"the request is larger than {self.options.max_body_bytes} bytes")
            return await self._refuse(exc.first, peer, fault, None, status=413)
        except ClientDisconnect:
            return Response(status_code=400)
        codec: HipCodec | None = None
        try:
            codec = codec_for(body)
            call = codec.decode(body)
        except SoapFault as fault:
            return await self._refuse(body[:_KEPT_OF_REFUSED], peer, fault, codec)
        header = Header(
            "|", "^", "~", "&", control_id=_message_id(call.message)[:64], message_code=call.action[:32]
        )
        try:
            outcome, _ = await self.receiver.receive(body, peer, content_type=ContentType.XML, header=header)
        except Exception as exc:
            log.warning("hip source %s: request from %s not taken: %s", self.path, peer, type(exc).__name__)
            return _fault(
                codec, SoapFault("Receiver", "the platform cannot take requests now; retry later"), 503
            )
        if outcome.response is not None:
            return self._answer(codec, call, outcome.response.decode("utf-8"))
        config = self.app.section("hip", HipConfig)
        if outcome.status in (OutcomeStatus.ACCEPTED, OutcomeStatus.FILTERED):  # ack: after_store
            text = acknowledgement(None, "AA", ["accepted for processing"], device_id=config.device_id)
        else:
            reason = outcome.error.text if outcome.error is not None else "the message was not processed"
            text = acknowledgement(None, "AE", [reason], device_id=config.device_id)
        return self._answer(codec, call, text)

    def _answer(self, codec: HipCodec, call: HipCall, text: str) -> Response:
        return Response(codec.answer(call, text), media_type=_MEDIA.get(codec.version, _SOAP11_MEDIA))

    async def _read(self, request: Request) -> bytes:
        limit = self.options.max_body_bytes
        buf = bytearray()
        async for chunk in request.stream():
            buf += chunk
            if len(buf) > limit:
                raise _TooLarge(bytes(buf[:_KEPT_OF_REFUSED]))
        return bytes(buf)

    async def _refuse(
        self, first: bytes, peer: str, fault: SoapFault, codec: HipCodec | None, *, status: int = 400
    ) -> Response:
        try:
            await self.receiver.reject_unframed(first, peer, f"SOAP fault {fault.code}: {fault.reason}")
        except Exception as exc:
            log.warning("hip source %s: refused request from %s not recorded: %s", self.path, peer, exc)
        return _fault(codec, fault, status)

    async def publish(self, request: Request) -> Response:
        if "wsdl" not in {k.lower() for k in request.query_params}:
            return PlainTextResponse(f"HIPMessageServer (SOAP 1.2, 1.1): the WSDL is at {self.path}?wsdl\n")
        address = f"{request.url.scheme}://{request.url.netloc}{self.path}"
        return Response(wsdl(address), media_type="text/xml; charset=utf-8")


def _fault(codec: HipCodec | None, fault: SoapFault, status: int) -> Response:
    """A fault in the request's SOAP version when it had one (spyne writes it), else SOAP 1.2's."""
    if codec is None:
        return Response(build_fault(fault), status_code=status, media_type=_MEDIA[SOAP12])
    return Response(
        codec.fault(fault), status_code=status, media_type=_MEDIA.get(codec.version, _SOAP11_MEDIA)
    )


def _message_id(message: str) -> str:
    """The V3 message's ``id/@extension`` (its first ``id``), read without parsing the whole of a
    large message; "" when there is none."""
    try:
        for _, element in etree.iterparse(
            io.BytesIO(message.encode("utf-8")),
            events=("end",),
            resolve_entities=False,
            load_dtd=False,
            no_network=True,
        ):
            if isinstance(element.tag, str) and etree.QName(element).localname == "id":
                return str(element.get("extension") or "")
    except etree.XMLSyntaxError:
        pass
    return ""
