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

__all__ = ["AckCode", "ParsedAck", "build_ack", "parse_ack"]

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
    now = _timestamp()
    if header is None:
        fs, cs, rs, ss = "|", "^", "~", "&"
        version, trigger, control = "2.5", "", ""
        to_app = to_fac = ""
        processing = "P"
    else:
        fs, cs, rs, ss = (
            header.field_sep,
            header.component_sep,
            header.repetition_sep,
            header.subcomponent_sep,
        )
        version = header.version or "2.5"
        trigger, control = header.trigger_event, header.control_id
        to_app, to_fac = header.sending_application, header.sending_facility
        processing = header.processing_id or "P"
    encoding_chars = f"{cs}{rs}\\{ss}"
    # MSH-9.3 (message structure) exists since v2.3.1 and is required in v2.5: ACK^^ACK when the
    # trigger is unknown (bytes that were not HL7), so a strict receiver still knows the structure.
    msg_type = f"ACK{cs}{trigger}{cs}ACK" if trigger or _version_tuple(version) >= (2, 3, 1) else "ACK"
    msh = [
        "MSH",
        encoding_chars,
        application or (header.receiving_application if header else "HIE"),
        facility or (header.receiving_facility if header else ""),
        to_app,
        to_fac,
        now,
        "",
        msg_type,
        _ack_control_id(),
        processing,
        version,
    ]
    if header is not None and header.charset:
        msh += ["", "", "", "", "", header.charset]
    msa = ["MSA", code, control]
    old_layout = _version_tuple(version) < (2, 5)
    if old_layout and (error is not None or warning):
        msa.append(_escape(error.text if error is not None else warning or ""))  # MSA-3, before v2.5
    out = [fs.join(msh), fs.join(msa)]
    if error is not None:
        out.append(_err_segment(error, version, fs, cs, ss, severity="E"))
    elif warning:
        out.append(_err_segment(MessageError(warning, hl7_code="0"), version, fs, cs, ss, severity="W"))
    return "\r".join(out) + "\r"


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
