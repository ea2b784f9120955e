"""What this process measures of itself for the metrics endpoint (``metrics://``) and the alert rules:
per channel, how many messages it answered and how fast; and which sources and queues it runs.

Why in process and not from the store: a Prometheus counter must only grow (a scrape that sees it
fall takes it for a restart), and the store's counts fall when retention prunes old messages;
counting them per scrape would also read the whole ``messages`` table every 15 seconds. So the
channel counts as it answers, and the store is asked only for what is still waiting (queue depths).

Cost on the hot path: ``Channel.receive`` calls ``ChannelMeter.done`` once per message: a clock read,
a bisection over 13 floats and three additions. Everything here is touched on the event loop only
(the channel answers there, the scrape reads there), one thread, so there are no locks.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from time import perf_counter, time
from typing import TYPE_CHECKING

from engine.message import OutcomeStatus

if TYPE_CHECKING:
    from engine.connectors.base import Source
    from engine.delivery import DestinationQueue

__all__ = ["LATENCY_BUCKETS", "ChannelMeter", "Telemetry"]

# upper bounds (seconds) of the answer-latency histogram: an ACK after a group commit takes a few
# milliseconds; an after_delivery answer waits for downstream, seconds when it is slow
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ChannelMeter:
    """One channel's counts since the process started, and its answer-latency histogram."""

    __slots__ = ("buckets", "errored", "filtered", "received", "seconds")

    def __init__(self) -> None:
        self.received = 0  # every message answered, whatever became of it
        self.filtered = 0
        self.errored = 0  # answered with an error: errored, rejected, not stored, no answer from downstream
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)  # per bucket, not cumulative; the last is +Inf
        self.seconds = 0.0

    def done(self, status: OutcomeStatus, started: float) -> None:
        """A message answered; ``started`` is the ``perf_counter()`` of its arrival at the channel."""
        elapsed = perf_counter() - started
        self.buckets[bisect_left(LATENCY_BUCKETS, elapsed)] += 1  # bisect_left: a bound is "le"
        self.seconds += elapsed
        self.received += 1
        if status is OutcomeStatus.FILTERED:
            self.filtered += 1
        elif status is not OutcomeStatus.ACCEPTED:
            self.errored += 1

    def unframed(self) -> None:
        """Bytes that never became a message (a broken frame, an oversize request), kept as errored."""
        self.received += 1
        self.errored += 1


@dataclass
class Telemetry:
    """The process's meters and what the runtime runs (set by ``Runtime.start``), read by scrapes
    and alert checks."""

    channels: dict[str, ChannelMeter] = field(default_factory=dict)
    sources: Mapping[str, Source] = field(default_factory=dict)  # channel id -> its running source
    queues: Sequence[DestinationQueue] = ()
    started_at: float = field(default_factory=time)  # Unix time

    def meter(self, channel_id: str) -> ChannelMeter:
        found = self.channels.get(channel_id)
        if found is None:
            found = self.channels[channel_id] = ChannelMeter()
        return found

    def attach(self, sources: Mapping[str, Source], queues: Sequence[DestinationQueue]) -> None:
        """The runtime's own collections, live: a source started later is seen by the next scrape."""
        self.sources = sources
        self.queues = queues
