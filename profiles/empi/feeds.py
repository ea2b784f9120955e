"""Group commit for EMPI feeds: many ITI-8 feeds, one transaction, one fsync.

A feed reads its candidates and writes a few rows; on SQLite with ``synchronous=FULL`` the commit
(an fsync) costs more than the work. One thread takes every feed waiting (up to ``MAX_GROUP``),
applies them in order in one transaction and commits once; each feed's answer is released only
after that commit, so an acknowledged feed is durable. Feeds in a group see the ones before them
(same connection), so two feeds of one patient in a group link as they would one after the other.

A feed refused with a MessageError wrote nothing (``PixManager.feed_in`` checks before writing),
so the group goes on without it. Any other failure (a unique key taken by another node, a database
error) rolls the group back and each of its feeds is applied again in a transaction of its own, so
one bad feed fails alone.
"""

from __future__ import annotations

import concurrent.futures
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, Engine

from engine.errors import MessageError

__all__ = ["FeedGroups"]

log = logging.getLogger(__name__)

MAX_GROUP = 64
Work = Callable[[Connection], Any]


class FeedGroups:
    def __init__(self, db: Engine, name: str = "empi-feed") -> None:
        self.db = db
        self._queue: queue.SimpleQueue[tuple[Work, concurrent.futures.Future[Any]] | None] = (
            queue.SimpleQueue()
        )
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, work: Work) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._queue.put((work, future))
        return future

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            group = [item]
            while len(group) < MAX_GROUP:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._queue.put(None)  # stop after this group
                    break
                group.append(more)
            self._apply(group)

    def _apply(self, group: list[tuple[Work, concurrent.futures.Future[Any]]]) -> None:
        outcomes: list[tuple[concurrent.futures.Future[Any], Any, BaseException | None]] = []
        try:
            with self.db.begin() as conn:
                for work, future in group:
                    try:
                        outcomes.append((future, work(conn), None))
                    except MessageError as exc:  # refused before writing: the group goes on
                        outcomes.append((future, None, exc))
        except Exception as exc:
            if len(group) == 1:
                group[0][1].set_exception(exc)
                return
            log.warning("a group of %d feeds failed (%s); applying them one by one", len(group), exc)
            for work, future in group:
                try:
                    with self.db.begin() as conn:
                        result = work(conn)
                except BaseException as single:  # handed to the waiting feed
                    future.set_exception(single)
                else:
                    future.set_result(result)  # only once committed
            return
        for future, result, error in outcomes:  # committed: now the answers may go out
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result)
