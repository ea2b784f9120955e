"""The syslog message of ITI-20 (ITI TF-2 §3.20.4.1; RFC 5424 The Syslog Protocol), read and written.

    SYSLOG-MSG = HEADER SP STRUCTURED-DATA [SP MSG]                              (RFC 5424 §6)
    HEADER     = PRI VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID

An audit message travels as the MSG: UTF-8 XML (a DICOM PS3.15 A.5 or RFC 3881 ``AuditMessage``),
after a byte-order mark. ITI-20 asks senders for facility 10 (security/authorization) and severity
5 or 4 and for MSGID ``IHE+RFC-3881``, but a repository "shall be prepared to deal appropriately
with any incoming PRI value", so neither is checked here. Reading works on bytes, before any
decoding: the header is ASCII by definition (PRINTUSASCII, %d33-126), the MSG whatever follows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = ["BOM", "MSGID", "SyslogFormatError", "SyslogMessage", "format_message", "parse"]

BOM = b"\xef\xbb\xbf"  # RFC 5424 §6.4: MSG-UTF8 starts with it
MSGID = "IHE+RFC-3881"  # ITI TF-2 §3.20.4.1.2: the MSGID of an audit message
NIL = "-"

# §6.2: PRI is 1-3 digits (0..191), VERSION a non-zero digit and up to two more; HOSTNAME, APP-NAME,
# PROCID and MSGID are NILVALUE or PRINTUSASCII of at most 255, 48, 128 and 32 octets.
_HEADER = re.compile(
    rb"<(?P<pri>\d{1,3})>(?P<version>[1-9]\d{0,2}) (?P<timestamp>[\x21-\x7e]+) "
    rb"(?P<hostname>[\x21-\x7e]{1,255}) (?P<app>[\x21-\x7e]{1,48}) (?P<procid>[\x21-\x7e]{1,128}) "
    rb"(?P<msgid>[\x21-\x7e]{1,32}) "
)
# §6.2.3: FULL-DATE "T" FULL-TIME, fractions of at most 6 digits, a time zone is required
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})")
_PRINTUSASCII = re.compile(r"[^\x21-\x7e]")


class SyslogFormatError(ValueError):
    """Bytes that are not an RFC 5424 SYSLOG-MSG; the text names the part that is wrong."""


@dataclass(frozen=True, slots=True)
class SyslogMessage:
    facility: int
    severity: int
    version: int
    timestamp: datetime | None  # None: NILVALUE
    hostname: str  # "" for NILVALUE, as the other header fields
    app_name: str
    procid: str
    msgid: str
    structured_data: str  # as written ("-" when there is none)
    msg: bytes  # the MSG, without its BOM


def parse(data: bytes) -> SyslogMessage:
    """An RFC 5424 SYSLOG-MSG; ``SyslogFormatError`` naming what is wrong."""
    m = _HEADER.match(data)
    if m is None:
        raise SyslogFormatError(_why_header(data))
    pri = int(m["pri"])
    if pri > 191:  # §6.2.1: facility 0..23, severity 0..7
        raise SyslogFormatError(f"PRI {pri} is out of range (0-191; RFC 5424 §6.2.1)")
    version = int(m["version"])
    if version != 1:
        raise SyslogFormatError(f"syslog VERSION {version}: only version 1 is known (RFC 5424 §6.2.2)")
    timestamp = _timestamp(m["timestamp"].decode("ascii"))
    end = _structured_data_end(data, m.end())
    structured = data[m.end() : end].decode("ascii")
    rest = data[end:]
    if rest and not rest.startswith(b" "):
        raise SyslogFormatError("STRUCTURED-DATA must be followed by a space and the MSG (RFC 5424 §6)")
    msg = rest[1:]
    if msg.startswith(BOM):
        msg = msg[len(BOM) :]
    return SyslogMessage(
        facility=pri >> 3,
        severity=pri & 7,
        version=version,
        timestamp=timestamp,
        hostname=_field(m["hostname"]),
        app_name=_field(m["app"]),
        procid=_field(m["procid"]),
        msgid=_field(m["msgid"]),
        structured_data=structured,
        msg=msg,
    )


def format_message(
    msg: bytes,
    *,
    hostname: str,
    app_name: str,
    procid: str = "",
    msgid: str = MSGID,
    timestamp: datetime | None = None,
    facility: int = 10,
    severity: int = 5,
) -> bytes:
    """A SYSLOG-MSG carrying ``msg`` (UTF-8, after a BOM), no STRUCTURED-DATA.

    ITI TF-2 §3.20.4.1.2: facility 10 (security/authorization), severity 5 (notice) by default.
    Header fields are cut to their RFC 5424 lengths and anything outside PRINTUSASCII becomes '_'.
    """
    when = timestamp or datetime.now(UTC)
    stamp = when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    head = " ".join(
        (
            f"<{facility * 8 + severity}>1",
            stamp,
            _header_field(hostname, 255),
            _header_field(app_name, 48),
            _header_field(procid, 128),
            _header_field(msgid, 32),
            NIL,
        )
    )
    return head.encode("ascii") + b" " + BOM + msg


def _field(raw: bytes) -> str:
    text = raw.decode("ascii")
    return "" if text == NIL else text


def _header_field(value: str, limit: int) -> str:
    value = _PRINTUSASCII.sub("_", value)[:limit]
    return value or NIL


def _timestamp(text: str) -> datetime | None:
    if text == NIL:
        return None
    if not _TIMESTAMP.fullmatch(text):
        raise SyslogFormatError(f"TIMESTAMP {text[:40]!r} is not an RFC 3339 date-time (RFC 5424 §6.2.3)")
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise SyslogFormatError(f"TIMESTAMP {text[:40]!r} is not a valid date-time") from None


def _structured_data_end(data: bytes, start: int) -> int:
    """Where STRUCTURED-DATA ends: NILVALUE, or SD-ELEMENTs ``[id name="value" ...]`` (§6.3), whose
    PARAM-VALUEs may hold ']' and '"' escaped with a backslash (§6.3.3)."""
    if data[start : start + 1] == b"-":
        return start + 1
    pos = start
    while data[pos : pos + 1] == b"[":
        pos = _skip_name(data, pos + 1)
        while data[pos : pos + 1] == b" ":
            pos = _skip_name(data, pos + 1)
            if data[pos : pos + 2] != b'="':
                raise SyslogFormatError(f'expected ="value" at octet {pos} (RFC 5424 §6.3.3)')
            pos += 2
            while True:
                if pos >= len(data):
                    raise SyslogFormatError("PARAM-VALUE without its closing quote (RFC 5424 §6.3.3)")
                c = data[pos]
                if c == 0x5C:  # backslash: the next octet is taken as is
                    pos += 2
                    continue
                pos += 1
                if c == 0x22:
                    break
        if data[pos : pos + 1] != b"]":
            raise SyslogFormatError(f"SD-ELEMENT not closed with ']' at octet {pos} (RFC 5424 §6.3.1)")
        pos += 1
    if pos == start:
        raise SyslogFormatError("STRUCTURED-DATA must be '-' or start with '[' (RFC 5424 §6.3)")
    return pos


def _skip_name(data: bytes, pos: int) -> int:
    """Past an SD-ID or PARAM-NAME: 1-32 PRINTUSASCII but '=', SP, ']' and '"' (§6.3.2, §6.3.3)."""
    start = pos
    while pos < len(data) and data[pos] not in b'= ]"' and 0x21 <= data[pos] <= 0x7E:
        pos += 1
    if pos == start or pos - start > 32:
        raise SyslogFormatError(f"bad SD-NAME at octet {start} (RFC 5424 §6.3.3)")
    return pos


def _why_header(data: bytes) -> str:
    """The first part of the HEADER that is wrong, for the errored record."""
    if not data:
        return "empty syslog message"
    if not data.startswith(b"<"):
        return "not an RFC 5424 syslog message: it does not start with <PRI>"
    pri = re.match(rb"<(\d{1,3})>", data)
    if pri is None:
        return "not an RFC 5424 syslog message: PRI is not <1-3 digits> (RFC 5424 §6.2.1)"
    after = data[pri.end() : pri.end() + 2]
    if not re.match(rb"[1-9]", after):
        # "<85>Dec  5 10:00:00 host app: ..." is the older BSD format (RFC 3164)
        return "not an RFC 5424 syslog message: no VERSION after PRI (an RFC 3164 BSD syslog message?)"
    return (
        "not an RFC 5424 syslog message: the HEADER needs TIMESTAMP HOSTNAME APP-NAME PROCID MSGID, "
        "each NILVALUE '-' or printable ASCII, separated by single spaces (RFC 5424 §6.2)"
    )
