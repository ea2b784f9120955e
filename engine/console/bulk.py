"""Bulk reprocessing from the API (``POST /api/v1/reprocess``): every message matching a search, as
``hie messages reprocess --all-matching`` does from the CLI.

What the CLI refuses is refused here too: an empty filter (a bulk reprocess must name at least one
filter), a message whose channel is not configured and enabled here (409: no engine would deliver
its copy), a destination one of the channels does not have (400). Messages whose raw bytes
retention pruned are skipped, as the CLI skips them. At most ``limit`` messages (the newest that
match) are taken, processed oldest first.

Each message goes through ``engine.console.reprocess.reprocess_one``, so each is stored and audited
exactly as a single reprocess is (DICOM 110106 Export, action E, naming the user and their address).
The messages of a chunk are prepared and written together, so the store's writer commits them in
groups rather than one commit each; between messages the event loop serves other traffic.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool

from engine.config import ChannelConfig
from engine.console.reprocess import reprocess_one
from engine.services import Services
from engine.store.queries import Search, matching_ids, originals

if TYPE_CHECKING:
    from engine.channel import Channel

__all__ = ["MAX_LIMIT", "BulkRefused", "BulkResult", "reprocess_matching"]

log = logging.getLogger(__name__)

MAX_LIMIT = 1000
CHUNK = 100  # messages read, prepared and written together


class BulkRefused(Exception):
    """The whole request is refused before anything is written: ``status`` and what to tell."""

    def __init__(self, status: int, text: str, **extra: Any) -> None:
        super().__init__(text)
        self.status = status
        self.text = text
        self.extra = extra


@dataclass
class BulkResult:
    matched: int = 0
    more: bool = False  # more messages matched than the limit took
    reprocessed: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)

    def json(self) -> dict[str, Any]:
        return {
            "matched": self.matched,
            "limit_reached": self.more,
            "reprocessed": self.reprocessed,
            "skipped": self.skipped,
        }


def _check_channels(
    configured: dict[str, ChannelConfig], channel_ids: set[str], only: set[str] | None
) -> None:
    """Every channel of the matched messages is here and enabled and has each named destination."""
    absent = sorted(c for c in channel_ids if c not in configured or not configured[c].enabled)
    if absent:
        raise BulkRefused(
            409,
            f"channel(s) {', '.join(absent)} not configured and enabled here: narrow the filter "
            "(e.g. by channel)",
        )
    for cid in sorted(channel_ids):
        known = [d.id for d in configured[cid].destinations]
        unknown = sorted((only or set()) - set(known))
        if unknown:
            raise BulkRefused(
                400, f"channel {cid} has no destination {', '.join(unknown)}", destinations=known
            )


async def reprocess_matching(
    services: Services,
    channel_for: Callable[[ChannelConfig], Channel],
    search: Search,
    only: set[str] | None,
    user: str,
    network: str,
    *,
    limit: int = MAX_LIMIT,
) -> BulkResult:
    """Reprocess the (at most ``limit``) newest messages matching ``search``."""
    if search.is_empty():
        raise BulkRefused(400, "a bulk reprocess must name at least one filter")
    if not 1 <= limit <= MAX_LIMIT:
        raise BulkRefused(400, f"limit: must be between 1 and {MAX_LIMIT}")
    search.before_id, search.limit = None, limit + 1  # one more tells whether the limit cut
    db = services.reads
    ids = await run_in_threadpool(matching_ids, db, search)
    result = BulkResult(more=len(ids) > limit)
    ids = ids[-limit:]  # matching_ids gives the newest, oldest first
    result.matched = len(ids)
    if not ids:
        return result
    found = await run_in_threadpool(originals, db, ids, with_raw=False)
    configured = {c.id: c for c in services.app.channels}
    _check_channels(configured, {o["channel_id"] for o in found.values()}, only)
    for ident in ids:
        if ident in found and not found[ident]["has_raw"]:
            result.skipped.append({"id": ident, "reason": "the raw bytes were pruned by retention"})
    todo = [i for i in ids if i in found and found[i]["has_raw"]]
    for start in range(0, len(todo), CHUNK):
        chunk = todo[start : start + CHUNK]
        loaded = await run_in_threadpool(originals, db, chunk)
        jobs = []
        for ident in chunk:
            orig = loaded.get(ident)
            if orig is None or orig["raw"] is None:  # deleted or pruned since the first look
                reason = (
                    "no longer in the store" if orig is None else "the raw bytes were pruned by retention"
                )
                result.skipped.append({"id": ident, "reason": reason})
                continue
            channel = channel_for(configured[orig["channel_id"]])
            jobs.append((ident, reprocess_one(services, channel, orig, only, user, network)))
        outcomes = await asyncio.gather(*(job for _, job in jobs), return_exceptions=True)
        for (ident, _), outcome in zip(jobs, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                log.warning("bulk reprocess: message %s not stored: %s", ident, type(outcome).__name__)
                log.debug("bulk reprocess: message %s", ident, exc_info=outcome)
                result.skipped.append({"id": ident, "reason": "the copy could not be stored"})
                continue
            result.reprocessed.append(
                {
                    "original": ident,
                    "message_id": outcome["id"],
                    "status": outcome["status"],
                    "queued": outcome["queued"],
                }
            )
    return result
