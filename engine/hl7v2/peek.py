"""A fast look at an HL7 v2 message's header and patient identifiers, without a full parse.

A full python-hl7 parse costs about 0.5 ms for a 1 KB ADT; the store needs only MSH and the patient
identifiers to index a message, so this module splits just those segments. Steps that need any field
use the full parse (``engine.message.Message.parsed``), done once and only when asked for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from engine.errors import FramingError, MessageError

__all__ = ["Header", "Identifier", "peek", "require_control_id", "segments"]

# Fields that carry patient identifiers in the dialects we meet: PID-3 (the list), PID-2 (v2.3.1
# external id), PID-4 (alternate id), PID-19 (SSN, where many HIS put the ID-card number). MRG-1 too.
_ID_FIELDS = (("PID", 3), ("PID", 2), ("PID", 4), ("PID", 19), ("MRG", 1))
# the same, by segment: (field index, "SEG-n") in the order above
_ID_FIELDS_OF: dict[str, tuple[tuple[int, str], ...]] = {
    name: tuple((idx, f"{name}-{idx}") for seg_name, idx in _ID_FIELDS if seg_name == name)
    for name in ("PID", "MRG")
}
# A segment after the first that starts with PID or MRG (a segment starts after a CR). Finding these
# in C, in document order, spares a Python loop over the other segments of the message.
_ID_SEGMENT = re.compile(r"\r(PID|MRG)[^\r]*")


@dataclass(frozen=True, slots=True)
class Identifier:
    value: str
    authority: str  # assigning authority: namespace, else universal id
    id_type: str
    field: str  # where it was found, e.g. "PID-3"


@dataclass(slots=True)
class Header:
    field_sep: str
    component_sep: str
    repetition_sep: str
    subcomponent_sep: str
    sending_application: str = ""
    sending_facility: str = ""
    receiving_application: str = ""
    receiving_facility: str = ""
    timestamp: str = ""
    message_code: str = ""
    trigger_event: str = ""
    message_structure: str = ""
    control_id: str = ""
    processing_id: str = ""
    version: str = ""
    charset: str = ""  # MSH-18 as written by the sender (first repetition)
    identifiers: list[Identifier] = field(default_factory=list)

    @property
    def message_type(self) -> str:
        """MSH-9.1^MSH-9.2, e.g. ``ADT^A01`` (the structure, MSH-9.3, is left out)."""
        if self.trigger_event:
            return f"{self.message_code}^{self.trigger_event}"
        return self.message_code


def segments(text: str) -> list[str]:
    """Split on the segment terminator; tolerates LF and CRLF from senders that write them."""
    if "\n" in text:
        text = text.replace("\r\n", "\r").replace("\n", "\r")
    return [s for s in text.split("\r") if s]


def peek(text: str) -> Header:
    """Read MSH and the identifier fields. Raises FramingError if this is not HL7 v2 at all."""
    if not text.startswith("MSH") or len(text) < 8:
        raise FramingError("not an HL7 v2 message: it does not start with an MSH segment")
    fs = text[3]
    enc_end = text.find(fs, 4)
    encoding = text[4:enc_end] if enc_end != -1 else ""
    if fs.isalnum() or len(encoding) < 3:
        raise FramingError("MSH-1/MSH-2 do not declare field, component and repetition separators")
    cs, rs = encoding[0], encoding[1]
    ss = encoding[3] if len(encoding) > 3 else "&"
    if "\n" in text:  # as segments() does: LF and CRLF from senders that write them
        text = text.replace("\r\n", "\r").replace("\n", "\r")
    msh_end = text.find("\r")  # the text starts with MSH, so this is segments(text)[0]
    msh = (text[:msh_end] if msh_end != -1 else text).split(fs)

    def f(n: int) -> str:  # MSH-n (MSH-1 is the separator, so MSH-n is msh[n - 1])
        return msh[n - 1] if len(msh) >= n else ""

    # str.partition(sep)[0] is split(sep)[0] without building the list of the other components.
    msh9 = f(9).split(cs)
    header = Header(
        field_sep=fs,
        component_sep=cs,
        repetition_sep=rs,
        subcomponent_sep=ss,
        sending_application=f(3).partition(cs)[0],
        sending_facility=f(4).partition(cs)[0],
        receiving_application=f(5).partition(cs)[0],
        receiving_facility=f(6).partition(cs)[0],
        timestamp=f(7).partition(cs)[0],
        message_code=msh9[0],
        trigger_event=msh9[1] if len(msh9) > 1 else "",
        message_structure=msh9[2] if len(msh9) > 2 else "",
        control_id=f(10),
        processing_id=f(11).partition(cs)[0],
        version=f(12).partition(cs)[0],
        charset=f(18).partition(rs)[0],
    )
    for match in _ID_SEGMENT.finditer(text, msh_end) if msh_end != -1 else ():
        fields = match.group()[1:].split(fs)
        for idx, where in _ID_FIELDS_OF[match.group(1)]:
            if len(fields) <= idx or not fields[idx]:
                continue
            for rep in fields[idx].split(rs):
                # One split per repetition: CX.1 id, CX.4 assigning authority (HD), CX.5 id type.
                comps = rep.split(cs)
                value = comps[0]
                if not value:
                    continue
                hd = comps[3] if len(comps) >= 4 else ""
                subs = hd.split(ss)
                authority = subs[0] or (subs[1] if len(subs) >= 2 else "")
                id_type = comps[4] if len(comps) >= 5 else ""
                header.identifiers.append(Identifier(value, authority, id_type, where))
    return header


def require_control_id(header: Header) -> None:
    """MSH-10 is required (HL7 v2.5 §2.14.9.10): without it no ACK can name the message."""
    if not header.control_id:
        raise MessageError(
            "MSH-10 (message control id) is empty", hl7_code="101", location="MSH^1^10", reject=True
        )
    if not header.message_code:
        raise MessageError("MSH-9 (message type) is empty", hl7_code="101", location="MSH^1^9", reject=True)
