"""Store reads for the metrics endpoint and the alert rules: what is still waiting, and what errored lately.

Both are one grouped query each, run off the event loop, and both stay on indexes so a scrape every
15 seconds or a check every minute costs little on a store of millions of rows:

* ``backlog`` counts only the deliveries not done (queued, pending, errored) from the covering
  index ``ix_deliveries_queue`` (channel, destination, status, ...); sent ones are never counted;
* ``error_counts`` reads the messages of the window through ``ix_messages_channel_received``
  (channel, received_at), one range per channel.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Engine, case, exists, func, or_, select

from engine.store.queries import as_utc
from engine.store.schema import deliveries, messages

__all__ = ["BACKLOG_STATUSES", "backlog", "error_counts"]

BACKLOG_STATUSES = ("queued", "pending", "errored")


def backlog(db: Engine) -> dict[tuple[str, str], dict[str, int]]:
    """(channel, destination) -> count per status of ``BACKLOG_STATUSES``, for pairs that have any.

    ``queued`` waits in a destination's queue, ``pending`` is being answered by an ``ack_from``
    destination within its request, ``errored`` is dead-lettered (until reprocessed or pruned).
    """
    d = deliveries
    query = (
        select(d.c.channel_id, d.c.destination, d.c.status, func.count())
        .where(d.c.status.in_(BACKLOG_STATUSES))
        .group_by(d.c.channel_id, d.c.destination, d.c.status)
    )
    out: dict[tuple[str, str], dict[str, int]] = {}
    with db.connect() as conn:
        for channel, destination, status, n in conn.execute(query):
            out.setdefault((channel, destination), dict.fromkeys(BACKLOG_STATUSES, 0))[status] = int(n)
    return out


def error_counts(db: Engine, channels: Iterable[str], since: datetime) -> dict[str, tuple[int, int]]:
    """channel -> (messages received since ``since``, how many of them errored), for channels that
    received any. A message errored when it was stored as errored (unreadable, rejected, a step
    failed) or one of its deliveries is dead-lettered."""
    wanted = sorted(set(channels))
    if not wanted:
        return {}
    m, d = messages, deliveries
    dead = exists().where(d.c.message_id == m.c.id, d.c.status == "errored")
    bad = case((or_(m.c.status == "errored", dead), 1), else_=0)
    query = (
        select(m.c.channel_id, func.count(), func.sum(bad))
        .where(m.c.channel_id.in_(wanted), m.c.received_at >= as_utc(since))
        .group_by(m.c.channel_id)
    )
    with db.connect() as conn:
        return {ch: (int(n), int(errored or 0)) for ch, n, errored in conn.execute(query)}
