"""Reprocessing one stored message from the API, as ``hie messages reprocess`` does from the CLI.

The received bytes run through the channel's pipeline again as a new message (``reprocessed_from`` =
the original), its queue entries without an owner, so the engine's recovery pass delivers them (within
about 10 s). The user's act is audited as the CLI's is: DICOM 110106 Export, action E, on the
original's patients, naming the new message, with the API user and their address.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.reprocess import prepare_reprocess
from engine.services import Services

if TYPE_CHECKING:
    from engine.channel import Channel

__all__ = ["reprocess_one"]


async def reprocess_one(
    services: Services, channel: Channel, orig: dict[str, Any], only: set[str] | None, user: str, network: str
) -> dict[str, Any]:
    """Store the new message and its audit record together; what became of it, as JSON."""
    batch, result = prepare_reprocess(
        channel, orig, only, user, services, application="hie-console", network=network
    )
    await services.writer.write(batch)
    return {
        "original": result.original,
        "id": result.new_id,
        "status": result.status,
        "queued": result.queued,
        "not_routed": result.not_routed,
        "error": result.error,
    }
