"""The DICOM source (``dicom://host:port``): the regional archive's Storage, Verification and
Query/Retrieve SCP, for the hospitals' PACS systems.

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
  ``host`` is rejected too (over TLS, aborted once established). Beyond ``max_associations`` an
  association is rejected as transient (local limit exceeded). Each refusal is an ATNA Security
  Alert. An association that stays silent for ``idle_timeout`` seconds is aborted (a peer that
  sends and never releases).
* **Services** a peer may use are its ``may`` list; any other request is answered 0x0124 (refused:
  not authorised).
* **C-ECHO** (Verification): Success.
* **C-STORE** (PS3.4 Annex B): the dataset is streamed to a file as it arrives (by our receiver,
  or pynetdicom's ``STORE_RECV_CHUNKED_DATASET``), never held in memory; its header is read (up to
  the pixel data: ``header.py``, else pydicom) and checked; the file is made durable and renamed
  into the archive; the C-STORE is stored as a message (its header summary, JSON) and indexed by
  the channel's ``dicom-archive:`` destination in the same commit. Only then is Success (0x0000)
  sent. A dataset without a Study, Series or SOP Instance UID, or that cannot be read, fails with
  0xC000 (cannot understand) or 0xA900 (does not match the SOP class) and an Error Comment naming
  the problem; a full disk or a store failure is 0xA700 (out of resources). Every failure is kept
  as an errored record for the auditors. SOP classes and transfer syntaxes not offered are refused
  in negotiation (their presentation contexts are rejected: "abstract syntax not supported",
  "transfer syntaxes not supported").
* **C-FIND, C-MOVE, C-GET** (PS3.4 Annex C): ``profiles.dicom.query``; C-MOVE sends to the peer the
  Move Destination names (its ``host``/``port``), an unknown one is 0xA801.

**Two receivers behind one port.** The source accepts every connection itself and looks at the
A-ASSOCIATE-RQ before reading it (``MSG_PEEK``). An association that proposes only storage SOP
classes and Verification, as a PACS pushing studies does, is served by the archive's own receiver
on the event loop (``intake.py``): the datasets go from the socket to their files with no thread
per association. One that proposes Query/Retrieve classes or asks for SCP/SCU roles (a C-GET) is
handed, socket and all, to pynetdicom, which serves it on a thread of its own; its handlers wait
there for the channel's answer (``run_coroutine_threadsafe``). Over TLS (``tls:``) every
association is pynetdicom's, which then listens itself. pynetdicom writes a received dataset to a
``tempfile`` file; the source points the process's temporary folder (``tempfile.tempdir``) at the
archive's ``.incoming`` folder, on the archive's filesystem, so that archiving a received file is
a rename, not a copy, whichever receiver took it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
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
from profiles.dicom import audit, dimse, pdu
from profiles.dicom.actor import DicomActor
from profiles.dicom.archive import DatasetError, InstanceInfo, header_info, read_header, valid_uid
from profiles.dicom.config import Peer, Service
from profiles.dicom.destination import StoredInstance
from profiles.dicom.header import Unreadable
from profiles.dicom.intake import MAX_CONTROL_PDU, Rejection, StoreAssociation
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
UNABLE_TO_PROCESS = 0xC001  # C-FIND/C-GET failure (PS3.4 C.4.1.1.4): here, a peer not allowed to ask
MOVE_DESTINATION_UNKNOWN = 0xA801
SUBOPERATIONS_FAILED = 0xB000  # C-MOVE/C-GET warning: some sub-operations failed
HEAD_BYTES = 64 * 1024  # what the quick header reader is given of a received file
RESOLVED_SECONDS = 60.0  # how long a peer host's addresses are kept (check_peer_address)

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


class _HandOverServer(ThreadedAssociationServer):
    """pynetdicom's server for the associations the source hands over (queries and retrievals): it
    neither binds nor listens, the source's own listener accepted the connection."""

    def server_bind(self) -> None:
        pass

    def server_activate(self) -> None:
        pass


class DicomSource(Source):
    scheme = "dicom"
    # several worker processes may share the port (each its own listener, SO_REUSEPORT)
    shares_port = True
    Options = DicomSourceOptions
    options: DicomSourceOptions
    _actor: DicomActor | None = None
    _services: Services | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._server: ThreadedAssociationServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listener: socket.socket | None = None  # ours, when we accept (no TLS)
        self._accepting: asyncio.Task[None] | None = None
        self._routing: set[asyncio.Task[None]] = set()
        self._live: set[StoreAssociation] = set()  # the storage associations our receiver serves
        self._storage: set[str] = set()
        self._resolved: dict[str, tuple[float, set[str]]] = {}  # peer host -> (until, addresses)
        # what the intake receiver reads (IntakeHost)
        self.ae_title = ""
        self.implementation_class_uid = ""
        self.implementation_version = ""
        self.max_pdu = 0
        self.idle_timeout = 60.0
        self.incoming = Path()

    def attach(self, services: Services) -> None:
        self._actor = DicomActor.of(services)
        self._services = services

    @property
    def actor(self) -> DicomActor:
        assert self._actor is not None, "attach() first"
        return self._actor

    @property
    def port(self) -> int:
        if self._listener is not None:
            return int(self._listener.getsockname()[1])
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
        self._storage = set(self._storage_classes())
        self.ae_title = config.ae_title
        self.implementation_class_uid = str(ae.implementation_class_uid)
        self.implementation_version = str(ae.implementation_version_name or "")
        self.max_pdu = self.options.max_pdu
        self.idle_timeout = self.options.idle_timeout
        self.incoming = self.actor.archive.incoming
        if self.tls is None:
            # our listener takes every connection; pynetdicom gets what it alone serves
            self._listener = listener = _listen(host, self.url.port or 0, reuse_port=self.reuse_port)
            self._server = ae.make_server(
                listener.getsockname()[:2], evt_handlers=handlers, server_class=_HandOverServer
            )
            self._accepting = asyncio.get_running_loop().create_task(self._accept(listener))
        else:
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
        if self._accepting is not None:
            self._accepting.cancel()
            self._accepting = None
        for task in list(self._routing):
            task.cancel()
        if self._listener is not None:
            listener, self._listener = self._listener, None
            listener.close()
        for association in list(self._live):
            association.abort()
        if self._server is not None:
            server, self._server = self._server, None
            if isinstance(server, _HandOverServer):
                await asyncio.to_thread(self._close_hand_over, server)
            else:
                await asyncio.to_thread(server.shutdown)

    def _close_hand_over(self, server: _HandOverServer) -> None:
        """pynetdicom's associations aborted, its server closed (it never ran ``serve_forever``, so
        its ``shutdown`` would wait for ever)."""
        for assoc in server.active_associations:
            assoc.abort()
        server.server_close()
        with contextlib.suppress(ValueError):
            self._ae._servers.remove(server)

    # -- our listener: every connection, then the receiver that serves its association ---------------
    async def _accept(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, address = await loop.sock_accept(listener)
            except OSError as exc:  # out of descriptors, a connection reset before accept
                log.warning("channel %s: DICOM accept failed: %s", self.receiver.channel_id, exc)
                await asyncio.sleep(0.1)
                continue
            if len(self._routing) >= 4 * self.options.max_associations:
                # a flood of connections that ask for nothing: the newest are closed at once
                log.warning(
                    "channel %s: %d DICOM connections wait for an association request; one from %s closed",
                    self.receiver.channel_id,
                    len(self._routing),
                    address[0],
                )
                conn.close()
                continue
            task = loop.create_task(self._route(conn, address))
            self._routing.add(task)
            task.add_done_callback(self._routing.discard)

    async def _route(self, conn: socket.socket, address: Any) -> None:
        with contextlib.suppress(OSError):
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            head = await _peek_request(conn, self.options.acse_timeout)
        except (TimeoutError, OSError):
            head = None
        if head is None:  # closed, or silent for the ACSE timeout: no association was asked for
            conn.close()
            return
        request = _request_of(head)
        if self._server is not None and request is not None and _for_pynetdicom(request):
            conn.setblocking(True)
            self._server.process_request(conn, address)
            return
        if request is not None:
            await self._resolve_peer(request)
        peer = f"{address[0]}:{address[1]}"
        try:
            await asyncio.get_running_loop().connect_accepted_socket(
                lambda: StoreAssociation(self, peer, request), conn
            )
        except OSError:
            conn.close()

    # -- what the intake receiver asks (IntakeHost) --------------------------------------------------
    def accepts(self, abstract_syntax: str) -> bool:
        return abstract_syntax in self._storage or abstract_syntax == VERIFICATION

    def admit(self, request: pdu.AssociateRequest, address: str) -> Rejection | None:
        """None when the association may go on; else its rejection, after a Security Alert."""
        config = self.actor.config
        calling = request.calling_ae
        peer = config.peer(calling)
        reason = ""
        rejection = Rejection(pdu.REJECTED_PERMANENT, pdu.SERVICE_USER, pdu.CALLING_AE_NOT_RECOGNISED)
        if request.called_ae != config.ae_title:
            reason = f"called AE title {request.called_ae!r} is not ours"
            rejection = Rejection(pdu.REJECTED_PERMANENT, pdu.SERVICE_USER, pdu.CALLED_AE_NOT_RECOGNISED)
        elif peer is None and not config.accept_unknown_peers:
            reason = "calling AE title not recognised"
        elif (
            config.check_peer_address
            and peer is not None
            and peer.host
            and address.rsplit(":", 1)[0] not in self._resolved.get(peer.host, (0.0, {peer.host}))[1]
        ):
            reason = f"peer {calling!r} called from {address}, not from {peer.host}"
        elif len(self._live) + self._handed_over() >= self.options.max_associations:
            reason = f"more than {self.options.max_associations} associations (local limit exceeded)"
            rejection = Rejection(
                pdu.REJECTED_TRANSIENT, pdu.SERVICE_PROVIDER_PRESENTATION, pdu.LOCAL_LIMIT_EXCEEDED
            )
        if not reason:
            return None
        self._alert(calling, address, f"association from {calling!r} at {address} rejected: {reason}")
        return rejection

    async def _resolve_peer(self, request: pdu.AssociateRequest) -> None:
        """With ``check_peer_address``, the calling peer's ``host`` resolved before ``admit`` looks
        at it: on a resolver thread, not on the event loop (a slow DNS server would stall every
        channel), kept for a minute."""
        config = self.actor.config
        peer = config.peer(request.calling_ae) if config.check_peer_address else None
        if peer is None or not peer.host:
            return
        loop = asyncio.get_running_loop()
        cached = self._resolved.get(peer.host)
        if cached is not None and cached[0] > loop.time():
            return
        try:
            found = {str(info[4][0]) for info in await loop.getaddrinfo(peer.host, None)}
        except OSError:
            found = {peer.host}
        self._resolved[peer.host] = (loop.time() + RESOLVED_SECONDS, found)

    def _handed_over(self) -> int:
        return len(self._server.active_associations) if self._server is not None else 0

    def established(self, association: StoreAssociation) -> None:
        self._live.add(association)
        self._audit(
            audit.association_event(
                peer_ae=association.calling_ae, peer_address=association.address, us=self._us, start=True
            )
        )

    def ended(self, association: StoreAssociation, aborted: bool) -> None:
        self._live.discard(association)
        self._audit(
            audit.association_event(
                peer_ae=association.calling_ae,
                peer_address=association.address,
                us=self._us,
                start=False,
                description="aborted" if aborted else None,
            )
        )

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
        return self._may(self._peer_of(event.assoc)[0], service)

    def _may(self, ae_title: str, service: Service) -> Peer | bool | None:
        """The peer if it may use ``service``; True for any peer when unknown peers are accepted."""
        config = self.actor.config
        peer = config.peer(ae_title)
        if peer is None:
            return config.accept_unknown_peers
        return peer if service in peer.may else False

    # -- C-ECHO, C-STORE --------------------------------------------------------------------------------
    def _on_echo(self, event: Event) -> int:
        return SUCCESS

    def _on_store(self, event: Event) -> int | Dataset:
        """A C-STORE on an association pynetdicom serves (a C-GET's, or over TLS)."""
        ae_title, address = self._peer_of(event.assoc)
        request: Any = event.request
        try:
            received = Path(event.dataset_path)
        except AttributeError:  # not streamed (a test that turned chunking off)
            return _status(OUT_OF_RESOURCES, "the dataset was not received to a file")
        command = dimse.Command(
            field=dimse.C_STORE_RQ,
            message_id=int(request.MessageID or 0),
            has_dataset=True,
            sop_class_uid=str(request.AffectedSOPClassUID or ""),
            sop_instance_uid=str(request.AffectedSOPInstanceUID or ""),
        )
        assert self._loop is not None
        future = asyncio.run_coroutine_threadsafe(
            self.store_received(received, -1, command, ae_title, address), self._loop
        )
        try:
            status, comment = future.result(timeout=self.options.dimse_timeout)
        except Exception as exc:  # a timeout or a failure of the store: the C-STORE fails
            log.error("channel %s: C-STORE not stored: %s", self.receiver.channel_id, _name(exc))
            return _status(OUT_OF_RESOURCES, "the archive did not answer in time")
        return _status(status, comment) if status != SUCCESS else SUCCESS

    async def store_received(
        self, received: Path, fd: int, command: dimse.Command, ae_title: str, address: str
    ) -> tuple[int, str]:
        """Archive, store and index a received C-STORE; its status and Error Comment.

        ``received``: the whole PS3.10 file; ``fd``: its descriptor, still open and not yet synced
        (our receiver), or -1 (pynetdicom's, closed). The file is the archive's after this: placed
        into it, or removed.
        """
        try:
            if self._may(ae_title, "store") is False:
                return NOT_AUTHORISED, f"{ae_title} may not store here"
            try:
                # our receiver's file: its header read here, from the page cache, when the quick
                # reader can (header.py); else pydicom reads it on the worker thread
                known = self._header_now(fd, command) if fd >= 0 else None
                owned, fd = fd, -1  # the worker thread closes it, whatever happens
                info, path, size = await asyncio.to_thread(
                    self._archive_file, received, owned, command, known
                )
            except DatasetError as exc:
                await self._keep_refused(received, address, ae_title, str(exc))
                return (DOES_NOT_MATCH if exc.mismatch else CANNOT_UNDERSTAND), str(exc)
            except OSError as exc:
                log.error("channel %s: cannot archive an instance: %s", self.receiver.channel_id, exc)
                return OUT_OF_RESOURCES, f"the archive cannot keep the instance: {exc.strerror or exc}"
            return await self._index(StoredInstance(info, path, size, ae_title, address))
        finally:
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
            with contextlib.suppress(OSError):  # not archived (after a rename, nothing is there)
                os.unlink(received)

    @staticmethod
    def _header_now(fd: int, command: dimse.Command) -> InstanceInfo | None:
        """The header of a file just received, read quickly (DatasetError when refused), or None
        when it is pydicom's to read."""
        size = os.fstat(fd).st_size
        head = os.pread(fd, HEAD_BYTES, 0)
        tail = os.pread(fd, 8, max(size - 8, 0))
        try:
            return header_info(
                head,
                size,
                tail,
                sop_class_uid=command.sop_class_uid,
                sop_instance_uid=command.sop_instance_uid,
            )
        except Unreadable:
            return None

    def _archive_file(
        self, received: Path, fd: int, command: dimse.Command, info: InstanceInfo | None
    ) -> tuple[InstanceInfo, str, int]:
        """On a worker thread: the file synced and closed (when pydicom must read its header, on
        another thread meanwhile), then renamed into the archive and its folder synced."""
        if info is not None:
            _sync_and_close(fd)
        else:
            syncing = _SYNCING.submit(_sync_and_close, fd) if fd >= 0 else None
            try:
                info = read_header(
                    received, sop_class_uid=command.sop_class_uid, sop_instance_uid=command.sop_instance_uid
                )
            finally:
                if syncing is not None:
                    syncing.result()  # an OSError of the sync is the store's failure
        path, size = self.actor.archive.place(received, info, synced=fd >= 0)
        return info, path, size

    async def _index(self, stored: StoredInstance) -> tuple[int, str]:
        """The C-STORE stored as a message and indexed by the archive, in one commit."""
        info = stored.info
        header = Header(
            "|",
            "^",
            "~",
            "&",
            sending_application=stored.calling_ae,
            sending_facility=stored.peer.rsplit(":", 1)[0],
            receiving_application=self._us,
            message_code="C-STORE",
            trigger_event=info.modality,
            control_id=info.sop_instance_uid,
            identifiers=[Identifier(info.patient_id, info.issuer or info.issuer_oid, "PI", "PatientID")]
            if info.patient_id
            else [],
        )
        try:
            outcome, _ = await asyncio.wait_for(
                self.receiver.receive(
                    stored.to_json(), stored.peer, content_type=ContentType.JSON, header=header
                ),
                self.options.dimse_timeout,
            )
        except Exception as exc:  # a timeout or a failure of the store: the C-STORE fails
            log.error("channel %s: C-STORE not stored: %s", self.receiver.channel_id, _name(exc))
            return OUT_OF_RESOURCES, "the archive did not answer in time"
        answer: dict[str, Any] = {}
        if outcome.response:
            with contextlib.suppress(ValueError):
                answer = json.loads(outcome.response)
        if outcome.error is not None:
            answer.setdefault("error", outcome.error.text)
        if outcome.status is OutcomeStatus.ACCEPTED and answer.get("status") == "stored":
            return SUCCESS, ""
        return OUT_OF_RESOURCES, str(
            answer.get("reason") or answer.get("error") or "the instance was not stored"
        )

    async def _keep_refused(self, received: Path, address: str, ae_title: str, reason: str) -> None:
        """An errored record of a dataset the archive refused: its first bytes, for the auditors."""
        try:
            with received.open("rb") as f:
                head = f.read(64 * 1024)
        except OSError:
            head = b""
        try:
            await self.receiver.reject_unframed(head, address, f"C-STORE from {ae_title}: {reason}")
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


# fsync of received files, beside the thread that reads their headers (it waits on the disk, not
# on the GIL)
_SYNCING = ThreadPoolExecutor(max_workers=8, thread_name_prefix="dicom-fsync")


def _sync_and_close(fd: int) -> None:
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _listen(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:  # several hie run --workers processes share the port
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        listener.bind((host, port))
        listener.listen(128)
        listener.setblocking(False)
    except OSError:
        listener.close()
        raise
    return listener


async def _peek_request(conn: socket.socket, wait: float) -> bytes | None:
    """The connection's first PDU, read without taking it off the socket (``MSG_PEEK``): the
    receiver chosen for the association then reads it itself. Returns as soon as the whole PDU is
    there, or its first bytes when they are not an A-ASSOCIATE-RQ of sensible size; None when the
    peer closed first; TimeoutError after ``wait`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    conn.setblocking(False)
    pause = 0.001
    while True:
        try:
            data = conn.recv(MAX_CONTROL_PDU + 6, socket.MSG_PEEK)
        except BlockingIOError:
            data = None
        if data == b"":
            return None
        if data is not None and len(data) >= 6:
            need = 6 + int.from_bytes(data[2:6], "big")
            if data[0] != pdu.ASSOCIATE_RQ or need > MAX_CONTROL_PDU or len(data) >= need:
                return data
        left = deadline - loop.time()
        if left <= 0:
            raise TimeoutError
        if data:  # part of it: the rest is on its way (a peer trickling it gets fewer looks)
            await asyncio.sleep(min(left, pause))
            pause = min(pause * 2, 0.05)
            continue
        await _readable(conn, left)


async def _readable(conn: socket.socket, wait: float) -> None:
    loop = asyncio.get_running_loop()
    readable: asyncio.Future[None] = loop.create_future()

    def ready() -> None:
        if not readable.done():
            readable.set_result(None)

    loop.add_reader(conn.fileno(), ready)
    try:
        await asyncio.wait_for(readable, wait)
    finally:
        loop.remove_reader(conn.fileno())


def _request_of(head: bytes) -> pdu.AssociateRequest | None:
    """The A-ASSOCIATE-RQ peeked at; None when it is not one (our receiver aborts it)."""
    if head[0] != pdu.ASSOCIATE_RQ:
        return None
    try:
        return pdu.decode_associate_rq(head[6:])
    except pdu.PduError:
        return None


def _for_pynetdicom(request: pdu.AssociateRequest) -> bool:
    """Whether the association asks for what only pynetdicom serves here: Query/Retrieve, or
    SCP/SCU role selection (a C-GET requestor's storage contexts)."""
    return bool(request.roles) or any(c.abstract_syntax in QUERY_RETRIEVE for c in request.contexts)


def _addresses(host: str) -> set[str]:
    try:
        return {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
    except OSError:
        return {host}
