"""An audit message from another system, read into the fields of ``audit_events``.

The MSG of ITI-20 (ITI TF-2 §3.20.4.1.2) is an ``AuditMessage`` in the DICOM PS3.15 A.5.1 schema or in
its ancestor, RFC 3881. They differ in how a code is written: DICOM's ``csd-code``/``originalText``
against RFC 3881's ``code``/``displayName`` (both ``codeSystemName``); both are read. What this
repository needs of a message, and refuses it without (PS3.15 A.5.1 and RFC 3881 §5 make them
mandatory too): the EventIdentification with its EventID, EventDateTime and EventOutcomeIndicator,
at least one ActiveParticipant with a UserID, and the AuditSourceIdentification's AuditSourceID.

Patients are the ParticipantObjectIdentification entries of type 1 (person) and role 1 (patient)
(RFC 3881 §5.5; PS3.15 A.5.2): their ParticipantObjectIDs become ``patient_ids``, so "who saw this
patient" finds the accesses other systems reported beside the engine's own.

XML from outside: entities, DTDs and the network are off (as ``ihe._soap``), and a document type
declaration is refused.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lxml import etree

__all__ = ["AuditMessageError", "ReceivedAudit", "read_audit_message"]

_PARSER = etree.XMLParser(
    resolve_entities=False, load_dtd=False, no_network=True, dtd_validation=False, huge_tree=False
)
_FRACTION = re.compile(r"(\.\d{6})\d+")  # xs:dateTime allows any number of fraction digits


class AuditMessageError(ValueError):
    """The MSG is not an audit message this repository can keep; the text says why."""


@dataclass(frozen=True, slots=True)
class ReceivedAudit:
    """One audit message, as the columns of ``audit_events`` hold it."""

    event_time: datetime
    event_id: str  # code^display^system
    event_type: str
    action: str
    outcome: int
    outcome_description: str | None
    source_id: str  # AuditSourceIdentification/@AuditSourceID
    enterprise_site: str
    user_id: str  # the requestor's UserID, for searches
    patient_ids: list[str]
    participants: list[dict[str, Any]]
    objects: list[dict[str, Any]]

    def row(self, ident: int, *, channel_id: str, message_id: int) -> dict[str, Any]:
        """The ``audit_events`` row (columns cut to their widths)."""
        return {
            "id": ident,
            "event_time": self.event_time,
            "event_id": self.event_id[:64],
            "event_type": self.event_type[:128],
            "action": self.action[:1],
            "outcome": self.outcome,
            "outcome_description": self.outcome_description,
            "source_id": self.source_id[:100],
            "user_id": self.user_id[:200],
            "channel_id": channel_id,
            "message_id": message_id,
            "patient_ids": " ".join(self.patient_ids) or None,
            "participants": json.dumps(self.participants, ensure_ascii=False),
            "objects": json.dumps(self.objects, ensure_ascii=False),
        }


def read_audit_message(data: bytes) -> ReceivedAudit:
    """The audit message in ``data`` (UTF-8 XML), or ``AuditMessageError`` naming what is missing."""
    if not data.strip():
        raise AuditMessageError("the syslog message has no MSG: an ITI-20 message carries an AuditMessage")
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise AuditMessageError(f"the MSG is not well-formed XML: {exc}") from None
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise AuditMessageError("XML with a document type declaration (DTD) is refused")
    if _local(root) != "AuditMessage":
        raise AuditMessageError(
            f"the MSG is a {_local(root)} element, not an AuditMessage (DICOM PS3.15 A.5.1, RFC 3881)"
        )
    top = _children(root)
    event = _one(top, "EventIdentification", "AuditMessage")
    within = _children(event)
    code = _code(_one(within, "EventID", "EventIdentification"))
    if not code[0]:
        raise AuditMessageError("EventID has no code (csd-code or code)")
    participants = [_participant(p) for p in top.get("ActiveParticipant", ())]
    if not participants:
        raise AuditMessageError("the AuditMessage has no ActiveParticipant")
    source = _one(top, "AuditSourceIdentification", "AuditMessage")
    source_id = (source.get("AuditSourceID") or "").strip()
    if not source_id:
        raise AuditMessageError("AuditSourceIdentification has no AuditSourceID")
    objects = [_object(o) for o in top.get("ParticipantObjectIdentification", ())]
    types = within.get("EventTypeCode")
    description = _first(within, "EventOutcomeDescription")
    described = (description.text or "").strip() if description is not None else ""
    requestor = next((p for p in participants if p["requestor"]), None)
    return ReceivedAudit(
        event_time=_event_time(event.get("EventDateTime")),
        event_id="^".join(code),
        event_type="^".join(_code(types[0])) if types else "",
        action=(event.get("EventActionCode") or "").strip(),
        outcome=_outcome(event.get("EventOutcomeIndicator")),
        outcome_description=described or None,
        source_id=source_id,
        enterprise_site=(source.get("AuditEnterpriseSiteID") or "").strip(),
        user_id=requestor["user_id"] if requestor else "",
        patient_ids=[o["id"] for o in objects if o["type"] == 1 and o["role"] == 1 and o["id"]],
        participants=participants,
        objects=objects,
    )


def _local(el: etree._Element) -> str:
    tag = el.tag
    if not isinstance(tag, str):  # a comment or processing instruction
        return ""
    return tag.rsplit("}", 1)[-1]


def _children(parent: etree._Element) -> dict[str, list[etree._Element]]:
    """The child elements of ``parent`` by local name (one pass over them, whatever the namespace)."""
    out: dict[str, list[etree._Element]] = {}
    for child in parent.iterchildren(tag=etree.Element):
        tag = child.tag
        out.setdefault(tag[tag.rfind("}") + 1 :], []).append(child)
    return out


def _first(children: dict[str, list[etree._Element]], name: str) -> etree._Element | None:
    found = children.get(name)
    return found[0] if found else None


def _one(children: dict[str, list[etree._Element]], name: str, parent: str) -> etree._Element:
    found = _first(children, name)
    if found is None:
        raise AuditMessageError(f"the {parent} has no {name}")
    return found


def _code(el: etree._Element) -> tuple[str, str, str]:
    """(code, display name, code system) of a coded value in either schema."""
    code = el.get("csd-code") or el.get("code") or ""
    display = el.get("originalText") or el.get("displayName") or ""
    return code.strip(), display.strip(), (el.get("codeSystemName") or "").strip()


def _event_time(text: str | None) -> datetime:
    if not text:
        raise AuditMessageError("EventIdentification has no EventDateTime")
    value = _FRACTION.sub(r"\1", text.strip()).replace("Z", "+00:00")
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise AuditMessageError(f"EventDateTime {text[:40]!r} is not an xs:dateTime") from None
    # a time without a zone says nothing of its offset: taken as UTC, the store's zone
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _outcome(text: str | None) -> int:
    try:
        return int((text or "").strip())
    except ValueError:
        raise AuditMessageError(
            f"EventOutcomeIndicator {text!r} is not a number (0, 4, 8 or 12; PS3.15 A.5.1)"
        ) from None


def _participant(el: etree._Element) -> dict[str, Any]:
    user = (el.get("UserID") or "").strip()
    if not user:
        raise AuditMessageError("an ActiveParticipant has no UserID")
    out: dict[str, Any] = {
        "user_id": user,
        "requestor": (el.get("UserIsRequestor") or "").strip().lower() in ("true", "1"),
    }
    role = _first(_children(el), "RoleIDCode")
    if role is not None and _code(role)[0]:
        out["role"] = _code(role)[0]
    for attr, key in (
        ("NetworkAccessPointID", "network_access_point"),
        ("AlternativeUserID", "alternative_user_id"),
        ("UserName", "user_name"),
    ):
        value = (el.get(attr) or "").strip()
        if value:
            out[key] = value
    return out


def _object(el: etree._Element) -> dict[str, Any]:
    within = _children(el)
    id_type = _first(within, "ParticipantObjectIDTypeCode")
    out: dict[str, Any] = {
        "type": _int(el.get("ParticipantObjectTypeCode")),
        "role": _int(el.get("ParticipantObjectTypeCodeRole")),
        "id_type": _code(id_type)[0] if id_type is not None else "",
        "id": (el.get("ParticipantObjectID") or "").strip(),
    }
    name = _first(within, "ParticipantObjectName")
    if name is not None and (name.text or "").strip():
        out["name"] = (name.text or "").strip()
    query = _first(within, "ParticipantObjectQuery")
    if query is not None and (query.text or "").strip():
        out["query"] = (query.text or "").strip()  # base64, as sent
    details = {d.get("type") or "": d.get("value") or "" for d in within.get("ParticipantObjectDetail", ())}
    if details:
        out["detail"] = details
    return out


def _int(text: str | None) -> int | None:
    try:
        return int((text or "").strip())
    except ValueError:
        return None
