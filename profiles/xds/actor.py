"""One XDS.b registry and repository per engine process, shared by the channels that name them.

Registrations (ITI-42, and the registration inside ITI-41) change the registry on the store's
writer thread, inside the transaction that stores their message, as the PIX Manager's feeds do:
the message, the registry's rows, the repository's rows, their ATNA records and the answer's
delivery status commit together or not at all. Queries (ITI-18) and retrievals (ITI-43) only read,
on a few threads of their own; reading a document's bytes (hashed as it is read) happens there too.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from engine.services import Services
from engine.store.db import read_retrying
from profiles.empi.actor import EmpiActor
from profiles.xds.blobs import BlobStore
from profiles.xds.config import XdsConfig
from profiles.xds.patients import AffinityPatients
from profiles.xds.registry import Registry, follow_merge
from profiles.xds.repository import Repository

__all__ = ["XdsActor"]

_T = TypeVar("_T")
READ_THREADS = 4


class XdsActor:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.config = services.app.section("xds", XdsConfig)
        self.blobs = BlobStore(services.app.data_dir / self.config.documents_dir)
        empi = EmpiActor.of(services)
        self.patients = AffinityPatients(empi.manager.domains, empi.manager.index)
        self.registry = Registry(services.ids.next, self.patients.person_of)
        self.repository = Repository(self.config.repository_unique_id, self.blobs, self.registry)
        self._readers = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="xds-read")
        empi.manager.index.merge_listeners.append(follow_merge)

    @classmethod
    def of(cls, services: Services) -> XdsActor:
        actor = services.actors.get("xds")
        if actor is None:
            actor = services.actors["xds"] = cls(services)
        assert isinstance(actor, XdsActor)
        return actor

    async def read(self, fn: Callable[..., _T], *args: Any) -> _T:
        """``fn(*args)`` on a read thread, asked once more if the database dropped its connection."""
        return await asyncio.get_running_loop().run_in_executor(
            self._readers, read_retrying, functools.partial(fn, *args)
        )

    async def off_loop(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Blocking work that is not a database read (parsing a large request, writing a document)."""
        return await asyncio.get_running_loop().run_in_executor(self._readers, functools.partial(fn, *args))
