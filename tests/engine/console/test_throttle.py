"""Failed logins per address: the limit, the window sliding, a good login clearing, memory bounded."""

from __future__ import annotations

from engine.console.throttle import LoginThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_address_is_held_back_after_the_limit_until_the_window_passes() -> None:
    clock = Clock()
    t = LoginThrottle(limit=3, window=60, clock=clock)
    for _ in range(3):
        assert t.retry_after("10.0.0.1") == 0
        t.failed("10.0.0.1")
        clock.now += 1
    assert 55 < t.retry_after("10.0.0.1") <= 58
    assert t.retry_after("10.0.0.2") == 0, "another address is not held back"
    clock.now += 57.5
    assert t.retry_after("10.0.0.1") == 0, "the oldest failure left the window"


def test_a_good_login_clears_the_count() -> None:
    clock = Clock()
    t = LoginThrottle(limit=2, window=60, clock=clock)
    t.failed("a")
    t.succeeded("a")
    t.failed("a")
    assert t.retry_after("a") == 0


def test_memory_stays_bounded_under_many_addresses() -> None:
    clock = Clock()
    t = LoginThrottle(limit=2, window=60, max_addresses=100, clock=clock)
    for n in range(1000):
        t.failed(f"10.0.{n // 256}.{n % 256}")
        clock.now += 0.001
    assert len(t._failures) <= 100
