"""The metrics a ``metrics://`` source serves, in the Prometheus text exposition format 0.0.4
(https://prometheus.io/docs/instrumenting/exposition_formats/): ``# HELP`` and ``# TYPE`` then one
``name{label="value"} number`` line per sample, ``\\``, ``"`` and newlines escaped in label values.

Families (``hie_`` for the engine's own; ``process_`` are the names every Prometheus client uses,
so the usual dashboards find them):

* ``hie_messages_received_total{channel}`` (counter): messages answered since the process started;
  ``hie_messages_filtered_total`` and ``hie_messages_errored_total``: of those, filtered, and
  answered with an error;
* ``hie_answer_seconds{channel}`` (histogram): from a message reaching its channel to its answer;
* ``hie_deliveries{channel,destination,status}`` (gauge): deliveries in the store that are queued,
  pending or errored (dead letters); ``hie_queue_depth{channel,destination}``: queued + pending;
* ``hie_delivery_attempts_total{channel,destination,outcome}`` (counter): this process's sends, sent
  or failed;
* ``hie_source_up{channel,scheme}`` (gauge): 1 while the source takes messages, else 0;
* ``hie_store_up`` (gauge): 1 when this scrape could read the store; ``hie_store_commits_total``,
  ``hie_store_rows_written_total`` (counters): the group-commit writer's;
* ``process_cpu_seconds_total``, ``process_resident_memory_bytes``, ``process_open_fds``,
  ``process_start_time_seconds``: this process (RSS and descriptors from Linux's /proc);
* in an engine started by ``hie run`` (``engine.heap``): ``python_gc_collections_total{generation}``
  (counter), ``hie_gc_pause_seconds{generation}`` (histogram): how long the garbage collector
  stopped the process, and ``hie_gc_frozen_objects`` (gauge): objects frozen out of its passes.

The counters and the histogram are this process's (``engine.telemetry``); the delivery gauges are
the store's, so they cover every node sharing it. Written here rather than with
``prometheus_client``: that library keeps one global registry per process (several runtimes in one
test process would collide), its store-backed gauges would need custom collectors anyway, and the
format is a few lines.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import math
import os
import resource
from collections.abc import Iterable, Sequence
from pathlib import Path

from engine import heap
from engine.services import Services
from engine.store.health import BACKLOG_STATUSES, backlog
from engine.telemetry import LATENCY_BUCKETS

__all__ = ["CONTENT_TYPE", "Exposition", "render"]

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

Labels = dict[str, str]


def _escape_label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if isinstance(value, int):
        return str(value)
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return repr(value)


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape_label(v)}"' for k, v in labels.items()) + "}"


class Exposition:
    """The lines of one scrape, family by family."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str, samples: Iterable[tuple[Labels, float]]) -> None:
        self.lines.append(f"# HELP {name} {help_text}")  # our own texts: no backslash, no newline
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            self.lines.append(f"{name}{_labels(labels)} {_number(value)}")

    def histogram(
        self,
        name: str,
        help_text: str,
        series: Iterable[tuple[Labels, list[int], float]],
        *,
        bounds: Sequence[float] = LATENCY_BUCKETS,
    ) -> None:
        """``series``: (labels, count per bucket of ``bounds`` and +Inf, not cumulative, sum)."""
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} histogram")
        les = [*(repr(b) for b in bounds), "+Inf"]
        for labels, buckets, total in series:
            cumulative = 0
            for le, n in zip(les, buckets, strict=True):
                cumulative += n
                self.lines.append(f"{name}_bucket{_labels({**labels, 'le': le})} {cumulative}")
            self.lines.append(f"{name}_sum{_labels(labels)} {_number(total)}")
            self.lines.append(f"{name}_count{_labels(labels)} {cumulative}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


async def render(services: Services) -> str:
    """One scrape: the store's backlog read off the event loop, the rest from this process."""
    t = services.telemetry
    try:
        stored = await asyncio.to_thread(backlog, services.reads)
        store_up = 1
    except Exception as exc:  # a scrape still answers, saying the store did not
        log.warning("metrics: the store could not be read: %s: %s", type(exc).__name__, exc)
        stored, store_up = {}, 0
    out = Exposition()
    meters = sorted(t.channels.items())
    out.family(
        "hie_messages_received_total",
        "counter",
        "Messages the channel answered since the process started, whatever became of them.",
        (({"channel": c}, m.received) for c, m in meters),
    )
    out.family(
        "hie_messages_filtered_total",
        "counter",
        "Messages a filter step dropped (stored as filtered, answered AA).",
        (({"channel": c}, m.filtered) for c, m in meters),
    )
    out.family(
        "hie_messages_errored_total",
        "counter",
        "Messages answered with an error: errored, rejected, not stored, or unanswered by downstream.",
        (({"channel": c}, m.errored) for c, m in meters),
    )
    out.histogram(
        "hie_answer_seconds",
        "Seconds from a message reaching its channel to its answer (ACK) being ready.",
        (({"channel": c}, m.buckets, m.seconds) for c, m in meters),
    )
    # every queue this process runs appears, at zero when the store has nothing of it
    pairs = {(q.channel_id, q.destination_id) for q in t.queues} | set(stored)
    zero = dict.fromkeys(BACKLOG_STATUSES, 0)
    out.family(
        "hie_deliveries",
        "gauge",
        "Deliveries in the store not done: queued, pending (answering its request), errored (dead letter).",
        (
            ({"channel": c, "destination": d, "status": s}, stored.get((c, d), zero)[s])
            for c, d in sorted(pairs)
            for s in BACKLOG_STATUSES
        ),
    )
    out.family(
        "hie_queue_depth",
        "gauge",
        "Deliveries waiting for their destination (queued + pending), in the store.",
        (
            ({"channel": c, "destination": d}, counts["queued"] + counts["pending"])
            for c, d in sorted(pairs)
            for counts in (stored.get((c, d), zero),)
        ),
    )
    queues = sorted(t.queues, key=lambda q: (q.channel_id, q.destination_id))
    out.family(
        "hie_delivery_attempts_total",
        "counter",
        "Sends by this process's destination queues: sent, or failed (retried or dead-lettered).",
        (
            ({"channel": q.channel_id, "destination": q.destination_id, "outcome": o}, n)
            for q in queues
            for o, n in (("sent", q.sent), ("failed", q.failed))
        ),
    )
    out.family(
        "hie_source_up",
        "gauge",
        "1 while the channel's source takes messages (listening, polling), 0 when it does not.",
        (({"channel": c, "scheme": s.scheme}, int(s.up())) for c, s in sorted(t.sources.items())),
    )
    out.family("hie_store_up", "gauge", "1 when this scrape could read the store.", [({}, store_up)])
    writer = services.writer
    out.family(
        "hie_store_commits_total", "counter", "Group commits of the store writer.", [({}, writer.commits)]
    )
    out.family(
        "hie_store_rows_written_total",
        "counter",
        "Rows the store writer committed.",
        [({}, writer.rows_written)],
    )
    _process(out, t.started_at)
    _collector(out)
    return out.text()


def _collector(out: Exposition) -> None:
    watch = heap.watch()
    if watch is None:  # a runtime that does not keep the heap (tests): nothing timed
        return
    out.family(
        "python_gc_collections_total",
        "counter",
        "Number of times this generation was collected.",
        (({"generation": str(g)}, watch.collections[g]) for g in heap.GENERATIONS),
    )
    out.histogram(
        "hie_gc_pause_seconds",
        "Seconds the garbage collector stopped the process, per collection of this generation.",
        (({"generation": str(g)}, watch.buckets[g], watch.seconds[g]) for g in heap.GENERATIONS),
        bounds=heap.BUCKETS,
    )
    out.family(
        "hie_gc_frozen_objects",
        "gauge",
        "Objects frozen out of the collector's passes (the heap as the engine settled it).",
        [({}, gc.get_freeze_count())],
    )


def _process(out: Exposition, started_at: float) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out.family(
        "process_cpu_seconds_total",
        "counter",
        "Total user and system CPU time spent in seconds.",
        [({}, usage.ru_utime + usage.ru_stime)],
    )
    rss = _rss()
    if rss is not None:
        out.family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", [({}, rss)])
    fds = _open_fds()
    if fds is not None:
        out.family("process_open_fds", "gauge", "Number of open file descriptors.", [({}, fds)])
    out.family(
        "process_start_time_seconds",
        "gauge",
        "Start time of the process since unix epoch in seconds.",
        [({}, started_at)],
    )


def _rss() -> int | None:
    try:  # Linux: the second field of statm is the resident set, in pages
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return pages * os.sysconf("SC_PAGE_SIZE")


def _open_fds() -> int | None:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return None
