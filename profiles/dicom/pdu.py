"""The DICOM Upper Layer's protocol data units (PS3.8 §9.3): what the archive's own receiver reads
and writes on a storage association.

Only the acceptor's side: an A-ASSOCIATE-RQ is decoded (its presentation contexts and user
information), and the answers are built: A-ASSOCIATE-AC / -RJ, P-DATA-TF, A-RELEASE-RP, A-ABORT.
P-DATA-TF PDUs are not decoded here: the receiver reads them as a stream (``intake.py``), so that a
dataset of any size passes to its file without being held.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

__all__ = [
    "APPLICATION_CONTEXT",
    "AssociateRequest",
    "PduError",
    "PresentationContext",
    "abort",
    "associate_ac",
    "associate_rj",
    "decode_associate_rq",
    "p_data",
    "release_rp",
]

APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"  # the DICOM Application Context Name (PS3.7 A.2.1)

# PDU types (PS3.8 §9.3.1)
ASSOCIATE_RQ, ASSOCIATE_AC, ASSOCIATE_RJ = 0x01, 0x02, 0x03
P_DATA, RELEASE_RQ, RELEASE_RP, ABORT = 0x04, 0x05, 0x06, 0x07

# presentation context results in an A-ASSOCIATE-AC (PS3.8 §9.3.3.2)
ACCEPTED, USER_REJECTION, NO_REASON, ABSTRACT_SYNTAX_NOT_SUPPORTED, TRANSFER_SYNTAXES_NOT_SUPPORTED = range(5)

# A-ASSOCIATE-RJ (PS3.8 §9.3.4): result, source, reason
REJECTED_PERMANENT, REJECTED_TRANSIENT = 1, 2
SERVICE_USER, SERVICE_PROVIDER_ACSE, SERVICE_PROVIDER_PRESENTATION = 1, 2, 3
NO_REASON_GIVEN, CONTEXT_NOT_SUPPORTED, CALLING_AE_NOT_RECOGNISED, CALLED_AE_NOT_RECOGNISED = 1, 2, 3, 7
LOCAL_LIMIT_EXCEEDED = 2  # with SERVICE_PROVIDER_PRESENTATION

# A-ABORT (PS3.8 §9.3.8): source 0 the service user, 2 the service provider; provider's reasons
ABORT_USER, ABORT_PROVIDER = 0, 2
UNRECOGNISED_PDU, UNEXPECTED_PDU, INVALID_PARAMETER = 1, 2, 6

PROTOCOL_VERSION = 0x0001


class PduError(ValueError):
    """A PDU that does not follow PS3.8: the association is aborted (A-ABORT, invalid parameter)."""


@dataclass(frozen=True)
class PresentationContext:
    id: int
    abstract_syntax: str
    transfer_syntaxes: tuple[str, ...]


@dataclass
class AssociateRequest:
    called_ae: str
    calling_ae: str
    application_context: str = ""
    contexts: list[PresentationContext] = field(default_factory=list)
    max_length: int = 0  # the requestor's largest P-DATA PDU it receives; 0: no limit
    implementation_class_uid: str = ""
    implementation_version: str = ""
    roles: dict[str, tuple[bool, bool]] = field(default_factory=dict)  # SCP/SCU role selection by UID


def _uid(raw: bytes) -> str:
    return raw.rstrip(b"\x00 ").decode("ascii", "replace")


def _ae(raw: bytes) -> str:
    return raw.decode("ascii", "replace").strip()


def _items(body: bytes, start: int, what: str) -> list[tuple[int, bytes]]:
    """The (type, value) items from ``start``: one byte type, one reserved, two bytes length."""
    items: list[tuple[int, bytes]] = []
    pos = start
    while pos < len(body):
        if pos + 4 > len(body):
            raise PduError(f"{what}: an item is cut short at byte {pos}")
        kind, length = body[pos], int.from_bytes(body[pos + 2 : pos + 4], "big")
        end = pos + 4 + length
        if end > len(body):
            raise PduError(f"{what}: item 0x{kind:02X} is longer than what holds it")
        items.append((kind, body[pos + 4 : end]))
        pos = end
    return items


def decode_associate_rq(body: bytes) -> AssociateRequest:
    """An A-ASSOCIATE-RQ's variable part onwards (``body``: the PDU after its 6-byte header)."""
    if len(body) < 68:
        raise PduError("the A-ASSOCIATE-RQ is shorter than its fixed fields")
    request = AssociateRequest(called_ae=_ae(body[4:20]), calling_ae=_ae(body[20:36]))
    for kind, value in _items(body, 68, "A-ASSOCIATE-RQ"):
        if kind == 0x10:
            request.application_context = _uid(value)
        elif kind == 0x20:
            request.contexts.append(_context(value))
        elif kind == 0x50:
            _user_information(value, request)
        # other item types are ignored (PS3.8 §9.3.1: unrecognised items are skipped)
    if not request.application_context:
        raise PduError("the A-ASSOCIATE-RQ has no Application Context Name")
    if not request.contexts:
        raise PduError("the A-ASSOCIATE-RQ proposes no presentation context")
    return request


def _context(value: bytes) -> PresentationContext:
    if len(value) < 4:
        raise PduError("a Presentation Context item is cut short")
    abstract = ""
    transfers: list[str] = []
    for kind, sub in _items(value, 4, "Presentation Context"):
        if kind == 0x30:
            abstract = _uid(sub)
        elif kind == 0x40:
            transfers.append(_uid(sub))
    if not abstract or not transfers:
        raise PduError(f"presentation context {value[0]} lacks its abstract or transfer syntax")
    return PresentationContext(value[0], abstract, tuple(transfers))


def _user_information(value: bytes, request: AssociateRequest) -> None:
    for kind, sub in _items(value, 0, "User Information"):
        if kind == 0x51 and len(sub) == 4:
            request.max_length = int.from_bytes(sub, "big")
        elif kind == 0x52:
            request.implementation_class_uid = _uid(sub)
        elif kind == 0x55:
            request.implementation_version = _ae(sub)
        elif kind == 0x54 and len(sub) >= 4:
            length = int.from_bytes(sub[0:2], "big")
            if len(sub) >= 2 + length + 2:
                uid = _uid(sub[2 : 2 + length])
                request.roles[uid] = (bool(sub[2 + length]), bool(sub[3 + length]))
        # asynchronous operations window (0x53), extended negotiation (0x56, 0x57) and user
        # identity (0x58) are not taken up: the answer leaves them out, which means "not agreed"


def _item(kind: int, value: bytes) -> bytes:
    return struct.pack(">BBH", kind, 0, len(value)) + value


def _pdu(kind: int, body: bytes) -> bytes:
    return struct.pack(">BBI", kind, 0, len(body)) + body


def _padded_ae(title: str) -> bytes:
    return title.encode("ascii", "replace")[:16].ljust(16, b" ")


def associate_ac(
    request: AssociateRequest,
    results: list[tuple[int, int, str]],
    *,
    max_length: int,
    implementation_class_uid: str,
    implementation_version: str,
) -> bytes:
    """The A-ASSOCIATE-AC: ``results`` are (context id, result, transfer syntax) per proposed context."""
    head = (
        struct.pack(">HH", PROTOCOL_VERSION, 0)
        + _padded_ae(request.called_ae)
        + _padded_ae(request.calling_ae)
    )
    items = [_item(0x10, APPLICATION_CONTEXT.encode())]
    for context_id, result, transfer in results:
        items.append(_item(0x21, bytes((context_id, 0, result, 0)) + _item(0x40, transfer.encode())))
    user = (
        _item(0x51, max_length.to_bytes(4, "big"))
        + _item(0x52, implementation_class_uid.encode())
        + _item(0x55, implementation_version.encode()[:16])
    )
    items.append(_item(0x50, user))
    return _pdu(ASSOCIATE_AC, head + bytes(32) + b"".join(items))


def associate_rj(result: int, source: int, reason: int) -> bytes:
    return _pdu(ASSOCIATE_RJ, bytes((0, result, source, reason)))


def p_data(context_id: int, command: bool, fragments: list[bytes]) -> bytes:
    """One P-DATA-TF per fragment, the last marked last (message control header, PS3.8 E.2)."""
    out: list[bytes] = []
    for n, fragment in enumerate(fragments):
        header = (0x01 if command else 0x00) | (0x02 if n == len(fragments) - 1 else 0x00)
        pdv = struct.pack(">IBB", len(fragment) + 2, context_id, header) + fragment
        out.append(_pdu(P_DATA, pdv))
    return b"".join(out)


def release_rp() -> bytes:
    return _pdu(RELEASE_RP, bytes(4))


def abort(source: int = ABORT_PROVIDER, reason: int = 0) -> bytes:
    return _pdu(ABORT, bytes((0, 0, source, reason)))
