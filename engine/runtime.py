"""Starts and stops every channel: store, destination queues, sources, housekeeping jobs, signals."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from dataclasses import dataclass

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from engine.alerts.rules import Alerter
from engine.channel import Channel
from engine.config import AppConfig
from engine.connectors.base import Source, parse_url
from engine.delivery import DestinationQueue, recover_orphans
from engine.heap import SETTLE_SECONDS, HeapKeeper
from engine.plugins import Job
from engine.registry import destination_options, source_options, tls_context
from engine.retention import PRUNE
from engine.services import Services
from engine.store.db import heartbeat
from engine.store.textindex import TEXT_INDEX

__all__ = ["Runtime", "Worker"]

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 10


@dataclass(frozen=True)
class Worker:
    """This process's place among the workers of ``hie run --workers N`` (index 0 of 1 alone)."""

    index: int = 0
    count: int = 1
    parent: int | None = None  # the supervisor's pid: a worker whose supervisor is gone stops


class Runtime:
    def __init__(self, app: AppConfig, worker: Worker | None = None, *, keep_heap: bool = False) -> None:
        """``keep_heap``: this runtime is its process's only one (``hie run``): the collector's
        pauses are kept short by freezing the heap once started (``engine.heap``)."""
        self.app = app
        self.worker = worker or Worker()
        self.heap = HeapKeeper() if keep_heap else None
        self.channels: dict[str, Channel] = {}
        self.sources: dict[str, Source] = {}
        self.queues: list[DestinationQueue] = []
        self.services: Services | None = None
        self.alerter: Alerter | None = None  # the alert rules' checks (config alerts:), first worker
        self._scheduler: AsyncIOScheduler | None = None
        self._stop = asyncio.Event()

    async def start(self) -> None:
        app = self.app
        self.services = services = await asyncio.to_thread(Services.open, app)
        for cfg in app.channels:
            if not cfg.enabled:
                log.info("channel %s is disabled", cfg.id)
                continue
            channel = Channel(cfg, services)
            for i, dest in enumerate(cfg.destinations):
                cls, options = destination_options(cfg, i)
                tls = tls_context(app, getattr(options, "tls", None), server=False)
                connector = cls(parse_url(dest.url), options, app, tls, cfg.id, dest.id)
                connector.attach(services)
                queue = DestinationQueue(cfg.id, dest, connector, services)
                channel.queues[dest.id] = queue
                self.queues.append(queue)
            src_cls, src_options = source_options(cfg)
            tls = tls_context(app, getattr(src_options, "tls", None), server=True)
            self.channels[cfg.id] = channel
            if self.worker.count > 1 and not src_cls.shares_port and self.worker.index > 0:
                # a folder poller or an outbox reader: one worker runs it, the others only deliver
                log.info("channel %s: its %s source runs in the first worker only", cfg.id, src_cls.scheme)
                continue
            source = src_cls(parse_url(cfg.source.url), src_options, channel, app, tls)
            source.reuse_port = self.worker.count > 1 and src_cls.shares_port
            source.attach(services)
            self.sources[cfg.id] = source
        services.telemetry.attach(self.sources, self.queues)  # what metrics:// and alert rules look at
        await asyncio.to_thread(recover_orphans, services, self.queues)
        for queue in self.queues:
            await queue.start()
        started: list[Source] = []
        try:
            for source in self.sources.values():
                await source.start()
                started.append(source)
        except Exception:
            for source in started:
                await source.stop()
            for queue in self.queues:
                await queue.stop()
            services.close()
            raise
        self._scheduler = AsyncIOScheduler()
        self._scheduler.add_job(
            self._housekeeping, "interval", seconds=HEARTBEAT_SECONDS, max_instances=1, coalesce=True
        )
        if self.worker.parent is not None:
            self._scheduler.add_job(self._orphaned, "interval", seconds=1.0, max_instances=1, coalesce=True)
        if self.worker.index == 0:  # scheduled work (retention, text index, plugins' jobs) runs once
            indexing = (TEXT_INDEX,) if app.store.text_index else ()
            for job in (PRUNE, *indexing, *(j for plugin in app.plugins for j in plugin.jobs)):
                trigger, schedule = job.schedule(app)
                self._scheduler.add_job(
                    self._run_job, trigger, args=[job], max_instances=1, coalesce=True, **schedule
                )
        if self.worker.index == 0 and app.alerts.rules:
            self.alerter = Alerter(app.alerts, services)
            self._scheduler.add_job(
                self.alerter.check,
                "interval",
                seconds=app.alerts.check_seconds,
                max_instances=1,
                coalesce=True,
            )
        if self.heap is not None:
            self._scheduler.add_job(
                self._settle_heap, "interval", seconds=SETTLE_SECONDS, max_instances=1, coalesce=True
            )
        self._scheduler.start()
        if self.heap is not None:
            await self._settle_heap()  # everything start-up built is frozen: full passes stay short
        log.info(
            "engine started: %d channel(s), node %d, store %s%s",
            len(self.channels),
            services.node_id,
            _redact(app.store_url),
            f", worker {self.worker.index + 1} of {self.worker.count}" if self.worker.count > 1 else "",
        )

    async def _orphaned(self) -> None:
        """A worker whose supervisor died (kill -9) stops rather than serve on unsupervised."""
        if os.getppid() != self.worker.parent:
            log.warning("the supervisor (pid %s) is gone: stopping", self.worker.parent)
            self.request_stop()

    async def _housekeeping(self) -> None:
        assert self.services is not None
        try:
            await asyncio.to_thread(heartbeat, self.services.db, self.services.node_id)
            await asyncio.to_thread(recover_orphans, self.services, self.queues)
        except Exception as exc:
            log.error("housekeeping failed: %s", exc)

    async def _settle_heap(self) -> None:
        assert self.heap is not None
        frozen = self.heap.tick()
        log.debug("heap settled: %d object(s) frozen", frozen)

    async def _run_job(self, job: Job) -> None:
        assert self.services is not None
        try:
            await asyncio.to_thread(job.run, self.services, self.app)
        except Exception as exc:
            log.error("scheduled job %s failed: %s: %s", job.name, type(exc).__name__, exc)

    async def stop(self) -> None:
        for source in self.sources.values():
            with contextlib.suppress(Exception):
                await source.stop()
        for queue in self.queues:
            await queue.stop()
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
        if self.services is not None:
            await asyncio.to_thread(self.services.close)
        if self.heap is not None:
            self.heap.release()
        log.info("engine stopped")

    def request_stop(self) -> None:
        self._stop.set()

    async def run_forever(self) -> None:
        await self.start()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, self.request_stop)
        try:
            await self._stop.wait()
        finally:
            await self.stop()


def _redact(url: str) -> str:
    """Never log a password from the store URL."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':')[0]}:***@{host}"
    return url
