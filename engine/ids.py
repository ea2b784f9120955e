"""63-bit, time-ordered ids made by each engine node without asking the database.

Layout: milliseconds since 2024-01-01 (41 bits, until 2093) | node (10 bits) | sequence (12 bits).
Ids from one node increase strictly, so ordering by id is ordering by arrival on that node.
"""

from __future__ import annotations

import threading
import time

__all__ = ["IdGenerator"]

_EPOCH_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z


class IdGenerator:
    def __init__(self, node: int) -> None:
        self.node = node % 1024
        self._last = 0
        self._lock = threading.Lock()

    def next(self) -> int:
        with self._lock:
            now = (int(time.time() * 1000) - _EPOCH_MS) << 22 | self.node << 12
            # same millisecond (or a clock step back): continue the sequence from the last id
            candidate = max(now, self._last + 1)
            if (candidate >> 12) & 1023 != self.node:  # sequence overflowed into the node bits
                candidate = (((candidate >> 22) + 1) << 22) | self.node << 12
            self._last = candidate
            return candidate

    @staticmethod
    def timestamp_ms(ident: int) -> int:
        return (ident >> 22) + _EPOCH_MS
