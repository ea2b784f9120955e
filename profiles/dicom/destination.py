"""The image archive as a destination: ``dicom-archive:`` indexes what a ``dicom://`` source received.

The source has already placed the instance's file in the archive (``profiles.dicom.archive``) and
stored the C-STORE as a message whose content is the instance's header summary (JSON, no pixel
data) with the file's archive path. This destination indexes it inside the transaction that stores
that message (``inline = "store"``): the message, the index rows, the patient's reconciliation and
the audit record commit together, and only then does the PACS get Success (``ack: after_delivery``,
``ack_from`` this destination). Its answer to the source is a small JSON document::

    {"status": "stored", "new": true, "patient": "known"}      # or "unknown": kept for review
    {"status": "refused", "reason": "..."}                     # the C-STORE fails with the reason
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import Connection

from engine import audit as engine_audit
from engine.connectors.base import Destination, Options, Outbound, SendResult
from engine.delivery import send_in_writer
from engine.services import Services
from engine.store.db import utcnow
from profiles.dicom import audit
from profiles.dicom.actor import DicomActor
from profiles.dicom.archive import InstanceInfo
from profiles.dicom.index import index_instance

__all__ = ["DicomArchiveDestination", "StoredInstance", "answer"]


class _Options(Options):
    pass


@dataclass(frozen=True)
class StoredInstance:
    """The message a ``dicom://`` source stores for a C-STORE."""

    info: InstanceInfo
    path: str  # in the archive
    size: int
    calling_ae: str
    peer: str

    def to_json(self) -> bytes:
        body = {**self.info.summary(), "path": self.path, "size": self.size, "calling_ae": self.calling_ae}
        return json.dumps(body, ensure_ascii=False, sort_keys=True).encode("utf-8")

    @classmethod
    def from_json(cls, raw: bytes, peer: str) -> StoredInstance:
        body: dict[str, Any] = json.loads(raw)
        names = {f.name for f in fields(InstanceInfo)}
        defaults: dict[str, Any] = {n: "" for n in names} | {"series_number": None, "instance_number": None}
        info = InstanceInfo(**(defaults | {k: v for k, v in body.items() if k in names}))
        return cls(info, str(body["path"]), int(body["size"]), str(body.get("calling_ae", "")), peer)


def answer(status: str, **more: object) -> bytes:
    return json.dumps({"status": status, **more}, ensure_ascii=False).encode("utf-8")


class DicomArchiveDestination(Destination):
    scheme = "dicom-archive"
    Options = _Options
    inline = "store"
    answers_sender = True
    idempotent = True  # indexing an instance twice leaves one row
    _actor: DicomActor | None = None
    _services: Services | None = None

    def attach(self, services: Services) -> None:
        self._actor = DicomActor.of(services)
        self._services = services

    @property
    def actor(self) -> DicomActor:
        assert self._actor is not None, "attach() first"
        return self._actor

    @property
    def us(self) -> str:
        return self.actor.config.ae_title

    async def send(self, out: Outbound) -> SendResult:
        """From a queue (an ``after_store`` channel, or ``hie messages reprocess``)."""
        assert self._services is not None
        return await send_in_writer(self._services, self, out, self.prepare_in(out))

    def prepare_in(self, out: Outbound) -> StoredInstance | str:
        try:
            stored = StoredInstance.from_json(out.raw, out.peer)
        except (ValueError, KeyError, TypeError) as exc:
            return f"not a stored C-STORE of a dicom:// source: {type(exc).__name__}: {exc}"
        try:
            present = self.actor.archive.path(stored.path).is_file()
        except ValueError as exc:
            return str(exc)
        if not present:
            return f"the archived file {stored.path} is missing"
        return stored

    def send_in(self, conn: Connection, out: Outbound, prepared: StoredInstance | str) -> SendResult:
        if isinstance(prepared, str):
            return SendResult(sent=b"", response=answer("refused", reason=prepared), refused=prepared)
        info = prepared.info
        done = index_instance(
            conn,
            info,
            path=prepared.path,
            size=prepared.size,
            message_id=out.message_id,
            source_ae=prepared.calling_ae,
            resolver=self.actor.resolver,
            now=utcnow(),
        )
        issuer = info.issuer or info.issuer_oid
        event = audit.instance_stored(
            peer_ae=prepared.calling_ae,
            peer_address=prepared.peer,
            us=self.us,
            patient=f"{info.patient_id}^^^{issuer}" if issuer else info.patient_id,
            study_uid=info.study_uid,
            sop_class_uid=info.sop_class_uid,
            sop_instance_uid=info.sop_instance_uid,
            outcome=engine_audit.Outcome.SUCCESS,
            channel_id=out.channel_id,
            message_id=out.message_id,
        )
        body = answer("stored", new=done.new, patient=done.patient_status)
        return SendResult(sent=b"", response=body, audit=(event,))
