"""One EMPI per engine process (its PIX Manager and PDQ Supplier), shared by every channel that names
a PIX or PDQ destination.

The EMPI's work is blocking database work, so it runs off the event loop. Feeds change the index
on the store's writer thread, inside the group-committed transaction that stores their message
(``PixFeedDestination.send_in``): one writer per database keeps SQLite free of lock waits, and
PostgreSQL's unique keys guard against other processes. Queries only read, on a few threads of
their own; what an answer writes (a PDQ continuation) commits with its delivery's status.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from engine.services import Services
from engine.store.db import read_retrying
from profiles.empi.config import EmpiConfig
from profiles.empi.index import EmpiIndex
from profiles.pdq.supplier import PdqSupplier
from profiles.pix.manager import PixManager

__all__ = ["EmpiActor"]

_T = TypeVar("_T")
QUERY_THREADS = 4


class EmpiActor:
    def __init__(self, services: Services) -> None:
        config = services.app.section("empi", EmpiConfig)
        # queries read on the reader (autocommit, no pre-ping); feeds write in the store's writer
        index = EmpiIndex(config.matching, services.ids.next)
        self.manager = PixManager(services.reads, config, index)
        self.supplier = PdqSupplier(services.reads, self.manager.domains)
        self._readers = ThreadPoolExecutor(QUERY_THREADS, thread_name_prefix="empi-query")

    @classmethod
    def of(cls, services: Services) -> EmpiActor:
        actor = services.actors.get("empi")
        if actor is None:
            actor = services.actors["empi"] = cls(services)
        assert isinstance(actor, EmpiActor)
        return actor

    async def read(self, fn: Callable[..., _T], *args: Any) -> _T:
        """``fn(*args)`` on a query thread, asked once more if the database dropped its connection."""
        return await asyncio.get_running_loop().run_in_executor(
            self._readers, read_retrying, functools.partial(fn, *args)
        )
