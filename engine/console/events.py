"""The console's ATNA records (DICOM PS3.15 A.5, event ids from PS3.16 CID 400 and CID 401).

* 110114 User Authentication, type 110122 Login / 110123 Logout: every login, refused or not, and every
  API call refused for want of valid credentials (401);
* 110113 Security Alert: an authenticated user calling what their role may not (403), an address
  whose logins are held back after too many failures (429);
* 110101 Audit Log Used: every page or CSV export of the audit trail read through the API;
* 110136 Security Roles Changed: an account created with its role;
* 110137 User Security Attributes Changed: an account disabled, a token issued or revoked;
* for the plugins' console sections: their searches (110112 Query, with the query and the patients)
  and what they show (``section_event``).

The account is the ParticipantObject: type 1 person, role 11 "Security User Entity", id type 11 "User
Identifier" (RFC 3881 5.5).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any

from engine.audit import AuditEvent, EventId, Outcome, participant
from engine.store.db import utcnow

__all__ = [
    "AUDIT_LOG_USED",
    "LOGIN",
    "LOGOUT",
    "QUERY",
    "ROLES_CHANGED",
    "SECURITY_ALERT",
    "USER_ATTRIBUTES_CHANGED",
    "USER_AUTHENTICATION",
    "account_event",
    "audit_log_used",
    "authentication_event",
    "patient_objects",
    "query_object",
    "section_event",
    "security_alert",
]

AUDIT_LOG_USED: EventId = ("110101", "Audit Log Used", "DCM")
QUERY: EventId = ("110112", "Query", "DCM")
USER_AUTHENTICATION: EventId = ("110114", "User Authentication", "DCM")
SECURITY_ALERT: EventId = ("110113", "Security Alert", "DCM")
ROLES_CHANGED: EventId = ("110136", "Security Roles Changed", "DCM")
USER_ATTRIBUTES_CHANGED: EventId = ("110137", "User Security Attributes Changed", "DCM")
LOGIN = "110122^Login^DCM"
LOGOUT = "110123^Logout^DCM"
_APP = "hie-console"


def _parties(user: str, network: str) -> list[dict[str, Any]]:
    """The user who acted (from ``network``) and the console, the application they used (110150)."""
    return [
        participant(user, requestor=True, network=network),
        participant(_APP, requestor=False, role="110150"),
    ]


def _account(username: str) -> dict[str, object]:
    return {"type": 1, "role": 11, "id_type": "11", "id": username}


def authentication_event(
    username: str, *, ok: bool, network: str, description: str | None = None, logout: bool = False
) -> AuditEvent:
    """A login (or logout) by ``username`` from ``network``; refused ones are a minor failure."""
    return AuditEvent(
        event_id=USER_AUTHENTICATION,
        action="E",
        outcome=Outcome.SUCCESS if ok else Outcome.MINOR_FAILURE,
        event_time=utcnow(),
        event_type=LOGOUT if logout else LOGIN,
        outcome_description=description,
        participants=_parties(username or "(unknown)", network),
        objects=[_account(username)] if username else [],
        user_id=username,
    )


def audit_log_used(
    username: str, *, network: str, uri: str, description: str, patient: str | None = None
) -> AuditEvent:
    """``username`` read the audit trail (PS3.15 A.5.3.2: the log as a Security Resource by URI); a
    search by patient names the patient, so that "who looked at this patient" finds it too."""
    objects: list[dict[str, object]] = [{"type": 2, "role": 13, "id_type": "12", "id": uri}]
    if patient:
        objects.append({"type": 1, "role": 1, "id_type": "2", "id": patient})
    return AuditEvent(
        event_id=AUDIT_LOG_USED,
        action="R",
        outcome=Outcome.SUCCESS,
        event_time=utcnow(),
        event_type="audit-log^hie-console",
        outcome_description=description,
        participants=_parties(username, network),
        objects=objects,
        user_id=username,
    )


def security_alert(username: str, *, network: str, description: str) -> AuditEvent:
    """An authenticated user refused an act their role does not allow, or (with no user) an address
    held back."""
    return AuditEvent(
        event_id=SECURITY_ALERT,
        action="E",
        outcome=Outcome.MINOR_FAILURE,
        event_time=utcnow(),
        event_type="forbidden^hie-console",
        outcome_description=description,
        participants=_parties(username, network),
        objects=[_account(username)],
        user_id=username,
    )


def account_event(
    event_id: EventId, action: str, *, actor: str, account: str, description: str, network: str = ""
) -> AuditEvent:
    """``actor`` changed ``account`` (created it, disabled it, issued or revoked a token)."""
    return AuditEvent(
        event_id=event_id,
        action=action,
        outcome=Outcome.SUCCESS,
        event_time=utcnow(),
        event_type="account^hie-console",
        outcome_description=description,
        participants=_parties(actor, network),
        objects=[_account(account)],
        user_id=actor,
    )


# -- what the plugins' console sections record (engine.console.sections) -------------------------------


def patient_objects(ids: Iterable[str]) -> list[dict[str, Any]]:
    """A ParticipantObject per patient (type 1 person, role 1 patient, id type 2 patient number; RFC
    3881 5.5), each once, in order; empty ids left out."""
    return [{"type": 1, "role": 1, "id_type": "2", "id": i} for i in dict.fromkeys(ids) if i]


def query_object(uri: str, query: str, **detail: str) -> dict[str, Any]:
    """The search itself (type 2 system object, role 24 query, id type 12 URI; PS3.15 A.5.3.7 wants
    ParticipantObjectQuery in base64)."""
    found: dict[str, Any] = {
        "type": 2,
        "role": 24,
        "id_type": "12",
        "id": uri,
        "query": base64.b64encode(query.encode("utf-8")).decode("ascii"),
    }
    if detail:
        found["detail"] = dict(detail)
    return found


def section_event(
    section: str,
    event_id: EventId,
    action: str,
    *,
    user: str,
    network: str,
    objects: list[dict[str, Any]],
    description: str,
    message_id: int | None = None,
) -> AuditEvent:
    """What ``user`` (from ``network``) did in a console section: the user as requestor, the console
    as the application (110150), the patients and objects concerned."""
    return AuditEvent(
        event_id=event_id,
        action=action,
        outcome=Outcome.SUCCESS,
        event_time=utcnow(),
        event_type=f"{section}^{_APP}",
        outcome_description=description,
        participants=_parties(user, network),
        objects=objects,
        user_id=user,
        message_id=message_id,
    )
