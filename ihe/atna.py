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
ITI-41      110107 Import             C     the patient, the SubmissionSet (its uniqueId)
ITI-42      110107 Import             C     the patient, the SubmissionSet (its uniqueId)
ITI-18      110112 Query              E     the patient asked about, the AdhocQueryRequest
ITI-43      110106 Export             R     each document returned (uniqueId, repository)
=========== ========================= ====== ============================================

For the SOAP transactions the requestor is the peer's address (and its ``wsa:ReplyTo``, when it
gave one other than the anonymous address), ITI TF-2 §3.41.5.1, §3.42.5.1, §3.18.5.1, §3.43.5.1.

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

__all__ = [
    "QUERY",
    "feed_event",
    "notification_event",
    "query_event",
    "xds_query_event",
    "xds_retrieve_event",
    "xds_submission_event",
]

QUERY: audit.EventId = ("110112", "Query", "DCM")
_TYPES = {
    "ITI-8": "Patient Identity Feed",
    "ITI-9": "PIX Query",
    "ITI-10": "PIX Update Notification",
    "ITI-21": "Patient Demographics Query",
    "ITI-18": "Registry Stored Query",
    "ITI-41": "Provide and Register Document Set-b",
    "ITI-42": "Register Document Set-b",
    "ITI-43": "Retrieve Document Set",
}
_SUBMISSION_SET_CLASS = "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"


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


def _soap_participants(requestor: str, us: str, *, we_export: bool = False) -> list[dict[str, object]]:
    """The SOAP requestor and us: Source/Destination as the transaction moves the data."""
    them = audit.participant(requestor, requestor=True, role="110152" if we_export else "110153")
    ours = audit.participant(us, requestor=False, role="110153" if we_export else "110152")
    return [ours, them] if we_export else [them, ours]


def xds_submission_event(
    transaction: str,
    *,
    requestor: str,
    us: str,
    patient: str,
    submission_set: str,
    outcome: int = audit.Outcome.SUCCESS,
    description: str | None = None,
    channel_id: str | None = None,
    message_id: int | None = None,
) -> audit.AuditEvent:
    """ITI-41 at the repository, ITI-42 at the registry: a submission imported (or refused)."""
    objects = _patients([patient] if patient else [])
    if submission_set:
        # type 2 system object, role 20 job, id type: the SubmissionSet classification node
        objects.append({"type": 2, "role": 20, "id_type": _SUBMISSION_SET_CLASS, "id": submission_set})
    return audit.AuditEvent(
        event_id=audit.IMPORT,
        action="C",
        outcome=outcome,
        event_time=datetime.now(UTC),
        event_type=_event_type(transaction),
        outcome_description=description,
        participants=_soap_participants(requestor, us),
        objects=objects,
        channel_id=channel_id,
        message_id=message_id,
    )


def xds_query_event(
    *,
    requestor: str,
    us: str,
    query_id: str,
    request: bytes,
    patients: Iterable[str],
    outcome: int = audit.Outcome.SUCCESS,
    description: str | None = None,
    channel_id: str | None = None,
    message_id: int | None = None,
) -> audit.AuditEvent:
    """ITI-18 at the registry: the AdhocQueryRequest (base64) and the patient it was about."""
    objects = _patients(patients)
    objects.append(
        {
            "type": 2,
            "role": 24,
            "id_type": "ITI-18",
            "id": query_id,
            "query": base64.b64encode(request).decode("ascii"),
            "detail": {"QueryEncoding": "UTF-8"},
        }
    )
    return audit.AuditEvent(
        event_id=QUERY,
        action="E",
        outcome=outcome,
        event_time=datetime.now(UTC),
        event_type=_event_type("ITI-18"),
        outcome_description=description,
        participants=_soap_participants(requestor, us),
        objects=objects,
        channel_id=channel_id,
        message_id=message_id,
    )


def xds_retrieve_event(
    *,
    requestor: str,
    us: str,
    documents: Iterable[tuple[str, str]],
    outcome: int = audit.Outcome.SUCCESS,
    description: str | None = None,
    channel_id: str | None = None,
    message_id: int | None = None,
) -> audit.AuditEvent:
    """ITI-43 at the repository: the documents (uniqueId, repositoryUniqueId) it sent."""
    objects: list[dict[str, object]] = [
        # type 2 system object, role 3 report, id type 9 report number (TF-2 §3.43.5.1.1)
        {
            "type": 2,
            "role": 3,
            "id_type": "9",
            "id": unique_id,
            "detail": {"Repository Unique Id": repository},
        }
        for unique_id, repository in documents
    ]
    return audit.AuditEvent(
        event_id=audit.EXPORT,
        action="R",
        outcome=outcome,
        event_time=datetime.now(UTC),
        event_type=_event_type("ITI-43"),
        outcome_description=description,
        participants=_soap_participants(requestor, us, we_export=True),
        objects=objects,
        channel_id=channel_id,
        message_id=message_id,
    )
