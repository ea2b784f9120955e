"""HL7 v2 acknowledgements: building ours (original mode, HL7 v2.5 §2.9.2) and checking theirs.

MSA-1 is AA/AE/AR, MSA-2 echoes the received MSH-10. For AE/AR an ERR segment names the problem:
ERR-2 location (``SEG^seq^field``), ERR-3 error code from table 0357, ERR-4 severity, ERR-8 the
text for a person. Senders older than v2.5 do not know ERR-2..8, so ERR-1 carries the same in the
v2.3.1 layout (location^code&text&HL70357).
"""

from __future__ import annotations

import functools
import itertools
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from engine.errors import MessageError
from engine.hl7v2.peek import Header, segments

__all__ = [
    "AckCode",
    "ParsedAck",
    "build_ack",
    "build_response",
    "err_segment",
    "escape",
    "msa",
    "new_control_id",
    "parse_ack",
]

AckCode = str  # "AA" | "AE" | "AR"

_TABLE_0357 = {
    "0": "Message accepted",
    "100": "Segment sequence error",
    "101": "Required field missing",
    "102": "Data type error",
    "103": "Table value not found",
    "200": "Unsupported message type",
    "201": "Unsupported event code",
    "202": "Unsupported processing id",
    "203": "Unsupported version id",
    "204": "Unknown key identifier",
    "205": "Duplicate key identifier",
    "206": "Application record locked",
    "207": "Application internal error",
}

_counter = itertools.count(1)
_prefix = f"{os.getpid() % 100000:05d}"


def _escape(text: str) -> str:
    """HL7 escape sequences (§2.7.4) for free text placed in a field."""
    return (
        text.replace("\\", "\\E\\")
        .replace("|", "\\F\\")
        .replace("^", "\\S\\")
        .replace("&", "\\T\\")
        .replace("~", "\\R\\")
        .replace("\r", " ")
        .replace("\n", " ")
    )


def _ack_control_id() -> str:
    return f"ACK{_prefix}{next(_counter)}"


# MSH-7 of our ACKs has a resolution of one second; formatting it once per second, not once per
# ACK, saves a datetime and an strftime on every message. (second, text) of the last one formatted.
_stamp: tuple[int, str] = (-1, "")


def _timestamp() -> str:
    global _stamp
    second = int(time.time())
    if _stamp[0] != second:
        _stamp = (second, datetime.fromtimestamp(second, UTC).strftime("%Y%m%d%H%M%S"))
    return _stamp[1]


def build_ack(
    header: Header | None,
    code: AckCode,
    error: MessageError | None = None,
    *,
    application: str = "HIE",
    facility: str = "",
    warning: str | None = None,
) -> str:
    """Our ACK for a received message. ``header`` is None when the bytes were not HL7 at all.

    The ACK swaps sender and receiver, keeps the sender's version and MSH-18 so that it is encoded
    and understood in the sender's own terms.
    """
    version = (header.version if header is not None else "") or "2.5"
    trigger = header.trigger_event if header is not None else ""
    msa_segment = msa(header, code, error.text if error is not None else warning)
    errors: list[str] = []
    if error is not None:
        errors.append(err_segment(header, error, severity="E"))
    elif warning:
        errors.append(err_segment(header, MessageError(warning, hl7_code="0"), severity="W"))
    # MSH-9.3 (message structure) exists since v2.3.1 and is required in v2.5: ACK^^ACK when the
    # trigger is unknown (bytes that were not HL7), so a strict receiver still knows the structure.
    cs = header.component_sep if header is not None else "^"
    msg_type = f"ACK{cs}{trigger}{cs}ACK" if trigger or _version_tuple(version) >= (2, 3, 1) else "ACK"
    return build_response(
        header, msg_type, [msa_segment, *errors], application=application, facility=facility
    )


def build_response(
    header: Header | None,
    message_type: str,
    body: list[str],
    *,
    application: str = "HIE",
    facility: str = "",
    version: str | None = None,
) -> str:
    """A response to a received message: our MSH (sender and receiver swapped, MSH-18 kept) + ``body``.

    ``message_type`` is MSH-9 written with the request's component separator (``RSP^K23^RSP_K23``);
    ``version`` overrides the request's (a v2.5 RSP answers whatever version the query said).
    """
    now = _timestamp()
    if header is None:
        fs, cs, rs, ss = "|", "^", "~", "&"
        req_version, to_app, to_fac, processing = "2.5", "", "", "P"
    else:
        fs, cs, rs, ss = (
            header.field_sep,
            header.component_sep,
            header.repetition_sep,
            header.subcomponent_sep,
        )
        req_version = header.version or "2.5"
        to_app, to_fac = header.sending_application, header.sending_facility
        processing = header.processing_id or "P"
    msh = [
        "MSH",
        f"{cs}{rs}\\{ss}",
        application or (header.receiving_application if header else "HIE"),
        facility or (header.receiving_facility if header else ""),
        to_app,
        to_fac,
        now,
        "",
        message_type,
        new_control_id(),
        processing,
        version or req_version,
    ]
    if header is not None and header.charset:
        msh += ["", "", "", "", "", header.charset]
    return "\r".join([fs.join(msh), *body]) + "\r"


def msa(header: Header | None, code: AckCode, text: str | None = None) -> str:
    """MSA: the code and the request's MSH-10; before v2.5, MSA-3 carries the text as well."""
    fs = header.field_sep if header is not None else "|"
    version = (header.version if header is not None else "") or "2.5"
    fields = ["MSA", code, header.control_id if header is not None else ""]
    if text and _version_tuple(version) < (2, 5):
        fields.append(escape(text, header))
    return fs.join(fields)


def err_segment(header: Header | None, error: MessageError, *, severity: str = "E") -> str:
    """ERR for ``error``, in the layout of the request's version (ERR-1 before v2.5)."""
    version = (header.version if header is not None else "") or "2.5"
    fs = header.field_sep if header is not None else "|"
    cs = header.component_sep if header is not None else "^"
    ss = header.subcomponent_sep if header is not None else "&"
    return _err_segment(error, version, fs, cs, ss, severity)


def escape(text: str, header: Header | None = None) -> str:
    """``text`` escaped for a field of a message with the request's separators (HL7 v2.5 §2.7)."""
    if header is None or (
        header.field_sep,
        header.component_sep,
        header.repetition_sep,
        header.subcomponent_sep,
    ) == (
        "|",
        "^",
        "~",
        "&",
    ):
        return _escape(text)
    return (
        text.replace("\\", "\\E\\")
        .replace(header.field_sep, "\\F\\")
        .replace(header.component_sep, "\\S\\")
        .replace(header.subcomponent_sep, "\\T\\")
        .replace(header.repetition_sep, "\\R\\")
        .replace("\r", " ")
        .replace("\n", " ")
    )


def new_control_id() -> str:
    """A control id (MSH-10) for a message we originate: unique within this process and run."""
    return _ack_control_id()


def _err_segment(error: MessageError, version: str, fs: str, cs: str, ss: str, severity: str) -> str:
    code = error.hl7_code
    name = _TABLE_0357.get(code, "Application internal error")
    text = _escape(error.text)
    location = error.location.replace("^", cs)
    if _version_tuple(version) < (2, 5):
        # v2.3.1/v2.4 ERR-1 (CM: segment^sequence^field^code-identifying-error as CE with subcomponents)
        # ELD has no repetition/component positions: keep segment^sequence^field only
        where = cs.join(location.split(cs)[:3]) if location else f"{cs}{cs}"
        return fs.join(["ERR", f"{where}{cs}{code}{ss}{_escape(name)}{ss}HL70357"])
    err3 = f"{code}{cs}{name}{cs}HL70357"
    fields = ["ERR", "", location, err3, severity, "", "", "", text]
    return fs.join(fields)


@functools.lru_cache(maxsize=64)  # senders use a handful of versions; parsed twice per ACK otherwise
def _version_tuple(version: str) -> tuple[int, ...]:
    out = []
    for part in version.split("."):
        if not part.isdigit():
            break
        out.append(int(part))
    return tuple(out) or (2, 5)


@dataclass(frozen=True)
class ParsedAck:
    code: str  # MSA-1
    control_id: str  # MSA-2
    text: str  # MSA-3 or ERR-8, for the record


def parse_ack(text: str) -> ParsedAck:
    """Read MSA-1/MSA-2 (and a reason) of an answer from downstream. Raises MessageError if no MSA."""
    segs = segments(text)
    if not segs or not segs[0].startswith("MSH") or len(segs[0]) < 4:
        raise MessageError("the answer is not an HL7 v2 message", hl7_code="100")
    fs = segs[0][3]
    msa: list[str] | None = None
    err_text = ""
    for seg in segs[1:]:
        parts = seg.split(fs)
        if parts[0] == "MSA":
            msa = parts
        elif parts[0] == "ERR" and not err_text:
            err_text = parts[8] if len(parts) > 8 else (parts[1] if len(parts) > 1 else "")
    if msa is None or len(msa) < 2:
        raise MessageError("the answer has no MSA segment", hl7_code="100")
    control = msa[2] if len(msa) > 2 else ""
    reason = msa[3] if len(msa) > 3 and msa[3] else err_text
    return ParsedAck(code=msa[1], control_id=control, text=reason)
