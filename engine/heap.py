"""Keeping the garbage collector's pauses short in a long-running engine process.

Why. CPython's cyclic collector stops the process while it runs, and a full (generation 2) pass
visits every container object alive. After start-up an engine holds several hundred thousand of
them that never go away: modules, the channels, the mapping tables, the name-to-pinyin
dictionaries, SQLAlchemy's compiled statements. Measured on the EMPI benchmark (2 workers on
PostgreSQL, 8 clients), a full pass took 116-124 ms in each worker, and every request in flight
waited for it: in that benchmark only the 8 clients' requests (its slowest answers), but with
hospitals sending independently at a thousand requests a second, about a hundred answers late by
up to a tenth of a second each time. With the start-up heap frozen the same passes took 4-6 ms.

What. ``HeapKeeper.settle`` collects once and then freezes what survived (``gc.freeze``: moved to a
permanent generation that collections skip). What the engine builds later (lazily imported
modules, caches warmed by traffic) is frozen by the next ``tick``, every ``SETTLE_SECONDS``: each
tick is a collection of the objects made since the last one, then a freeze. Objects that were
frozen and later become cyclic garbage (a channel replaced, a pool recycled) are not freed while
frozen, so once every ``FULL_PASS_SECONDS`` a tick unfreezes first and makes one full pass: one
pause of the old length a day. Objects without cycles are freed by reference counting whether
frozen or not.

``GcWatch`` times every collection (``gc.callbacks``) per generation, for the metrics endpoint
(``hie_gc_pause_seconds``, ``python_gc_collections_total``, ``hie_gc_frozen_objects``): an
operator who sees answer latencies jump can tell a collector pause from a slow database.

The engine's command (``hie run``) keeps the heap; a ``Runtime`` made by a test does not, since
freezing a test process's objects would keep every earlier test's garbage.
"""

from __future__ import annotations

import gc
import logging
import time
from bisect import bisect_left
from collections.abc import Callable
from typing import Any

__all__ = [
    "BUCKETS",
    "FULL_PASS_SECONDS",
    "GENERATIONS",
    "SETTLE_SECONDS",
    "GcWatch",
    "HeapKeeper",
    "watch",
]

log = logging.getLogger(__name__)

SETTLE_SECONDS = 600.0  # between two ticks: what was built meanwhile is collected, the rest frozen
FULL_PASS_SECONDS = 86_400.0  # between two full passes over the frozen objects too
# upper bounds (seconds) of the pause histogram: a young collection takes well under a millisecond,
# a full pass over an unfrozen heap a tenth of a second
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
GENERATIONS = (0, 1, 2)


class GcWatch:
    """Per generation: how many collections, their pauses as a histogram, and the seconds in all."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._began = 0.0
        self.seconds = [0.0, 0.0, 0.0]
        self.buckets = [[0] * (len(BUCKETS) + 1) for _ in GENERATIONS]  # per bucket; last is +Inf

    @property
    def collections(self) -> list[int]:
        """Collections per generation since the watch was installed (the histograms' counts)."""
        return [sum(b) for b in self.buckets]

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        # the collector never runs two collections at once, so start and stop come in pairs
        if phase == "start":
            self._began = self._clock()
            return
        elapsed = self._clock() - self._began
        generation = min(int(info.get("generation", 2)), 2)
        self.seconds[generation] += elapsed
        self.buckets[generation][bisect_left(BUCKETS, elapsed)] += 1


_watch: GcWatch | None = None


def watch() -> GcWatch | None:
    """The process's collection timer, once a ``HeapKeeper`` has started it; else None."""
    return _watch


def _install_watch() -> GcWatch:
    global _watch
    if _watch is None:
        _watch = GcWatch()
        gc.callbacks.append(_watch)
    return _watch


class HeapKeeper:
    """Freezes the heap after start-up and again every ``SETTLE_SECONDS`` (``tick``), with a full
    pass over the frozen objects every ``FULL_PASS_SECONDS``."""

    def __init__(
        self,
        *,
        full_pass_seconds: float = FULL_PASS_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.full_pass_seconds = full_pass_seconds
        self._clock = clock
        self._last_full = clock()
        self.watch = _install_watch()

    def settle(self) -> int:
        """Collect, then freeze what survived; how many objects are frozen now."""
        collected = gc.collect()
        gc.freeze()
        frozen = gc.get_freeze_count()
        log.debug("heap: %d object(s) collected, %d frozen", collected, frozen)
        return frozen

    def tick(self) -> int:
        """``settle``, after unfreezing everything when a full pass is due; how many are frozen."""
        now = self._clock()
        if now - self._last_full >= self.full_pass_seconds:
            self._last_full = now
            gc.unfreeze()  # the frozen objects are looked at again: cyclic garbage among them goes
        return self.settle()

    def release(self) -> None:
        """Give the frozen objects back to the collector (the runtime is stopping)."""
        gc.unfreeze()
