"""The archive's own receiver for storage associations: the DICOM Upper Layer on asyncio, C-STORE
datasets streamed from the socket into their files.

A PACS pushing a study opens an association that proposes storage SOP classes (and Verification)
and sends C-STOREs one after another. The source (``source.py``) hands every such association to
this receiver; associations that ask for anything else (C-FIND, C-MOVE, C-GET, role selection) or
arrive over TLS are served by pynetdicom. This receiver runs on the engine's event loop: no thread
per association, no polling, and each P-DATA fragment is written to its file as it arrives (one
copy), so a dataset of any size passes in constant memory.

What a C-STORE costs here: its bytes written to a PS3.10 file in the archive's ``.incoming``
folder (file meta information first, from the request and the presentation context), then, on a
worker thread, the file synced, its header read and checked, the file renamed into the archive;
then the C-STORE stored and indexed in one group commit. Only then is the C-STORE-RSP sent
(``DicomSource.store_received``). Requests of one association are answered in order.

Protocol errors (a PDU that is not what PS3.8 allows at that point, a command set that cannot be
read, data without a C-STORE) abort the association (A-ABORT, source: service provider) and are
logged; the listener serves everyone else. An association that stays silent for ``idle_timeout``
seconds while nothing is being stored is aborted.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import struct
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, cast

from profiles.dicom import dimse, pdu
from profiles.dicom.sop_classes import TRANSFER_SYNTAXES

__all__ = ["IntakeHost", "Rejection", "StoreAssociation", "file_meta"]

log = logging.getLogger(__name__)

VERIFICATION = "1.2.840.10008.1.1"
OUT_OF_RESOURCES = 0xA700
CANNOT_UNDERSTAND = 0xC000
MAX_CONTROL_PDU = 64 * 1024  # an A-ASSOCIATE-RQ with 128 presentation contexts is about 12 KB
MAX_COMMAND = 64 * 1024
_numbers = itertools.count(int.from_bytes(os.urandom(4), "big"))  # received files' names in .incoming


@dataclass(frozen=True)
class Rejection:
    """An A-ASSOCIATE-RJ: result (permanent/transient), source and reason (PS3.8 §9.3.4)."""

    result: int
    source: int
    reason: int


class IntakeHost(Protocol):
    """What the receiver needs from its source."""

    ae_title: str
    implementation_class_uid: str
    implementation_version: str
    max_pdu: int
    idle_timeout: float
    incoming: Path

    def accepts(self, abstract_syntax: str) -> bool: ...

    def admit(self, request: pdu.AssociateRequest, address: str) -> Rejection | None: ...

    def established(self, association: StoreAssociation) -> None: ...

    def ended(self, association: StoreAssociation, aborted: bool) -> None: ...

    async def store_received(
        self, received: Path, fd: int, command: dimse.Command, ae_title: str, address: str
    ) -> tuple[int, str]: ...


def file_meta(
    sop_class_uid: str, sop_instance_uid: str, transfer_syntax: str, host: IntakeHost, source_ae: str
) -> bytes:
    """A PS3.10 file's preamble, prefix and File Meta Information (group 0002, Explicit VR Little
    Endian), written before the received dataset's bytes."""

    def short(tag: int, vr: bytes, value: bytes, pad: bytes) -> bytes:
        if len(value) % 2:
            value += pad
        return struct.pack("<HH", 0x0002, tag) + vr + struct.pack("<H", len(value)) + value

    body = (
        struct.pack("<HH", 0x0002, 0x0001)
        + b"OB\x00\x00"
        + struct.pack("<I", 2)
        + b"\x00\x01"
        + short(0x0002, b"UI", sop_class_uid.encode(), b"\x00")
        + short(0x0003, b"UI", sop_instance_uid.encode(), b"\x00")
        + short(0x0010, b"UI", transfer_syntax.encode(), b"\x00")
        + short(0x0012, b"UI", host.implementation_class_uid.encode(), b"\x00")
        + short(0x0013, b"SH", host.implementation_version.encode()[:16], b" ")
        + short(0x0016, b"AE", source_ae.encode("ascii", "replace")[:16], b" ")
    )
    length = struct.pack("<HH", 0x0002, 0x0000) + b"UL" + struct.pack("<HI", 4, len(body))
    return bytes(128) + b"DICM" + length + body


@dataclass
class _Incoming:
    """A C-STORE whose dataset is arriving: its command, its context and its file."""

    command: dimse.Command
    context_id: int
    path: Path
    fd: int
    failed: str = ""  # a write that failed (a full disk): the rest is read and dropped


class StoreAssociation(asyncio.Protocol):
    def __init__(self, host: IntakeHost, address: str, peeked: pdu.AssociateRequest | None = None) -> None:
        """``peeked``: the A-ASSOCIATE-RQ as the source already decoded it (the same bytes, which
        this protocol still reads off the socket), so that it is not decoded twice."""
        self.host = host
        self.address = address
        self._peeked = peeked
        self.calling_ae = ""
        self.established_ = False
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self._buffer = b""  # an incomplete PDU or PDV header
        self._pdu_left = 0  # bytes left of the P-DATA-TF being read
        self._pdv_left = 0  # bytes left of the PDV being read
        self._pdv_context = 0
        self._pdv_flags = 0
        self._command = bytearray()
        self._command_context = 0
        self._incoming: _Incoming | None = None
        self._contexts: dict[int, tuple[str, str]] = {}  # accepted: id -> (abstract, transfer syntax)
        self._peer_max = 0
        self._chain: asyncio.Task[None] | None = None  # the requests being answered, in order
        self._closing = False
        self._released = False
        self._last_heard = self._loop.time()
        self._idle: asyncio.TimerHandle | None = None

    # -- transport ---------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._arm_idle(self.host.idle_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        if self._idle is not None:
            self._idle.cancel()
        self._drop_incoming()
        if self.established_:
            self.established_ = False
            self.host.ended(self, aborted=not self._released)

    def data_received(self, data: bytes) -> None:
        self._last_heard = self._loop.time()
        if self._closing:
            return
        if self._buffer:
            data, self._buffer = self._buffer + data, b""
        try:
            self._read(memoryview(data))
        except (pdu.PduError, dimse.CommandError) as exc:
            self._protocol_error(str(exc))

    def _read(self, data: memoryview) -> None:
        pos, end = 0, len(data)
        while pos < end and not self._closing:
            if self._pdv_left:  # inside a PDV's value: straight to its file or command buffer
                n = min(self._pdv_left, end - pos)
                self._value(data[pos : pos + n])
                pos += n
                self._pdv_left -= n
                self._pdu_left -= n
                if not self._pdv_left:
                    self._pdv_done()
            elif self._pdu_left:  # at a PDV item's header within a P-DATA-TF
                if self._pdu_left < 6:
                    raise pdu.PduError(f"{self._pdu_left} bytes left in a P-DATA-TF: not a PDV item")
                if end - pos < 6:
                    break
                length, context, flags = struct.unpack_from(">IBB", data, pos)
                if length < 2 or length + 4 > self._pdu_left:
                    raise pdu.PduError(f"a PDV item of {length} bytes does not fit its P-DATA-TF")
                pos += 6
                self._pdu_left -= 6
                self._pdv_left, self._pdv_context, self._pdv_flags = length - 2, context, flags
                self._pdv_started()
                if not self._pdv_left:
                    self._pdv_done()
            else:  # at a PDU's header
                if end - pos < 6:
                    break
                kind, length = data[pos], int.from_bytes(data[pos + 2 : pos + 6], "big")
                if kind == pdu.P_DATA:
                    if not self.established_:
                        raise pdu.PduError("P-DATA-TF before the association was accepted")
                    if self.host.max_pdu and length > self.host.max_pdu:
                        raise pdu.PduError(
                            f"a P-DATA-TF of {length} bytes, above the agreed {self.host.max_pdu}"
                        )
                    if length < 6:
                        raise pdu.PduError("an empty P-DATA-TF")
                    self._pdu_left = length
                    pos += 6
                    continue
                if length > MAX_CONTROL_PDU:
                    raise pdu.PduError(f"a PDU of type 0x{kind:02X} and {length} bytes")
                if end - pos < 6 + length:
                    break
                self._control(kind, bytes(data[pos + 6 : pos + 6 + length]))
                pos += 6 + length
        if pos < end and not self._closing:
            self._buffer = bytes(data[pos:])

    # -- PDVs ----------------------------------------------------------------------------------------
    def _pdv_started(self) -> None:
        command = bool(self._pdv_flags & 0x01)
        if self._pdv_context not in self._contexts:
            raise pdu.PduError(f"a PDV on presentation context {self._pdv_context}, which was not accepted")
        if command:
            if self._incoming is not None:
                raise pdu.PduError("a command before the previous C-STORE's dataset ended")
            if not self._command:
                self._command_context = self._pdv_context
        elif self._incoming is None:
            raise pdu.PduError("a dataset fragment without a C-STORE request before it")
        elif self._pdv_context != self._incoming.context_id:
            raise pdu.PduError("a dataset fragment on another presentation context than its request")

    def _value(self, chunk: memoryview) -> None:
        if self._pdv_flags & 0x01:
            if len(self._command) + len(chunk) > MAX_COMMAND:
                raise pdu.PduError("a command set larger than 64 KB")
            self._command += chunk
            return
        assert self._incoming is not None
        self._write(self._incoming, chunk)

    @staticmethod
    def _write(incoming: _Incoming, chunk: memoryview) -> None:
        if incoming.failed:
            return
        try:
            while chunk:
                written = os.write(incoming.fd, chunk)
                chunk = chunk[written:]
        except OSError as exc:
            incoming.failed = exc.strerror or str(exc)

    def _pdv_done(self) -> None:
        if not self._pdv_flags & 0x02:
            return  # more fragments follow
        if self._pdv_flags & 0x01:
            raw, self._command = bytes(self._command), bytearray()
            self._on_command(dimse.decode(raw), self._command_context)
        else:
            incoming, self._incoming = self._incoming, None
            assert incoming is not None
            self._then(self._answer_store(incoming))

    def _on_command(self, command: dimse.Command, context_id: int) -> None:
        abstract = self._contexts[context_id][0]
        if command.field == dimse.C_ECHO_RQ:
            if command.has_dataset:
                raise pdu.PduError("a C-ECHO request with a dataset")
            self._then(self._answer(context_id, dimse.echo_rsp(command)))
        elif command.field == dimse.C_STORE_RQ:
            if not command.has_dataset:
                raise pdu.PduError("a C-STORE request without a dataset")
            if abstract == VERIFICATION:
                raise pdu.PduError("a C-STORE request on the Verification presentation context")
            self._open(command, context_id)
        elif command.field == dimse.C_CANCEL_RQ:
            pass  # nothing here runs long enough to be cancelled
        else:
            raise pdu.PduError(f"command 0x{command.field:04X} on a storage association")

    def _open(self, command: dimse.Command, context_id: int) -> None:
        transfer = self._contexts[context_id][1]
        sop_class = command.sop_class_uid or self._contexts[context_id][0]
        path = self.host.incoming / f"{os.getpid()}-{next(_numbers)}.part"
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)  # read back for its header
        except OSError as exc:  # the dataset is read and dropped; the C-STORE fails (0xA700)
            self._incoming = _Incoming(command, context_id, Path(), -1, exc.strerror or str(exc))
            return
        self._incoming = incoming = _Incoming(command, context_id, path, fd)
        head = file_meta(sop_class, command.sop_instance_uid, transfer, self.host, self.calling_ae)
        self._write(incoming, memoryview(head))

    # -- answers, in order -----------------------------------------------------------------------------
    def _then(self, step: Coroutine[Any, Any, None]) -> None:
        previous = self._chain

        async def run() -> None:
            if previous is not None:
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await previous
            await step

        self._chain = self._loop.create_task(run())

    async def _answer(self, context_id: int, command: bytes) -> None:
        self._send(pdu.p_data(context_id, True, self._fragments(command)))

    async def _answer_store(self, incoming: _Incoming) -> None:
        command = incoming.command
        if incoming.failed:
            _discard(incoming)
            status, comment = OUT_OF_RESOURCES, f"the archive cannot write the instance: {incoming.failed}"
        else:
            try:  # the file is the host's from here: archived, or removed
                status, comment = await self.host.store_received(
                    incoming.path, incoming.fd, command, self.calling_ae, self.address
                )
            except Exception as exc:  # a store failure: the C-STORE fails, the association goes on
                log.error("DICOM: C-STORE from %s not stored: %s", self.calling_ae, type(exc).__name__)
                status, comment = OUT_OF_RESOURCES, "the archive could not store the instance"
        self._send(
            pdu.p_data(incoming.context_id, True, self._fragments(dimse.store_rsp(command, status, comment)))
        )

    def _fragments(self, command: bytes) -> list[bytes]:
        size = self._peer_max - 6 if self._peer_max else len(command)
        size = max(size, 1)
        return [command[i : i + size] for i in range(0, len(command), size)] or [b""]

    def _send(self, data: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    # -- association control -----------------------------------------------------------------------
    def _control(self, kind: int, body: bytes) -> None:
        if kind == pdu.ASSOCIATE_RQ and not self.established_:
            self._associate(self._peeked or pdu.decode_associate_rq(body))
        elif kind == pdu.RELEASE_RQ and self.established_:
            self._then(self._release())
        elif kind == pdu.ABORT:
            self._close()
        else:
            raise pdu.PduError(f"an unexpected PDU (type 0x{kind:02X})")

    def _associate(self, request: pdu.AssociateRequest) -> None:
        self.calling_ae = request.calling_ae
        rejection = self.host.admit(request, self.address)
        if rejection is None and request.application_context != pdu.APPLICATION_CONTEXT:
            rejection = Rejection(pdu.REJECTED_PERMANENT, pdu.SERVICE_USER, pdu.CONTEXT_NOT_SUPPORTED)
        if rejection is not None:
            self._send(pdu.associate_rj(rejection.result, rejection.source, rejection.reason))
            self._close()
            return
        results: list[tuple[int, int, str]] = []
        for context in request.contexts:
            if not self.host.accepts(context.abstract_syntax):
                results.append((context.id, pdu.ABSTRACT_SYNTAX_NOT_SUPPORTED, context.transfer_syntaxes[0]))
                continue
            transfer = next((t for t in context.transfer_syntaxes if t in TRANSFER_SYNTAXES), None)
            if transfer is None:
                results.append(
                    (context.id, pdu.TRANSFER_SYNTAXES_NOT_SUPPORTED, context.transfer_syntaxes[0])
                )
                continue
            self._contexts[context.id] = (context.abstract_syntax, transfer)
            results.append((context.id, pdu.ACCEPTED, transfer))
        self._peer_max = request.max_length
        self._send(
            pdu.associate_ac(
                request,
                results,
                max_length=self.host.max_pdu,
                implementation_class_uid=self.host.implementation_class_uid,
                implementation_version=self.host.implementation_version,
            )
        )
        self.established_ = True
        self.host.established(self)

    async def _release(self) -> None:
        self._released = True
        self._send(pdu.release_rp())
        self._close()

    def abort(self, reason: int = 0) -> None:
        """Abort the association (A-ABORT from the service provider) and close the connection."""
        self._send(pdu.abort(pdu.ABORT_PROVIDER, reason))
        self._close()

    def _protocol_error(self, reason: str) -> None:
        log.warning(
            "DICOM: association from %s at %s aborted: %s", self.calling_ae or "?", self.address, reason
        )
        self.abort(pdu.INVALID_PARAMETER)

    def _close(self) -> None:
        self._closing = True
        if self._transport is not None:
            self._transport.close()

    def _drop_incoming(self) -> None:
        incoming, self._incoming = self._incoming, None
        if incoming is not None:
            _discard(incoming)

    # -- idle timeout ------------------------------------------------------------------------------------
    def _arm_idle(self, delay: float) -> None:
        self._idle = self._loop.call_later(delay, self._check_idle)

    def _check_idle(self) -> None:
        if self._closing:
            return
        busy = self._chain is not None and not self._chain.done()
        silent = self._loop.time() - self._last_heard
        if busy or silent < self.host.idle_timeout:
            self._arm_idle(self.host.idle_timeout - (0 if busy else silent))
            return
        log.warning(
            "DICOM: association from %s at %s aborted: silent for %.0f s",
            self.calling_ae or "?",
            self.address,
            silent,
        )
        self.abort()


def _discard(incoming: _Incoming) -> None:
    if incoming.fd < 0:
        return
    with contextlib.suppress(OSError):
        os.close(incoming.fd)
    with contextlib.suppress(OSError):
        incoming.path.unlink()
