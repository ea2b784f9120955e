"""Reprocessing a stored message: its received bytes through its channel's pipeline again, as a new
message (``reprocessed_from`` = the original), whose queue entries have no owner so that the running
engine's recovery pass (every 10 s), or its next start, delivers them. The original is never touched.

Used by ``hie messages reprocess`` (engine/cli/reprocess.py) and the console's API
(engine/console/reprocess.py); each writes the batch this builds, with the user's audit record in it.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import TYPE_CHECKING, Any

from engine import audit
from engine.message import ContentType, OutcomeStatus
from engine.services import Services
from engine.store.schema import audit_events, deliveries
from engine.store.writer import Batch

if TYPE_CHECKING:
    from engine.channel import Channel

__all__ = ["Reprocessed", "prepare_reprocess", "reprocess_event"]


@dataclasses.dataclass
class Reprocessed:
    original: int
    new_id: int | None = None
    status: str = ""  # the new message's stored status (received, filtered, errored) or "failed"
    queued: list[str] = dataclasses.field(default_factory=list)
    not_routed: list[str] = dataclasses.field(default_factory=list)
    error: str | None = None


def reprocess_event(
    orig: dict[str, Any],
    new_id: int,
    outcome: str,
    user: str,
    now: datetime,
    *,
    application: str,
    network: str = "",
) -> audit.AuditEvent:
    """The user's act, on the original message's patients.

    DICOM 110106 "Export" with action E: reprocessing sends a stored patient's data out of the engine
    again, on a person's command, which is what Export covers (data leaving the system's custody). PS3.15
    gives Export the action R; we use E (execute) so that this record of a person's command, which by
    itself sends nothing, is told apart from the engine's own Export/R record of each actual send (written
    by the destination queue with the engine as requestor). Neither 110110 Patient Record (C/R/U/D on a
    record, the new copy's creation is already audited by the channel as 110107 Import) nor 110100
    Application Activity (start/stop of an application) fits a person re-sending patient data.
    """
    read = audit.message_read_event(
        user=user,
        message_id=orig["id"],
        channel_id=orig["channel_id"],
        control_id=orig["control_id"],
        message_type=orig["message_type"],
        event_time=now,
        application=application,
        patients=[(i["value"], i["authority"]) for i in orig["identifiers"]],
        description=f"reprocessed as message {new_id}: {outcome}",
    )
    if network:
        read.participants[0]["network_access_point"] = network
    objects = [
        *read.objects,
        {
            "type": 2,
            "role": 3,
            "id_type": "message_id",
            "id": str(new_id),
            "detail": {"message_id": str(new_id), "reprocessed_from": str(orig["id"])},
        },
    ]
    return dataclasses.replace(
        read, event_id=audit.EXPORT, action="E", event_type=f"reprocess^{orig['channel_id']}", objects=objects
    )


def prepare_reprocess(
    channel: Channel,
    orig: dict[str, Any],
    only: set[str] | None,
    user: str,
    services: Services,
    *,
    application: str,
    network: str = "",
) -> tuple[Batch, Reprocessed]:
    """The new message's rows and the user's audit record, to be written in one commit."""
    msg, outcome, batch, _ = channel.prepare(
        orig["raw"],
        f"reprocess:{user}",
        ContentType(orig["content_type"]),
        reprocessed_from=orig["id"],
        only=only,
    )
    stored = {OutcomeStatus.ACCEPTED: "received", OutcomeStatus.FILTERED: "filtered"}.get(
        outcome.status, "errored"
    )
    result = Reprocessed(orig["id"], msg.id, stored)
    for row in batch.inserts.get(deliveries.name, []):
        # No owner: the running engine's recovery pass takes the entry over (or the next start does).
        row["owner_node"] = None
        if row["status"] == "pending":
            # after_delivery: nobody waits for this answer; the entry is delivered from the queue
            row["status"] = "queued"
        if row["status"] == "queued":
            result.queued.append(row["destination"])
        elif only is not None and row["destination"] in only:
            result.not_routed.append(row["destination"])
    if outcome.error is not None:
        result.error = outcome.error.text
    elif outcome.status is OutcomeStatus.FILTERED:
        result.error = str(msg.variables.get("filtered_by", ""))
    event = reprocess_event(
        orig, msg.id, stored, user, msg.received_at, application=application, network=network
    )
    batch.insert(audit_events, event.row(services.ids.next()))
    return batch, result
