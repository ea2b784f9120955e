"""ITI-8 Patient Identity Feed (HL7 v2): what a PIX Manager accepts, and where its errors point.

ITI TF-2 §3.8. The feed is ADT^A01/A04/A05/A08 (create or update an identity in the source's
domain, structure ADT_A01) and ADT^A40 (merge: MRG-1 is replaced by PID-3, structure ADT_A39);
any other event is answered AR with ERR-3 201 (unsupported event code), another message type AR
with 200 (TF-2 C.2.3). The acknowledgement is original mode, in the sender's own version: v2.3.1
senders (the version ITI-8 names) get their ERR in ERR-1 (``engine.hl7v2.ack``).
"""

from __future__ import annotations

from engine.errors import MessageError
from engine.hl7v2.peek import Header

__all__ = [
    "CREATE_OR_UPDATE",
    "MERGE",
    "check_event",
    "identifier_location",
    "merge_location",
]

CREATE_OR_UPDATE = frozenset({"A01", "A04", "A05", "A08"})  # TF-2 §3.8.4.1
MERGE = "A40"  # TF-2 §3.8.4.2


def check_event(header: Header) -> str:
    """The trigger event of an acceptable feed, or MessageError (AR) naming what is not supported."""
    if header.message_code != "ADT":
        raise MessageError(
            f"ITI-8 takes ADT messages, not {header.message_type or 'an empty MSH-9'}",
            hl7_code="200",
            location="MSH^1^9^1^1",
            reject=True,
        )
    event = header.trigger_event
    if event not in CREATE_OR_UPDATE and event != MERGE:
        raise MessageError(
            f"ITI-8 takes ADT^A01, A04, A05, A08 and A40, not ADT^{event or '(none)'}",
            hl7_code="201",
            location="MSH^1^9^1^2",
            reject=True,
        )
    return event


def identifier_location(repetition: int, component: int | None = 4) -> str:
    """ERR-2 of a PID-3 repetition (1-based), at its assigning authority (CX-4) by default."""
    base = f"PID^1^3^{repetition}"
    return f"{base}^{component}" if component else base


def merge_location(component: int = 1) -> str:
    """ERR-2 of MRG-1 (the subsumed identifier): CX-1 by default, CX-4 for its authority."""
    return f"MRG^1^1^1^{component}"
