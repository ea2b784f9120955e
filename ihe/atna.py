"""ATNA audit records of the IHE transactions (ITI TF-2 §3.8.5.1, §3.9.5.1, §3.10.5.1, §3.21.5.1).

The engine already records every message received (110107 Import) and every delivery (110106
Export); these are the records the IHE profiles ask of the actor itself, in DICOM PS3.15 terms:

=========== ========================= ====== ============================================
transaction EventID                   action participant objects
=========== ========================= ====== ============================================
ITI-8       110110 Patient Record     C/U/D the patient (CX), with MSH-10 as detail
ITI-9       110112 Query              E     the patients returned, and the query (QPD)
ITI-10      110110 Patient Record     R     the patient notified about, MSH-10 as detail
ITI-21      110112 Query              E     the patients returned, and the query (QPD)
=========== ========================= ====== ============================================

The source participant's UserID is ``MSH-3|MSH-4`` of the request (TF-2 §3.8.5.1.1: "the
identity of the Patient Identity Source facility and sending application"), the destination ours.
The query object carries the QPD segment base64-encoded (ParticipantObjectQuery), as IHE asks.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from datetime import UTC, datetime

from engine import audit
from engine.hl7v2.peek import Header

__all__ = ["QUERY", "feed_event", "notification_event", "query_event"]

QUERY: audit.EventId = ("110112", "Query", "DCM")
_TYPES = {
    "ITI-8": "Patient Identity Feed",
    "ITI-9": "PIX Query",
    "ITI-10": "PIX Update Notification",
    "ITI-21": "Patient Demographics Query",
}


def _event_type(transaction: str) -> str:
    return f"{transaction}^{_TYPES[transaction]}^IHE Transactions"


def _patients(ids: Iterable[str]) -> list[dict[str, object]]:
    seen: list[str] = []
    for i in ids:
        if i not in seen:
            seen.append(i)
    # type 1 person, role 1 patient, id type 2 patient number (RFC 3881 §5.5)
    return [{"type": 1, "role": 1, "id_type": "2", "id": i} for i in seen]


def _participants(header: Header, us: str) -> list[dict[str, object]]:
    """The request's sender (MSH-3|MSH-4) as source and requestor, we as destination."""
    them = f"{header.sending_application}|{header.sending_facility}"
    return [
        audit.participant(them, requestor=True, role="110153"),
        audit.participant(us, requestor=False, role="110152"),
    ]


def feed_event(
    header: Header,
    *,
    us: str,
    patients: Iterable[str],
    action: str,
    outcome: int = audit.Outcome.SUCCESS,
    description: str | None = None,
    channel_id: str | None = None,
    message_id: int | None = None,
) -> audit.AuditEvent:
    """ITI-8 at the PIX Manager: a patient record created (C), updated (U) or merged away (D)."""
    objects = _patients(patients)
    for o in objects:
        o["detail"] = {"MSH-10": header.control_id}
    return audit.AuditEvent(
        event_id=audit.PATIENT_RECORD,
        action=action,
        outcome=outcome,
        event_time=datetime.now(UTC),
        event_type=_event_type("ITI-8"),
        outcome_description=description,
        participants=_participants(header, us),
        objects=objects,
        channel_id=channel_id,
        message_id=message_id,
    )


def query_event(
    transaction: str,
    header: Header,
    qpd: str,
    *,
    us: str,
    patients: Iterable[str],
    outcome: int = audit.Outcome.SUCCESS,
    description: str | None = None,
    channel_id: str | None = None,
    message_id: int | None = None,
) -> audit.AuditEvent:
    """ITI-9 or ITI-21 at the manager or supplier: who asked what, and which patients went back."""
    objects = _patients(patients)
    objects.append(
        {
            # type 2 system object, role 24 query, id type: the transaction (TF-2 §3.9.5.1.2)
            "type": 2,
            "role": 24,
            "id_type": transaction,
            "id": "",
            "query": base64.b64encode(qpd.encode("utf-8")).decode("ascii"),
            "detail": {"MSH-10": header.control_id},
        }
    )
    return audit.AuditEvent(
        event_id=QUERY,
        action="E",
        outcome=outcome,
        event_time=datetime.now(UTC),
        event_type=_event_type(transaction),
        outcome_description=description,
        participants=_participants(header, us),
        objects=objects,
        channel_id=channel_id,
        message_id=message_id,
    )


def notification_event(
    *,
    us: str,
    consumer: str,
    patients: Iterable[str],
    control_id: str,
    channel_id: str | None = None,
    message_id: int | None = None,
) -> audit.AuditEvent:
    """ITI-10 at the PIX Manager: consumers were told of a person's cross-references (the A31).

    We are the source (requestor) here; ``consumer`` is MSH-5|MSH-6 of the A31.
    """
    objects = _patients(patients)
    for o in objects:
        o["detail"] = {"MSH-10": control_id}
    return audit.AuditEvent(
        event_id=audit.PATIENT_RECORD,
        action="R",
        outcome=audit.Outcome.SUCCESS,
        event_time=datetime.now(UTC),
        event_type=_event_type("ITI-10"),
        participants=[
            audit.participant(us, requestor=True, role="110153"),
            audit.participant(consumer, requestor=False, role="110152"),
        ],
        objects=objects,
        channel_id=channel_id,
        message_id=message_id,
    )
