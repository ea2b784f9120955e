"""ATNA audit records (DICOM PS3.15 Annex A.5 audit message schema; RFC 3881 field names).

One record is written for every message received, every message sent to a destination, and every
read of message content through the CLI or the API. Records live in ``audit_events`` in the same
transaction as what they describe, so an audited act and its record are never apart.
"""

from __future__ import annotations

import base64
import getpass
import json
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from xml.etree import ElementTree as ET

from engine.hl7v2.peek import Header

__all__ = ["AuditEvent", "EventId", "Outcome", "message_objects", "message_read_event", "to_dicom_xml"]

# Event ids (DICOM PS3.16 CID 400): code, display name, coding system
EventId = tuple[str, str, str]
IMPORT: EventId = ("110107", "Import", "DCM")
EXPORT: EventId = ("110106", "Export", "DCM")
PATIENT_RECORD: EventId = ("110110", "Patient Record", "DCM")


class Outcome:
    """EventOutcomeIndicator (PS3.15 A.5.1)."""

    SUCCESS = 0
    MINOR_FAILURE = 4
    SERIOUS_FAILURE = 8
    MAJOR_FAILURE = 12


_SOURCE_ID = socket.gethostname()


@dataclass
class AuditEvent:
    event_id: EventId
    action: str  # C create, R read, U update, D delete, E execute
    outcome: int
    event_time: datetime
    event_type: str = ""  # e.g. the channel or transaction, as code^display^system
    outcome_description: str | None = None
    participants: list[dict[str, Any]] = field(default_factory=list)
    objects: list[dict[str, Any]] = field(default_factory=list)
    user_id: str = ""
    channel_id: str | None = None
    message_id: int | None = None
    # ``participants`` already serialized, from a caller that writes the same participants for many
    # events (a channel per peer, a destination always): it saves a json.dumps per message.
    participants_json: str | None = None

    def row(self, ident: int) -> dict[str, Any]:
        patients = [o["id"] for o in self.objects if o.get("role") == 1]
        return {
            "id": ident,
            "event_time": self.event_time,
            "event_id": "^".join(self.event_id),
            "event_type": self.event_type,
            "action": self.action,
            "outcome": self.outcome,
            "outcome_description": self.outcome_description,
            "source_id": _SOURCE_ID,
            "user_id": self.user_id,
            "channel_id": self.channel_id,
            "message_id": self.message_id,
            "patient_ids": " ".join(patients) or None,
            "participants": (
                self.participants_json
                if self.participants_json is not None
                else participants_json(self.participants)
            ),
            "objects": json.dumps(self.objects, ensure_ascii=False),
        }


def participants_json(participants: list[dict[str, Any]]) -> str:
    """The stored form of an ActiveParticipant list (``audit_events.participants``)."""
    return json.dumps(participants, ensure_ascii=False)


def participant(user_id: str, *, requestor: bool, role: str = "", network: str = "") -> dict[str, Any]:
    """ActiveParticipant; role is a DCM code (110153 Source, 110152 Destination)."""
    out: dict[str, Any] = {"user_id": user_id, "requestor": requestor}
    if role:
        out["role"] = role
    if network:
        out["network_access_point"] = network
    return out


def message_objects(header: Header | None, message_id: int | None) -> list[dict[str, Any]]:
    """ParticipantObjectIdentification for a message: each patient it names, and the message itself."""
    out: list[dict[str, Any]] = []
    if header is not None:
        seen: set[str] = set()
        for ident in header.identifiers:
            key = f"{ident.value}^^^{ident.authority}" if ident.authority else ident.value
            if key in seen:
                continue
            seen.add(key)
            # type 1 person, role 1 patient, id type 2 patient number (RFC 3881 5.5)
            out.append({"type": 1, "role": 1, "id_type": "2", "id": key})
    detail = {"message_id": str(message_id) if message_id is not None else ""}
    if header is not None:
        detail |= {"MSH-10": header.control_id, "MSH-9": header.message_type}
    # type 2 system object, role 3 report: the HL7 message as a whole
    out.append(
        {
            "type": 2,
            "role": 3,
            "id_type": "MSH-10",
            "id": header.control_id if header else "",
            "detail": detail,
        }
    )
    return out


def message_read_event(
    *,
    user: str,
    message_id: int,
    channel_id: str | None,
    control_id: str,
    message_type: str,
    patients: Iterable[tuple[str, str]],
    event_time: datetime,
    application: str = "hie",
    outcome: int = Outcome.SUCCESS,
    description: str | None = None,
) -> AuditEvent:
    """DICOM 110110 "Patient Record", action R: a person read a stored message (CLI, API).

    ``patients`` are (value, assigning authority) pairs from ``message_identifiers``. Participants: the
    user (the requestor) and this application (role 110150 Application); objects: each patient the
    message names, then the message itself, as ``message_objects`` describes a received one.
    """
    objects: list[dict[str, Any]] = []
    seen: set[str] = set()
    for value, authority in patients:
        key = f"{value}^^^{authority}" if authority else value
        if key in seen:
            continue
        seen.add(key)
        objects.append({"type": 1, "role": 1, "id_type": "2", "id": key})
    detail = {"message_id": str(message_id), "MSH-10": control_id, "MSH-9": message_type}
    objects.append({"type": 2, "role": 3, "id_type": "MSH-10", "id": control_id, "detail": detail})
    return AuditEvent(
        event_id=PATIENT_RECORD,
        action="R",
        outcome=outcome,
        event_time=event_time,
        event_type=f"channel^{channel_id}" if channel_id else "",
        outcome_description=description,
        participants=[
            participant(user, requestor=True),
            participant(f"{application}@{_SOURCE_ID}", requestor=False, role="110150"),
        ],
        objects=objects,
        user_id=user,
        channel_id=channel_id,
        message_id=message_id,
    )


def cli_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"


def to_dicom_xml(row: dict[str, Any]) -> str:
    """Render a stored record as a DICOM PS3.15 AuditMessage (for export to an audit repository)."""
    root = ET.Element("AuditMessage")
    code, display, system = [*row["event_id"].split("^"), "", "", ""][:3]
    ev = ET.SubElement(
        root,
        "EventIdentification",
        EventActionCode=row["action"],
        EventDateTime=row["event_time"].isoformat(),
        EventOutcomeIndicator=str(row["outcome"]),
    )
    # PS3.15 A.5.1: a coded value's code is the attribute "csd-code" (RFC 3881 called it "code")
    ET.SubElement(ev, "EventID", {"csd-code": code, "codeSystemName": system, "originalText": display})
    if row.get("event_type"):
        ET.SubElement(
            ev,
            "EventTypeCode",
            {"csd-code": row["event_type"], "codeSystemName": "hie", "originalText": row["event_type"]},
        )
    if row.get("outcome_description"):
        ET.SubElement(ev, "EventOutcomeDescription").text = row["outcome_description"]
    for p in json.loads(row["participants"]):
        attrs = {"UserID": p["user_id"], "UserIsRequestor": str(p["requestor"]).lower()}
        if p.get("network_access_point"):
            attrs |= {"NetworkAccessPointID": p["network_access_point"], "NetworkAccessPointTypeCode": "2"}
        ap = ET.SubElement(root, "ActiveParticipant", attrs)
        if p.get("role"):
            ET.SubElement(ap, "RoleIDCode", {"csd-code": p["role"], "codeSystemName": "DCM"})
    ET.SubElement(root, "AuditSourceIdentification", AuditSourceID=row["source_id"])
    for o in json.loads(row["objects"]):
        po = ET.SubElement(
            root,
            "ParticipantObjectIdentification",
            ParticipantObjectID=o["id"],
            ParticipantObjectTypeCode=str(o["type"]),
            ParticipantObjectTypeCodeRole=str(o["role"]),
        )
        ET.SubElement(
            po, "ParticipantObjectIDTypeCode", {"csd-code": o["id_type"], "codeSystemName": "RFC-3881"}
        )
        for k, v in (o.get("detail") or {}).items():
            # PS3.15 A.5.1: ParticipantObjectDetail's value is xs:base64Binary
            value = base64.b64encode(str(v).encode("utf-8")).decode("ascii")
            ET.SubElement(po, "ParticipantObjectDetail", type=k, value=value)
    return ET.tostring(root, encoding="unicode")
