"""The DICOM destination (``dicom://host:port``): forwards what a ``dicom://`` source archived to another
Storage SCP with C-STORE (PS3.4 Annex B), from the channel's durable queue::

    destinations:
      - {id: archive, url: "dicom-archive:"}
      - id: teaching-pacs
        url: dicom://10.20.0.15:104
        ae_title: TEACH_PACS           # the called AE title
        calling_ae_title: HIE_PACS     # ours (default: dicom.ae_title)

The archived file is sent as it is (pynetdicom's ``STORE_SEND_CHUNKED_DATASET``: read from disk in
PDU-sized pieces, never decoded or held whole in memory), in its own transfer syntax. Success and
the warning statuses (0xB000, 0xB006, 0xB007) deliver; a refusal for resources (0xA7xx) or an
association the peer would not accept is retried with the queue's backoff; any other failure
(0xA9xx, 0xCxxx: the peer will never take this dataset) is permanent and dead-letters the delivery.
An association carries one C-STORE; ``TCP_NODELAY`` is set on it (xds.md §8).
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from pydantic import Field
from pynetdicom import AE, _config, build_context, evt

from engine.connectors.base import Destination, Options, Outbound, SendResult
from engine.errors import DeliveryError, PermanentDeliveryError
from engine.services import Services
from profiles.dicom.actor import DicomActor
from profiles.dicom.destination import StoredInstance

__all__ = ["DicomDestination", "DicomDestinationOptions"]

# send archived files without decoding them (read in PDU-sized chunks)
_config.STORE_SEND_CHUNKED_DATASET = True


class DicomDestinationOptions(Options):
    ae_title: str = Field(min_length=1, max_length=16, description="the called AE title")
    calling_ae_title: str | None = Field(None, max_length=16, description="ours (default: dicom.ae_title)")
    tls: str | None = Field(None, description="name of a tls: entry of config.yaml")
    timeout: float = Field(60, gt=0, description="seconds to wait for the association and each answer")


class DicomDestination(Destination):
    scheme = "dicom"
    Options = DicomDestinationOptions
    options: DicomDestinationOptions
    idempotent = True  # a peer given one instance twice keeps one (same SOP Instance UID)
    _actor: DicomActor | None = None

    def attach(self, services: Services) -> None:
        self._actor = DicomActor.of(services)

    @classmethod
    def check_url(cls, url: Any) -> str | None:
        return None if url.port else "a dicom:// destination needs a port (dicom://host:port)"

    async def send(self, out: Outbound) -> SendResult:
        assert self._actor is not None, "attach() first"
        try:
            stored = StoredInstance.from_json(out.raw, out.peer)
            path = self._actor.archive.path(stored.path)
        except (ValueError, KeyError, TypeError) as exc:
            raise PermanentDeliveryError(f"not an archived instance: {exc}") from exc
        if not path.is_file():
            raise PermanentDeliveryError(f"the archived file {stored.path} is missing")
        status, comment = await asyncio.to_thread(self._store, path, stored)
        sent = f"C-STORE {stored.info.sop_instance_uid}".encode()
        answer = f"0x{status:04X} {comment}".strip().encode()
        if status == 0x0000 or status in (0xB000, 0xB006, 0xB007):
            return SendResult(sent=sent, response=answer)
        if 0xA700 <= status <= 0xA7FF:
            raise DeliveryError(
                f"{self.options.ae_title} is out of resources (0x{status:04X}) {comment}".strip()
            )
        raise PermanentDeliveryError(
            f"{self.options.ae_title} refused the instance: 0x{status:04X} {comment}".strip()
        )

    def _store(self, path: Any, stored: StoredInstance) -> tuple[int, str]:
        assert self._actor is not None
        ae = AE(ae_title=self.options.calling_ae_title or self._actor.config.ae_title)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = self.options.timeout
        context = build_context(stored.info.sop_class_uid, stored.info.transfer_syntax)
        assoc = ae.associate(
            self.url.hostname or "127.0.0.1",
            self.url.port or 104,
            ae_title=self.options.ae_title,
            contexts=[context],
            tls_args=(self.tls, self.url.hostname or "") if self.tls is not None else None,
            evt_handlers=[(evt.EVT_CONN_OPEN, _nodelay)],
        )
        if not assoc.is_established:
            where = f"{self.url.hostname}:{self.url.port}"
            raise DeliveryError(f"{self.options.ae_title} at {where} did not accept the association")
        try:
            status = assoc.send_c_store(path)
        finally:
            if assoc.is_established:
                assoc.release()
        if "Status" not in status:
            raise DeliveryError(f"{self.options.ae_title} did not answer the C-STORE")
        comment = str(status.ErrorComment) if "ErrorComment" in status else ""
        return int(status.Status), comment


def _nodelay(event: Any) -> None:
    event.assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
