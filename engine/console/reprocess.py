"""Reprocessing one stored message from the API, as ``hie messages reprocess`` does from the CLI.

The received bytes run through the channel's pipeline again as a new message (``reprocessed_from`` =
the original), its queue entries without an owner, so the engine's recovery pass delivers them (within
about 10 s). The user's act is audited as the CLI's is: DICOM 110106 Export, action E, on the
original's patients, naming the new message, with the API user and their address.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from engine import audit
from engine.message import ContentType, OutcomeStatus
from engine.services import Services
from engine.store.schema import audit_events, deliveries

if TYPE_CHECKING:
    from engine.channel import Channel

__all__ = ["reprocess_one"]


def _event(
    orig: dict[str, Any], new_id: int, stored: str, user: str, network: str, msg_time: Any
) -> audit.AuditEvent:
    read = audit.message_read_event(
        user=user,
        message_id=orig["id"],
        channel_id=orig["channel_id"],
        control_id=orig["control_id"],
        message_type=orig["message_type"],
        event_time=msg_time,
        application="hie-console",
        patients=[(i["value"], i["authority"]) for i in orig["identifiers"]],
        description=f"reprocessed as message {new_id}: {stored}",
    )
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


async def reprocess_one(
    services: Services, channel: Channel, orig: dict[str, Any], only: set[str] | None, user: str, network: str
) -> dict[str, Any]:
    """Store the new message and its audit record together; what became of it, as JSON."""
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
    queued: list[str] = []
    not_routed: list[str] = []
    for row in batch.inserts.get(deliveries.name, []):
        row["owner_node"] = None  # the recovery pass takes it over, as after the CLI's reprocess
        if row["status"] == "pending":  # after_delivery: nobody waits for this answer
            row["status"] = "queued"
        if row["status"] == "queued":
            queued.append(row["destination"])
        elif only is not None and row["destination"] in only:
            not_routed.append(row["destination"])
    event = _event(orig, msg.id, stored, user, network, msg.received_at)
    batch.insert(audit_events, event.row(services.ids.next()))
    await services.writer.write(batch)
    error = outcome.error.text if outcome.error is not None else None
    if error is None and outcome.status is OutcomeStatus.FILTERED:
        error = str(msg.variables.get("filtered_by", ""))
    return {
        "original": orig["id"],
        "id": msg.id,
        "status": stored,
        "queued": queued,
        "not_routed": not_routed,
        "error": error,
    }
