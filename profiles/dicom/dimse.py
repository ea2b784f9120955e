"""DIMSE command sets (PS3.7 §9.3, §E.1) as the archive's receiver reads and answers them: group
0000 elements in Implicit VR Little Endian, whatever the presentation context's transfer syntax.

Only what a storage association carries is built here: the C-STORE and C-ECHO responses.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

__all__ = ["Command", "CommandError", "decode", "echo_rsp", "store_rsp"]

C_STORE_RQ, C_STORE_RSP = 0x0001, 0x8001
C_ECHO_RQ, C_ECHO_RSP = 0x0030, 0x8030
C_CANCEL_RQ = 0x0FFF
NO_DATASET = 0x0101

# the group 0000 elements read here (PS3.7 E.1-1)
_SOP_CLASS, _FIELD, _MESSAGE_ID, _DATASET_TYPE = 0x0002, 0x0100, 0x0110, 0x0800
_SOP_INSTANCE, _PRIORITY, _MOVE_ORIGINATOR_AE = 0x1000, 0x0700, 0x1030
_US = {_FIELD, _MESSAGE_ID, _DATASET_TYPE, _PRIORITY}


class CommandError(ValueError):
    """A command set that cannot be read."""


@dataclass(frozen=True)
class Command:
    field: int
    message_id: int
    has_dataset: bool
    sop_class_uid: str = ""
    sop_instance_uid: str = ""
    move_originator: str = ""


def decode(raw: bytes) -> Command:
    values: dict[int, bytes] = {}
    pos = 0
    while pos < len(raw):
        if pos + 8 > len(raw):
            raise CommandError("the command set ends inside an element's header")
        group, element, length = struct.unpack_from("<HHI", raw, pos)
        pos += 8
        if group != 0x0000:
            raise CommandError(f"the command set holds an element of group {group:04X}")
        if pos + length > len(raw):
            raise CommandError(f"element (0000,{element:04X}) is longer than the command set")
        values[element] = raw[pos : pos + length]
        pos += length
    if _FIELD not in values:
        raise CommandError("the command set has no Command Field (0000,0100)")
    numbers: dict[int, int] = {}
    for tag in _US & values.keys():
        if len(values[tag]) != 2:
            raise CommandError(f"(0000,{tag:04X}) is not a 2-byte unsigned short")
        numbers[tag] = int.from_bytes(values[tag], "little")
    return Command(
        field=numbers[_FIELD],
        message_id=numbers.get(_MESSAGE_ID, 0),
        has_dataset=numbers.get(_DATASET_TYPE, NO_DATASET) != NO_DATASET,
        sop_class_uid=_text(values.get(_SOP_CLASS)),
        sop_instance_uid=_text(values.get(_SOP_INSTANCE)),
        move_originator=_text(values.get(_MOVE_ORIGINATOR_AE)),
    )


def _text(raw: bytes | None) -> str:
    return raw.rstrip(b"\x00 ").decode("ascii", "replace") if raw else ""


def _element(element: int, value: bytes) -> bytes:
    return struct.pack("<HHI", 0x0000, element, len(value)) + value


def _ui(value: str) -> bytes:
    raw = value.encode("ascii")
    return raw + b"\x00" if len(raw) % 2 else raw


def _lo(value: str) -> bytes:
    raw = value.encode("ascii", "replace")[:64]
    return raw + b" " if len(raw) % 2 else raw


def _us(value: int) -> bytes:
    return value.to_bytes(2, "little")


def _response(field: int, request: Command, status: int, comment: str) -> bytes:
    body = [_element(_SOP_CLASS, _ui(request.sop_class_uid)) if request.sop_class_uid else b""]
    body += [
        _element(_FIELD, _us(field)),
        _element(0x0120, _us(request.message_id)),  # Message ID Being Responded To
        _element(_DATASET_TYPE, _us(NO_DATASET)),
        _element(0x0900, _us(status)),
    ]
    if comment:
        body.append(_element(0x0902, _lo(comment)))  # Error Comment
    if request.sop_instance_uid:
        body.append(_element(_SOP_INSTANCE, _ui(request.sop_instance_uid)))
    joined = b"".join(body)
    return _element(0x0000, len(joined).to_bytes(4, "little")) + joined


def store_rsp(request: Command, status: int, comment: str = "") -> bytes:
    return _response(C_STORE_RSP, request, status, comment)


def echo_rsp(request: Command, status: int = 0x0000) -> bytes:
    return _response(C_ECHO_RSP, request, status, "")
