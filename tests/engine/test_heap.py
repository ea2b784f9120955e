"""The engine's heap keeping: the start-up heap frozen out of the collector's passes, what is built
later frozen at the next tick, frozen cyclic garbage freed by the daily full pass, and every
collection's pause timed for the metrics endpoint."""

from __future__ import annotations

import gc
import time
import weakref
from collections.abc import Iterator

import pytest

from engine import heap
from engine.heap import HeapKeeper


class Node:
    """A container that can be part of a reference cycle."""

    def __init__(self) -> None:
        self.other: object = None


def cycle() -> tuple[Node, weakref.ref[Node]]:
    a, b = Node(), Node()
    a.other, b.other = b, a  # only the cyclic collector frees these once they are dropped
    return a, weakref.ref(a)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def keeper() -> Iterator[tuple[HeapKeeper, Clock]]:
    clock = Clock()
    keeper = HeapKeeper(full_pass_seconds=100.0, clock=clock)
    try:
        yield keeper, clock
    finally:
        keeper.release()  # a test process must not keep its objects frozen
        assert gc.get_freeze_count() == 0


def test_settling_freezes_what_survived_and_later_garbage_is_still_collected(
    keeper: tuple[HeapKeeper, Clock],
) -> None:
    k, _ = keeper
    kept, kept_ref = cycle()
    frozen = k.settle()
    assert frozen == gc.get_freeze_count() > 0
    assert gc.is_tracked(kept)
    assert not any(o is kept for o in gc.get_objects())  # frozen: out of every generation
    # made after the freeze and dropped: an ordinary collection frees it
    young_ref = cycle()[1]
    assert young_ref() is not None
    gc.collect()
    assert young_ref() is None
    assert kept_ref() is kept


def test_frozen_cyclic_garbage_waits_for_the_full_pass(keeper: tuple[HeapKeeper, Clock]) -> None:
    k, clock = keeper
    old, old_ref = cycle()
    k.settle()
    del old  # a start-up object dropped later (a channel replaced): garbage, but frozen
    clock.now = 50.0
    k.tick()  # not yet due: collecting skips the frozen
    assert old_ref() is not None
    clock.now = 100.0
    k.tick()  # the full pass: unfrozen, collected, the survivors frozen again
    assert old_ref() is None
    assert gc.get_freeze_count() > 0


def test_what_is_built_after_start_is_frozen_at_the_next_tick(keeper: tuple[HeapKeeper, Clock]) -> None:
    k, _ = keeper
    before = k.settle()
    cache = [Node() for _ in range(1000)]  # a cache warmed by traffic
    assert k.tick() >= before + len(cache)


def test_every_collection_is_timed_per_generation(keeper: tuple[HeapKeeper, Clock]) -> None:
    k, _ = keeper
    watch = heap.watch()
    assert watch is k.watch
    before, seconds = watch.collections[2], watch.seconds[2]
    began = time.perf_counter()
    gc.collect()
    took = time.perf_counter() - began
    assert watch.collections[2] == before + 1
    for g in heap.GENERATIONS:
        assert sum(watch.buckets[g]) == watch.collections[g]
        assert watch.seconds[g] >= 0.0
    assert 0.0 < watch.seconds[2] - seconds <= took  # our collection's pause, as timed from outside
