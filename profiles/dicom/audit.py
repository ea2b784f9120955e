"""ATNA audit records of the image archive (DICOM PS3.15 A.5.3, the events IHE RAD TF-2 asks of an
Image Archive and an Imaging Document Source):

================ ======================================= ====== ==================================
act              EventID                                 action participant objects
================ ======================================= ====== ==================================
C-STORE received 110104 DICOM Instances Transferred      C      the patient, the study (its UID),
                                                                SOP class and instance
C-FIND           110112 Query                            E      the query's SOP class, the query
                                                                dataset (base64)
C-MOVE, C-GET    110104 DICOM Instances Transferred      R      per study: the patient, the study
refused peer     110113 Security Alert                   E      the calling AE title and address
association      110114 User Authentication, type        E      (the peer is the participant: its AE
                 110122 Login at its start, 110123 Logout       title and address)
                 at its release or abort
RAD-68 published 110106 Export                          R      the patient, the study, the
                                                                manifest's SubmissionSet uniqueId
================ ======================================= ====== ==================================

The peer is the source (110153) of what it sends and the destination (110152) of what it retrieves;
its user id is its AE title, its network access point its address.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from datetime import UTC, datetime

from engine import audit

__all__ = [
    "association_event",
    "instance_stored",
    "instances_retrieved",
    "manifest_published",
    "query_event",
    "security_alert",
]

TRANSFERRED: audit.EventId = ("110104", "DICOM Instances Transferred", "DCM")
QUERY: audit.EventId = ("110112", "Query", "DCM")
SECURITY_ALERT: audit.EventId = ("110113", "Security Alert", "DCM")
USER_AUTHENTICATION: audit.EventId = ("110114", "User Authentication", "DCM")
LOGIN, LOGOUT = "110122^Login^DCM", "110123^Logout^DCM"
STUDY_UID = "110180"  # ParticipantObjectIDTypeCode: Study Instance UID
SOP_CLASS_UID = "110181"  # ParticipantObjectIDTypeCode: SOP Class UID


def _parties(peer_ae: str, peer_address: str, us: str, *, peer_sends: bool) -> list[dict[str, object]]:
    them = audit.participant(peer_ae, requestor=True, role="110153" if peer_sends else "110152")
    if peer_address:
        them["network_access_point"] = peer_address
    return [them, audit.participant(us, requestor=False, role="110152" if peer_sends else "110153")]


def _patient(patient: str) -> dict[str, object]:
    return {"type": 1, "role": 1, "id_type": "2", "id": patient}


def _study(study_uid: str, detail: dict[str, str]) -> dict[str, object]:
    # type 2 system object, role 3 report, id type 110180 Study Instance UID (PS3.15 A.5.3.4)
    return {"type": 2, "role": 3, "id_type": STUDY_UID, "id": study_uid, "detail": detail}


def instance_stored(
    *,
    peer_ae: str,
    peer_address: str,
    us: str,
    patient: str,
    study_uid: str,
    sop_class_uid: str,
    sop_instance_uid: str,
    outcome: int = audit.Outcome.SUCCESS,
    description: str | None = None,
    channel_id: str | None = None,
    message_id: int | None = None,
) -> audit.AuditEvent:
    objects = [_patient(patient)] if patient else []
    objects.append(_study(study_uid, {"SOPClassUID": sop_class_uid, "SOPInstanceUID": sop_instance_uid}))
    return audit.AuditEvent(
        event_id=TRANSFERRED,
        action="C",
        outcome=outcome,
        event_time=datetime.now(UTC),
        event_type="C-STORE^Storage^DICOM",
        outcome_description=description,
        participants=_parties(peer_ae, peer_address, us, peer_sends=True),
        objects=objects,
        channel_id=channel_id,
        message_id=message_id,
    )


def instances_retrieved(
    *,
    operation: str,
    peer_ae: str,
    peer_address: str,
    us: str,
    studies: Iterable[tuple[str, str, int]],
    outcome: int = audit.Outcome.SUCCESS,
    description: str | None = None,
) -> audit.AuditEvent:
    """``studies``: (study UID, patient, instances sent) of what a C-MOVE or C-GET sent."""
    objects: list[dict[str, object]] = []
    for study_uid, patient, count in studies:
        if patient and _patient(patient) not in objects:
            objects.append(_patient(patient))
        objects.append(_study(study_uid, {"instances": str(count)}))
    return audit.AuditEvent(
        event_id=TRANSFERRED,
        action="R",
        outcome=outcome,
        event_time=datetime.now(UTC),
        event_type=f"{operation}^Retrieve^DICOM",
        outcome_description=description,
        participants=_parties(peer_ae, peer_address, us, peer_sends=False),
        objects=objects,
    )


def query_event(
    *,
    peer_ae: str,
    peer_address: str,
    us: str,
    sop_class_uid: str,
    query: bytes,
    matches: int,
    outcome: int = audit.Outcome.SUCCESS,
    description: str | None = None,
) -> audit.AuditEvent:
    return audit.AuditEvent(
        event_id=QUERY,
        action="E",
        outcome=outcome,
        event_time=datetime.now(UTC),
        event_type="C-FIND^Query^DICOM",
        outcome_description=description,
        participants=_parties(peer_ae, peer_address, us, peer_sends=False),
        objects=[
            {
                "type": 2,
                "role": 3,
                "id_type": SOP_CLASS_UID,
                "id": sop_class_uid,
                "query": base64.b64encode(query).decode("ascii"),
                "detail": {"matches": str(matches)},
            }
        ],
    )


def security_alert(*, peer_ae: str, peer_address: str, us: str, reason: str) -> audit.AuditEvent:
    return audit.AuditEvent(
        event_id=SECURITY_ALERT,
        action="E",
        outcome=audit.Outcome.MINOR_FAILURE,
        event_time=datetime.now(UTC),
        event_type="A-ASSOCIATE^Association^DICOM",
        outcome_description=reason,
        participants=_parties(peer_ae, peer_address, us, peer_sends=True),
    )


def manifest_published(
    *, us: str, registry: str, patient: str, study_uid: str, submission_set: str, manifest_uid: str
) -> audit.AuditEvent:
    """RAD-68 at the Imaging Document Source (RAD TF-2 §4.68.5.1): the manifest sent for registration."""
    return audit.AuditEvent(
        event_id=audit.EXPORT,
        action="R",
        outcome=audit.Outcome.SUCCESS,
        event_time=datetime.now(UTC),
        event_type="RAD-68^Provide and Register Imaging Document Set - MTOM/XOP^IHE Transactions",
        participants=[
            audit.participant(us, requestor=True, role="110153"),
            audit.participant(registry, requestor=False, role="110152"),
        ],
        objects=[
            _patient(patient),
            _study(study_uid, {"manifest": manifest_uid}),
            {
                "type": 2,
                "role": 20,  # job
                "id_type": "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd",  # SubmissionSet
                "id": submission_set,
            },
        ],
    )


def association_event(
    *, peer_ae: str, peer_address: str, us: str, start: bool, description: str | None = None
) -> audit.AuditEvent:
    """An association begun (Login) or ended (Logout: released, or aborted with ``description``)."""
    return audit.AuditEvent(
        event_id=USER_AUTHENTICATION,
        action="E",
        outcome=audit.Outcome.SUCCESS if description is None else audit.Outcome.MINOR_FAILURE,
        event_time=datetime.now(UTC),
        event_type=LOGIN if start else LOGOUT,
        outcome_description=description,
        participants=_parties(peer_ae, peer_address, us, peer_sends=True),
    )
