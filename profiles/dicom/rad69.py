"""The Imaging Document Source's RAD-69 endpoint: ``xdsi-source:`` answers Retrieve Imaging Document
Set requests stored by a ``soap://`` source (IHE RAD TF-3 §4.69; xds.md §7)::

    source:
      url: soap://127.0.0.1:8089/xdsi/source
    ack: after_delivery
    ack_from: imaging
    destinations:
      - {id: imaging, url: "xdsi-source:"}

Each instance asked for is looked up in the archive's index and sent as it is archived, an MTOM part
``application/dicom``. Per instance, a RegistryError instead (the NIST Imaging Document Source
cases): a RepositoryUniqueId that is not ``dicom.imaging_source_id`` is XDSUnknownRepositoryId; an
instance the archive does not hold, or not in the study and series the request puts it in, is
XDSDocumentUniqueIdError; an instance archived in a transfer syntax the consumer did not list is
XDSRepositoryError (nothing is transcoded). Success when all were sent, PartialSuccess when some,
Failure when none. The answer is held in memory while it is sent, as ITI-43's is; the message store
keeps only its envelope (the instances are in the archive). Each answer is audited (110104, R).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select

from engine import audit as engine_audit
from engine.connectors.base import Destination, InlineMode, Options, Outbound, SendResult
from engine.message import Message
from engine.services import Services
from engine.store.db import read_retrying
from ihe._ebxml import RegistryError
from ihe._mtom import join_related
from ihe._soap import ANONYMOUS, WSA, SoapFault, build_envelope, parse_envelope
from ihe.iti43 import Retrieved, retrieve_response
from ihe.rad69 import IMAGING_RETRIEVE, ImagingRequest, parse_imaging_retrieve
from profiles.dicom import audit
from profiles.dicom.actor import DicomActor
from profiles.dicom.schema import instances, studies
from profiles.xds.package import entity, fault_entity, open_package

__all__ = ["ImagingSourceDestination"]

DICOM_MEDIA = "application/dicom"


class _Options(Options):
    pass


@dataclass(frozen=True)
class _Found:
    request: ImagingRequest
    content: bytes
    patient: str


class ImagingSourceDestination(Destination):
    scheme = "xdsi-source"
    Options = _Options
    answers_sender = True
    inline = "read"  # a retrieval changes nothing: answered, then stored with its audit record
    _actor: DicomActor | None = None
    _services: Services | None = None

    def attach(self, services: Services) -> None:
        self._actor = DicomActor.of(services)
        self._services = services

    @property
    def actor(self) -> DicomActor:
        assert self._actor is not None, "attach() first"
        return self._actor

    def inline_mode(self, msg: Message) -> InlineMode:
        return "read"

    async def send(self, out: Outbound) -> SendResult:
        return await asyncio.to_thread(read_retrying, lambda: self._answer(out))

    def _answer(self, out: Outbound) -> SendResult:
        try:
            soap = parse_envelope(open_package(out.raw).envelope)
        except SoapFault as broken:
            return SendResult(sent=out.raw, response=fault_entity(broken, None), refused=broken.reason)
        if soap.action != IMAGING_RETRIEVE:
            fault = SoapFault(
                "Sender",
                f"this endpoint serves {IMAGING_RETRIEVE}, not {soap.action}",
                subcode=f"{{{WSA}}}ActionNotSupported",
            )
            return SendResult(
                sent=out.raw, response=fault_entity(fault, soap.message_id), refused=fault.reason
            )
        asked, syntaxes, errors = parse_imaging_retrieve(soap.body)
        found: list[_Found] = []
        if not errors:
            found, errors = self._retrieve(asked, syntaxes)
        items = [
            Retrieved(f.request.document, DICOM_MEDIA, f"instance{n}@hie") for n, f in enumerate(found, 1)
        ]
        envelope = build_envelope(
            retrieve_response(items, errors), action=soap.action + "Response", relates_to=soap.message_id
        )
        parts = [(i.content_id, DICOM_MEDIA, f.content) for i, f in zip(items, found, strict=True)]
        content_type, package = join_related(envelope, parts)
        fatal = [e for e in errors if e.severity == "Error"]
        refused = f"{fatal[0].code}: {fatal[0].context}" if fatal else None
        requestor = soap.reply_to if soap.reply_to and soap.reply_to != ANONYMOUS else out.peer
        by_study: dict[str, tuple[str, int]] = {}
        for f in found:
            patient, count = by_study.get(f.request.study_uid, (f.patient, 0))
            by_study[f.request.study_uid] = (patient, count + 1)
        event = audit.instances_retrieved(
            operation="RAD-69",
            peer_ae=requestor,
            peer_address=out.peer,
            us=self.actor.config.ae_title,
            studies=[(s, p, n) for s, (p, n) in by_study.items()],
            outcome=engine_audit.Outcome.MINOR_FAILURE if refused else engine_audit.Outcome.SUCCESS,
            description=refused,
        )
        event.channel_id, event.message_id = out.channel_id, out.message_id
        return SendResult(
            sent=out.raw,
            response=entity(package, content_type),
            refused=refused,
            audit=(event,),
            recorded=entity(envelope, "application/xop+xml"),  # the instances stay in the archive
        )

    def _retrieve(
        self, asked: list[ImagingRequest], syntaxes: list[str]
    ) -> tuple[list[_Found], list[RegistryError]]:
        ours = self.actor.config.imaging_source_id
        errors: list[RegistryError] = []
        wanted = [a for a in asked if a.document.repository_unique_id == ours]
        for a in asked:
            if a.document.repository_unique_id != ours:
                errors.append(
                    RegistryError(
                        "XDSUnknownRepositoryId",
                        f"repository {a.document.repository_unique_id or '(none)'} is not this "
                        f"Imaging Document Source ({ours})",
                        a.document.document_unique_id,
                    )
                )
        assert self._services is not None
        rows: dict[str, Any] = {}
        with self._services.reads.connect() as conn:
            uids = {a.document.document_unique_id for a in wanted}
            for chunk in _chunks(sorted(uids), 500):
                stmt = (
                    select(
                        instances.c.sop_instance_uid,
                        instances.c.study_uid,
                        instances.c.series_uid,
                        instances.c.transfer_syntax,
                        instances.c.path,
                        studies.c.patient_id,
                        studies.c.issuer,
                    )
                    .join(studies, studies.c.study_uid == instances.c.study_uid)
                    .where(instances.c.sop_instance_uid.in_(chunk))
                )
                rows |= {r.sop_instance_uid: r for r in conn.execute(stmt)}
        found: list[_Found] = []
        for a in wanted:
            uid = a.document.document_unique_id
            row = rows.get(uid)
            if row is None or row.study_uid != a.study_uid or row.series_uid != a.series_uid:
                errors.append(
                    RegistryError(
                        "XDSDocumentUniqueIdError",
                        f"instance {uid} is not in series {a.series_uid} of study {a.study_uid} here",
                        uid,
                    )
                )
                continue
            if row.transfer_syntax not in syntaxes:
                errors.append(
                    RegistryError(
                        "XDSRepositoryError",
                        f"instance {uid} is archived in transfer syntax {row.transfer_syntax}, which the "
                        "request does not accept (no transcoding)",
                        uid,
                    )
                )
                continue
            try:
                content = self.actor.archive.path(row.path).read_bytes()
            except (OSError, ValueError):
                errors.append(RegistryError("XDSRepositoryError", f"instance {uid} cannot be read", uid))
                continue
            patient = f"{row.patient_id}^^^{row.issuer}" if row.issuer else str(row.patient_id)
            found.append(_Found(a, content, patient))
        return found, errors


def _chunks(items: list[str], size: int) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
