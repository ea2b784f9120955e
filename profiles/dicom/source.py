"""The DICOM source (``dicom://host:port``): the regional archive's Storage, Verification and
Query/Retrieve SCP (pynetdicom), for the hospitals' PACS systems.

::

    source:
      url: dicom://127.0.0.1:11112
      max_associations: 16
    ack: after_delivery
    ack_from: archive
    destinations:
      - {id: archive, url: "dicom-archive:"}

* **Association** (PS3.8 §9.3): the called AE title must be ours (``dicom.ae_title``) and the
  calling AE title a configured peer, else A-ASSOCIATE-RJ (called / calling AE title not
  recognised); with ``dicom.check_peer_address`` a peer calling from an address that is not its
  ``host`` is aborted at once. Beyond ``max_associations`` an association is rejected as transient
  (local limit exceeded). Each refusal is an ATNA Security Alert. An association that stays silent
  for ``idle_timeout`` seconds is aborted (a peer that sends and never releases).
* **Services** a peer may use are its ``may`` list; any other request is answered 0x0124 (refused:
  not authorised).
* **C-ECHO** (Verification): Success.
* **C-STORE** (PS3.4 Annex B): the dataset is streamed to a file as it arrives (pynetdicom's
  ``STORE_RECV_CHUNKED_DATASET``), never held in memory; its header is read (up to the pixel data)
  and checked; the file is made durable and renamed into the archive; the C-STORE is stored as a
  message (its header summary, JSON) and indexed by the channel's ``dicom-archive:`` destination
  in the same commit. Only then is Success (0x0000) sent. A dataset without a Study, Series or SOP
  Instance UID, or that cannot be read, fails with 0xC000 (cannot understand) or 0xA900 (does not
  match the SOP class) and an Error Comment naming the problem; a full disk or a store failure is
  0xA700 (out of resources). Every failure is kept as an errored record for the auditors. SOP
  classes and transfer syntaxes not offered are refused in negotiation (their presentation
  contexts are rejected: "abstract syntax not supported", "transfer syntaxes not supported").
* **C-FIND, C-MOVE, C-GET** (PS3.4 Annex C): ``profiles.dicom.query``; C-MOVE sends to the peer the
  Move Destination names (its ``host``/``port``), an unknown one is 0xA801.

pynetdicom runs each association on a thread of its own; a handler waits there for the channel's
answer (``run_coroutine_threadsafe``) while the event loop serves everything else. pynetdicom
writes a received dataset to a ``tempfile`` file; the source points the process's temporary folder
(``tempfile.tempdir``) at the archive's ``.incoming`` folder, on the archive's filesystem, so that
archiving a received file is a rename, not a copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator
from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom import AE, _config, build_context, evt
from pynetdicom.transport import ThreadedAssociationServer

from engine import audit as engine_audit
from engine.connectors.base import Options, Source
from engine.hl7v2.peek import Header, Identifier
from engine.message import ContentType, OutcomeStatus
from engine.services import Services
from profiles.dicom import audit
from profiles.dicom.actor import DicomActor
from profiles.dicom.archive import DatasetError, read_header, valid_uid
from profiles.dicom.config import Peer, Service
from profiles.dicom.destination import StoredInstance
from profiles.dicom.query import PATIENT_ROOT, QueryError, Selected, find, instances_for
from profiles.dicom.sop_classes import QUERY_RETRIEVE, STORAGE, TRANSFER_SYNTAXES

if TYPE_CHECKING:
    from pynetdicom.association import Association
    from pynetdicom.events import Event

__all__ = ["DicomSource", "DicomSourceOptions"]

log = logging.getLogger(__name__)

VERIFICATION = "1.2.840.10008.1.1"
SUCCESS = 0x0000
PENDING = 0xFF00
CANCEL = 0xFE00
NOT_AUTHORISED = 0x0124
OUT_OF_RESOURCES = 0xA700
DOES_NOT_MATCH = 0xA900
CANNOT_UNDERSTAND = 0xC000
UNABLE_TO_PROCESS = 0xC001  # C-FIND/C-GET failure (PS3.4 C.4.1.1.4): here, a peer not allowed to
MOVE_DESTINATION_UNKNOWN = 0xA801
SUBOPERATIONS_FAILED = 0xB000  # C-MOVE/C-GET warning: some sub-operations failed

# stream every received dataset to a temporary file (PS3.10 format) instead of memory
_config.STORE_RECV_CHUNKED_DATASET = True


class DicomSourceOptions(Options):
    tls: str | None = Field(None, description="name of a tls: entry in config.yaml (DICOM TLS, PS3.15 B.1)")
    max_associations: int = Field(16, ge=1, le=1000, description="concurrent associations")
    max_pdu: int = Field(
        0, ge=0, description="largest P-DATA PDU we accept (bytes); 0: no limit, fewest round trips"
    )
    idle_timeout: float = Field(60, gt=0, description="seconds of silence before an association is aborted")
    acse_timeout: float = Field(30, gt=0, description="seconds to wait for association messages")
    dimse_timeout: float = Field(60, gt=0, description="seconds to wait for a DIMSE message")
    sop_classes: list[str] | None = Field(
        None, description="storage SOP classes accepted, by keyword or UID (default: the common ones)"
    )

    @field_validator("sop_classes")
    @classmethod
    def _known(cls, value: list[str] | None) -> list[str] | None:
        for name in value or []:
            if name not in STORAGE and not valid_uid(name):
                raise ValueError(f"{name!r} is neither a storage SOP class keyword we know nor a UID")
        return value


class _SharedPortServer(ThreadedAssociationServer):
    """The server of one of several ``hie run --workers`` processes: they listen on the same port
    (SO_REUSEPORT) and the kernel spreads the PACS's associations over them."""

    def server_bind(self) -> None:
        assert self.socket is not None
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        super().server_bind()


class DicomSource(Source):
    scheme = "dicom"
    # several worker processes may share the port (each its own pynetdicom server, SO_REUSEPORT)
    shares_port = True
    Options = DicomSourceOptions
    options: DicomSourceOptions
    _actor: DicomActor | None = None
    _services: Services | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._server: ThreadedAssociationServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def attach(self, services: Services) -> None:
        self._actor = DicomActor.of(services)
        self._services = services

    @property
    def actor(self) -> DicomActor:
        assert self._actor is not None, "attach() first"
        return self._actor

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    @classmethod
    def check_url(cls, url: Any) -> str | None:
        if not url.port:
            return "a dicom:// source needs a port (dicom://host:port)"
        return None

    # -- start and stop ---------------------------------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        config = self.actor.config
        if not log.isEnabledFor(logging.DEBUG):
            # pynetdicom logs every identifier and dataset it handles at INFO: patient data
            logging.getLogger("pynetdicom").setLevel(logging.WARNING)
        # received datasets are written next to the archive, so that placing one is a rename
        tempfile.tempdir = str(self.actor.archive.incoming)
        ae = AE(ae_title=config.ae_title)
        ae.maximum_associations = self.options.max_associations
        ae.maximum_pdu_size = self.options.max_pdu
        ae.network_timeout = self.options.idle_timeout
        ae.acse_timeout = self.options.acse_timeout
        ae.dimse_timeout = self.options.dimse_timeout
        ae.require_called_aet = True
        if not config.accept_unknown_peers:
            ae.require_calling_aet = [p.ae_title for p in config.peers]
        ae.add_supported_context(VERIFICATION)
        for uid in self._storage_classes():
            # scu_role/scp_role: a C-GET requestor asks to be the Storage SCP on its association
            ae.add_supported_context(uid, TRANSFER_SYNTAXES, scu_role=True, scp_role=True)
        for uid in QUERY_RETRIEVE:
            ae.add_supported_context(uid)
        handlers: list[Any] = [
            (evt.EVT_CONN_OPEN, self._on_open),
            (evt.EVT_REJECTED, self._on_rejected),
            (evt.EVT_ESTABLISHED, self._on_established),
            (evt.EVT_RELEASED, self._on_ended),
            (evt.EVT_ABORTED, self._on_ended),
            (evt.EVT_C_ECHO, self._on_echo),
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_C_FIND, self._on_find),
            (evt.EVT_C_MOVE, self._on_move),
            (evt.EVT_C_GET, self._on_get),
        ]
        host = self.url.hostname or "127.0.0.1"
        server_class = _SharedPortServer if self.reuse_port else ThreadedAssociationServer
        server = self._server = await asyncio.to_thread(
            ae.make_server,
            (host, self.url.port or 0),
            evt_handlers=handlers,
            ssl_context=self.tls,
            server_class=server_class,
        )
        threading.Thread(
            target=server.serve_forever, name=f"dicom-{self.receiver.channel_id}", daemon=True
        ).start()
        self._ae = ae
        log.info(
            "channel %s: DICOM %s listening on %s:%s%s",
            self.receiver.channel_id,
            config.ae_title,
            host,
            self.port,
            " (TLS)" if self.tls else "",
        )

    def _storage_classes(self) -> list[str]:
        if self.options.sop_classes is None:
            return list(STORAGE.values())
        return [STORAGE.get(name, name) for name in self.options.sop_classes]

    async def stop(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            await asyncio.to_thread(server.shutdown)

    # -- association --------------------------------------------------------------------------------
    @staticmethod
    def _peer_of(assoc: Association) -> tuple[str, str]:
        return str(assoc.requestor.ae_title).strip(), f"{assoc.requestor.address}:{assoc.requestor.port}"

    def _on_open(self, event: Event) -> None:
        with contextlib.suppress(AttributeError, OSError):
            event.assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # type: ignore[union-attr]

    def _on_rejected(self, event: Event) -> None:
        ae_title, address = self._peer_of(event.assoc)
        reason = f"association from {ae_title!r} at {address} rejected"
        self._alert(ae_title, address, reason)

    def _on_established(self, event: Event) -> None:
        config = self.actor.config
        ae_title, address = self._peer_of(event.assoc)
        peer = config.peer(ae_title)
        checked = config.check_peer_address and peer is not None and peer.host
        if checked and peer is not None and event.assoc.requestor.address not in _addresses(peer.host):
            self._alert(ae_title, address, f"peer {ae_title!r} called from {address}, not from {peer.host}")
            event.assoc.abort()
            return
        self._audit(audit.association_event(peer_ae=ae_title, peer_address=address, us=self._us, start=True))

    def _on_ended(self, event: Event) -> None:
        ae_title, address = self._peer_of(event.assoc)
        aborted = "aborted" if event.event.name == "EVT_ABORTED" else None
        self._audit(
            audit.association_event(
                peer_ae=ae_title, peer_address=address, us=self._us, start=False, description=aborted
            )
        )

    def _alert(self, ae_title: str, address: str, reason: str) -> None:
        log.warning("channel %s: %s", self.receiver.channel_id, reason)
        self._audit(audit.security_alert(peer_ae=ae_title, peer_address=address, us=self._us, reason=reason))

    @property
    def _us(self) -> str:
        return self.actor.config.ae_title

    def _audit(self, *events: Any) -> None:
        """Write audit records from an association's thread (not waiting for the commit)."""
        self.actor.audit_later(self.receiver.channel_id, *events)

    def _permitted(self, event: Event, service: Service) -> Peer | bool | None:
        """The peer if it may use ``service``; True for any peer when unknown peers are accepted."""
        config = self.actor.config
        peer = config.peer(self._peer_of(event.assoc)[0])
        if peer is None:
            return config.accept_unknown_peers
        return peer if service in peer.may else False

    # -- C-ECHO, C-STORE --------------------------------------------------------------------------------
    def _on_echo(self, event: Event) -> int:
        return SUCCESS

    def _on_store(self, event: Event) -> int | Dataset:
        ae_title, address = self._peer_of(event.assoc)
        if self._permitted(event, "store") is False:
            return _status(NOT_AUTHORISED, f"{ae_title} may not store here")
        request: Any = event.request
        try:
            received = Path(event.dataset_path)
        except AttributeError:  # not streamed (a test that turned chunking off)
            return _status(OUT_OF_RESOURCES, "the dataset was not received to a file")
        try:
            info = read_header(
                received,
                sop_class_uid=str(request.AffectedSOPClassUID or ""),
                sop_instance_uid=str(request.AffectedSOPInstanceUID or ""),
            )
        except DatasetError as exc:
            status = DOES_NOT_MATCH if exc.mismatch else CANNOT_UNDERSTAND
            self._keep_refused(received, address, ae_title, str(exc))
            return _status(status, str(exc))
        try:
            path, size = self.actor.archive.place(received, info)
        except OSError as exc:
            log.error("channel %s: cannot archive an instance: %s", self.receiver.channel_id, exc)
            return _status(OUT_OF_RESOURCES, f"the archive cannot keep the instance: {exc.strerror or exc}")
        stored = StoredInstance(info, path, size, ae_title, address)
        header = Header(
            "|",
            "^",
            "~",
            "&",
            sending_application=ae_title,
            sending_facility=address.rsplit(":", 1)[0],
            receiving_application=self._us,
            message_code="C-STORE",
            trigger_event=info.modality,
            control_id=info.sop_instance_uid,
            identifiers=[Identifier(info.patient_id, info.issuer or info.issuer_oid, "PI", "PatientID")]
            if info.patient_id
            else [],
        )
        outcome = self._call(
            self.receiver.receive(stored.to_json(), address, content_type=ContentType.JSON, header=header)
        )
        if outcome is None:
            return _status(OUT_OF_RESOURCES, "the archive did not answer in time")
        result, answer = outcome
        if result is OutcomeStatus.ACCEPTED and answer.get("status") == "stored":
            return SUCCESS
        reason = str(answer.get("reason") or answer.get("error") or "the instance was not stored")
        return _status(OUT_OF_RESOURCES, reason)

    def _call(self, coro: Any) -> tuple[OutcomeStatus, dict[str, Any]] | None:
        """Run the channel's ``receive`` on the event loop and wait for its outcome here."""
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            outcome, _ = future.result(timeout=self.options.dimse_timeout)
        except Exception as exc:  # a timeout or a failure of the store: the C-STORE fails
            log.error("channel %s: C-STORE not stored: %s", self.receiver.channel_id, _name(exc))
            return None
        body: dict[str, Any] = {}
        if outcome.response:
            try:
                body = json.loads(outcome.response)
            except ValueError:
                body = {}
        if outcome.error is not None:
            body.setdefault("error", outcome.error.text)
        return outcome.status, body

    def _keep_refused(self, received: Path, address: str, ae_title: str, reason: str) -> None:
        """An errored record of a dataset the archive refused: its first bytes, for the auditors."""
        try:
            with received.open("rb") as f:
                head = f.read(64 * 1024)
        except OSError:
            head = b""
        self._call_quiet(self.receiver.reject_unframed(head, address, f"C-STORE from {ae_title}: {reason}"))

    def _call_quiet(self, coro: Any) -> None:
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            future.result(timeout=self.options.dimse_timeout)
        except Exception as exc:
            log.error(
                "channel %s: errored record not stored: %s", self.receiver.channel_id, type(exc).__name__
            )

    # -- C-FIND, C-MOVE, C-GET --------------------------------------------------------------------------
    def _on_find(self, event: Event) -> Iterator[tuple[int, Dataset | None]]:
        ae_title, address = self._peer_of(event.assoc)
        request: Any = event.request
        sop_class = str(request.AffectedSOPClassUID)
        if self._permitted(event, "find") is False:
            yield UNABLE_TO_PROCESS, _comment(f"{ae_title} may not query here")
            return
        try:
            identifier = event.identifier
            raw = request.Identifier.getvalue() if request.Identifier is not None else b""
        except Exception as exc:
            yield CANNOT_UNDERSTAND, _comment(f"cannot read the identifier: {exc}")
            return
        matches = 0
        outcome, reason = engine_audit.Outcome.SUCCESS, None
        try:
            assert self._services is not None
            with self._services.reads.connect() as conn:
                for answer in find(
                    conn, identifier, patient_root=sop_class in PATIENT_ROOT, ae_title=self._us
                ):
                    if event.is_cancelled:
                        yield CANCEL, None
                        return
                    matches += 1
                    yield PENDING, answer
        except QueryError as exc:
            outcome, reason = engine_audit.Outcome.MINOR_FAILURE, str(exc)
            yield exc.status, _comment(str(exc))
            return
        finally:
            self._audit(
                audit.query_event(
                    peer_ae=ae_title,
                    peer_address=address,
                    us=self._us,
                    sop_class_uid=sop_class,
                    query=raw,
                    matches=matches,
                    outcome=outcome,
                    description=reason,
                )
            )
        yield SUCCESS, None

    def _selected(self, event: Event) -> list[Selected]:
        assert self._services is not None
        with self._services.reads.connect() as conn:
            return instances_for(
                conn, event.identifier, patient_root=str(event.request.AffectedSOPClassUID) in PATIENT_ROOT
            )

    def _on_move(self, event: Event) -> Iterator[Any]:
        address = self._peer_of(event.assoc)[1]
        if self._permitted(event, "move") is False:
            # the first answer of a C-MOVE handler is its destination: a peer that may not move
            # has no destination it may move to (0xA801)
            yield None, None
            return
        destination = self.actor.config.peer(str(event.move_destination).strip())
        if destination is None or not destination.host or not destination.port:
            yield None, None  # pynetdicom answers 0xA801: Move Destination unknown
            return
        selected: list[Selected] = []
        refused: QueryError | None = None
        try:
            selected = self._selected(event)
        except QueryError as exc:
            refused = exc
        # the sub-association proposes each SOP class in the transfer syntax it is archived in
        # (nothing is transcoded), and Verification when there is nothing to send
        pairs = sorted({(s.sop_class_uid, s.transfer_syntax) for s in selected})[:127]
        contexts = [build_context(c, t) for c, t in pairs] or [build_context(VERIFICATION)]
        yield destination.host, destination.port, {"ae_title": destination.ae_title, "contexts": contexts}
        if refused is not None:
            yield 0
            yield refused.status, _comment(str(refused))
            return
        yield from self._sub_operations(event, "C-MOVE", destination.ae_title, address, selected)

    def _on_get(self, event: Event) -> Iterator[Any]:
        ae_title, address = self._peer_of(event.assoc)
        if self._permitted(event, "get") is False:
            yield 0
            yield UNABLE_TO_PROCESS, _comment(f"{ae_title} may not retrieve here")
            return
        try:
            selected = self._selected(event)
        except QueryError as exc:
            yield 0
            yield exc.status, _comment(str(exc))
            return
        yield from self._sub_operations(event, "C-GET", ae_title, address, selected)

    def _sub_operations(
        self, event: Event, operation: str, to_ae: str, address: str, selected: list[Selected]
    ) -> Iterator[Any]:
        yield len(selected)
        sent: dict[str, tuple[str, int]] = {}
        for item in selected:
            if event.is_cancelled:
                yield CANCEL, None
                break
            try:
                dataset = dcmread(self.actor.archive.path(item.path))
            except (OSError, ValueError) as exc:
                log.error("channel %s: archived instance unreadable: %s", self.receiver.channel_id, exc)
                yield OUT_OF_RESOURCES, _comment("an archived instance cannot be read")
                continue
            patient, count = sent.get(item.study_uid, (item.patient, 0))
            sent[item.study_uid] = (patient, count + 1)
            yield PENDING, dataset
        self._audit(
            audit.instances_retrieved(
                operation=operation,
                peer_ae=to_ae,
                peer_address=address,
                us=self._us,
                studies=[(study, patient, count) for study, (patient, count) in sent.items()],
            )
        )


def _status(code: int, comment: str) -> Dataset:
    ds = Dataset()
    ds.Status = code
    ds.ErrorComment = comment[:64]  # LO: 64 characters
    return ds


def _comment(text: str) -> Dataset:
    ds = Dataset()
    ds.ErrorComment = text[:64]
    return ds


def _name(exc: BaseException) -> str:
    return type(exc).__name__


def _addresses(host: str) -> set[str]:
    try:
        return {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
    except OSError:
        return {host}
