"""What the archive reads of a received instance, read from the first bytes of its PS3.10 file
without building a pydicom dataset: the identifying and descriptive elements, and where the pixel
data starts.

The receiver has the file's first 64 KB in the page cache when the last fragment arrives; reading
them here costs about a tenth of ``pydicom.dcmread`` and can run on the event loop. Little endian
datasets (implicit or explicit VR: every transfer syntax the archive takes but two) are read here;
a big endian or deflated one, a header longer than what was read, or anything this reader does not
follow raises ``Unreadable``, and the caller reads the file with pydicom instead, which gives the
sender the precise reason when the dataset is really broken. Text values are decoded with
pydicom's character set handling (``Specific Character Set``), as ``dcmread`` would.
"""

from __future__ import annotations

import struct
from collections.abc import Set
from dataclasses import dataclass

from pydicom.charset import convert_encodings, decode_bytes

__all__ = ["Header", "Unreadable", "scan"]

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
DEFLATED = "1.2.840.10008.1.2.1.99"
UNDEFINED = 0xFFFFFFFF
PIXEL_DATA = 0x7FE00010
QUALIFIERS = 0x00100024  # Issuer of Patient ID Qualifiers Sequence
UNIVERSAL_ENTITY_ID = 0x00400032
CHARSET = 0x00080005
_ITEM, _ITEM_END, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT"}
_TEXT_VRS = {"LO", "SH", "PN", "ST", "LT", "UT", "UC"}  # decoded per the Specific Character Set

# the elements InstanceInfo keeps, with their VR (for implicit VR datasets)
WANTED: dict[int, str] = {
    CHARSET: "CS",
    0x00080016: "UI",  # SOP Class UID
    0x00080018: "UI",  # SOP Instance UID
    0x00080020: "DA",  # Study Date
    0x00080030: "TM",  # Study Time
    0x00080050: "SH",  # Accession Number
    0x00080060: "CS",  # Modality
    0x00080090: "PN",  # Referring Physician's Name
    0x00081030: "LO",  # Study Description
    0x0008103E: "LO",  # Series Description
    0x00100010: "PN",  # Patient's Name
    0x00100020: "LO",  # Patient ID
    0x00100021: "LO",  # Issuer of Patient ID
    0x00100030: "DA",  # Patient's Birth Date
    0x00100040: "CS",  # Patient's Sex
    0x00180015: "CS",  # Body Part Examined
    0x0020000D: "UI",  # Study Instance UID
    0x0020000E: "UI",  # Series Instance UID
    0x00200010: "SH",  # Study ID
    0x00200011: "IS",  # Series Number
    0x00200013: "IS",  # Instance Number
}


class Unreadable(ValueError):
    """Not for this reader: read the file with pydicom."""


@dataclass
class Header:
    transfer_syntax: str
    values: dict[int, str]  # decoded, stripped; multiple values joined with a backslash
    issuer_oid: str
    pixel_data: tuple[int, int, int] | None  # (offset, header length, value length) when present


def scan(head: bytes, size: int) -> Header:
    """Read ``head``, the first bytes of a PS3.10 file of ``size`` bytes."""
    try:
        return _scan(head, size)
    except (struct.error, IndexError, UnicodeDecodeError, LookupError) as exc:
        raise Unreadable(f"{type(exc).__name__}: {exc}") from exc


def _scan(head: bytes, size: int) -> Header:
    if len(head) < 144 or head[128:132] != b"DICM":
        raise Unreadable("no DICM prefix")
    group, element, vr = struct.unpack_from("<HH2s", head, 132)
    if (group, element, vr) != (0x0002, 0x0000, b"UL"):
        raise Unreadable("no File Meta Information Group Length")
    start = 144 + struct.unpack_from("<I", head, 140)[0]
    if start > len(head):
        raise Unreadable("the file meta information is longer than what was read")
    meta: dict[int, bytes] = {}
    _walk(head, 144, start, False, {0x00020010}, meta, 1)
    transfer = meta.get(0x00020010, b"").rstrip(b"\x00 ").decode("ascii")
    if not transfer or transfer in (EXPLICIT_BE, DEFLATED):
        raise Unreadable(f"transfer syntax {transfer or '(none)'}")
    raw: dict[int, bytes] = {}
    _, found = _walk(head, start, len(head), transfer == IMPLICIT_LE, WANTED.keys() | {QUALIFIERS}, raw, 0)
    if found is None and len(head) < size:
        raise Unreadable("the header goes on beyond what was read")
    charset = raw.get(CHARSET, b"").decode("ascii").strip()
    encodings = convert_encodings([c.strip() for c in charset.split("\\")] if charset else ["ISO_IR 6"])
    values = {tag: _value(raw[tag], WANTED[tag], encodings) for tag in WANTED if tag in raw}
    issuer_oid = ""
    if QUALIFIERS in raw:
        issuer_oid = _value(raw[QUALIFIERS], "UT", encodings)[:64]
    return Header(transfer, values, issuer_oid, found)


def _value(raw: bytes, vr: str, encodings: list[str]) -> str:
    if vr in _TEXT_VRS:
        delimiters = {0x5C, 0x5E, 0x3D} if vr == "PN" else {0x5C}
        text = decode_bytes(raw, encodings, delimiters)
    else:
        text = raw.decode("ascii")
    return text.rstrip("\x00").strip()


def _element(buf: bytes, pos: int, implicit: bool) -> tuple[int, bytes, int, int]:
    """The element header at ``pos``: (tag, VR or b"" when implicit, value length, header length)."""
    group, element = struct.unpack_from("<HH", buf, pos)
    if implicit or group == 0xFFFE:  # items and delimiters have no VR in any transfer syntax
        return group << 16 | element, b"", struct.unpack_from("<I", buf, pos + 4)[0], 8
    vr = buf[pos + 4 : pos + 6]
    if vr in _LONG_VRS:
        return group << 16 | element, vr, struct.unpack_from("<I", buf, pos + 8)[0], 12
    return group << 16 | element, vr, struct.unpack_from("<H", buf, pos + 6)[0], 8


def _walk(
    buf: bytes, pos: int, end: int, implicit: bool, wanted: Set[int], out: dict[int, bytes], depth: int
) -> tuple[int, tuple[int, int, int] | None]:
    """Read elements from ``pos`` to ``end`` (or to the item/sequence delimiter that ends them),
    keeping the ``wanted`` values in ``out``; returns where it stopped and, at depth 0, where the
    Pixel Data is (reading stops there). A nested sequence's items are read for its
    UNIVERSAL_ENTITY_ID only: the Issuer of Patient ID Qualifiers's first item's is kept under
    QUALIFIERS."""
    while pos + 8 <= end:
        tag, vr, length, header = _element(buf, pos, implicit)
        if tag in (_ITEM_END, _SEQUENCE_END):
            return pos + 8, None
        if tag == PIXEL_DATA and depth == 0:
            return pos, (pos, header, length)
        value = pos + header
        if length == UNDEFINED or vr == b"SQ" or (implicit and tag == QUALIFIERS):
            inner = implicit or vr == b"UN"
            pos = _sequence(buf, value, end, length, inner, out if tag == QUALIFIERS else None, depth + 1)
            continue
        if value + length > end:
            raise Unreadable("an element runs beyond what was read")
        if tag in wanted:
            out[tag] = buf[value : value + length]
        pos = value + length
    if depth == 0 and pos < end:
        raise Unreadable("the header ends inside an element")
    return pos, None


def _sequence(
    buf: bytes, pos: int, end: int, length: int, implicit: bool, keep: dict[int, bytes] | None, depth: int
) -> int:
    """Skip a sequence's items; return where the sequence ends. ``keep``: its first item's
    Universal Entity ID is kept there under QUALIFIERS."""
    stop = end if length == UNDEFINED else pos + length
    if stop > end:
        raise Unreadable("a sequence runs beyond what was read")
    first = True
    while pos + 8 <= stop:
        group, element, item_length = struct.unpack_from("<HHI", buf, pos)
        tag = group << 16 | element
        pos += 8
        if tag == _SEQUENCE_END:
            return pos
        if tag != _ITEM:
            raise Unreadable(f"({group:04X},{element:04X}) where a sequence item was expected")
        item_end = stop if item_length == UNDEFINED else pos + item_length
        found: dict[int, bytes] = {}
        pos, _ = _walk(buf, pos, item_end, implicit, {UNIVERSAL_ENTITY_ID}, found, depth)
        if item_length != UNDEFINED:
            pos = item_end
        if keep is not None and first and UNIVERSAL_ENTITY_ID in found:
            keep[QUALIFIERS] = found[UNIVERSAL_ENTITY_ID]
        first = False
    if length == UNDEFINED:
        raise Unreadable("a sequence of undefined length runs beyond what was read")
    return stop
