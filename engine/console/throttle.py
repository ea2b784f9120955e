"""Failed logins per client address: password spraying across many accounts is slowed down.

The account lockout (``console.lockout_attempts``) protects one account; an address that tries many
user names would never trip it. Each address may fail ``limit`` logins within ``window`` seconds; past
that, its logins are answered 429 without checking the password until the oldest failure leaves the
window. Kept in the process (each ``--workers`` process counts its own): a cheap first line, with the
audit trail (110114 for every failure, 110113 when an address is throttled) as the record.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

__all__ = ["LoginThrottle"]


class LoginThrottle:
    """Sliding-window counts of failed logins per address; bounded in memory."""

    def __init__(
        self,
        limit: int = 20,
        window: float = 60.0,
        *,
        max_addresses: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self.max_addresses = max_addresses
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, address: str, now: float) -> deque[float] | None:
        times = self._failures.get(address)
        if times is None:
            return None
        while times and now - times[0] >= self.window:
            times.popleft()
        if not times:
            del self._failures[address]
            return None
        return times

    def retry_after(self, address: str) -> float:
        """Seconds until ``address`` may try again; 0 when it may now."""
        now = self._clock()
        times = self._recent(address, now)
        if times is None or len(times) < self.limit:
            return 0.0
        return max(0.0, self.window - (now - times[0]))

    def failed(self, address: str) -> None:
        now = self._clock()
        times = self._recent(address, now)
        if times is None:
            if len(self._failures) >= self.max_addresses:
                self._forget_oldest(now)
            times = self._failures[address] = deque(maxlen=self.limit)
        times.append(now)

    def succeeded(self, address: str) -> None:
        """A good login from an address clears its count (a colleague's typo should not linger)."""
        self._failures.pop(address, None)

    def _forget_oldest(self, now: float) -> None:
        for address in list(self._failures):
            self._recent(address, now)
        while len(self._failures) >= self.max_addresses:
            oldest = min(self._failures, key=lambda a: self._failures[a][-1])
            del self._failures[oldest]
