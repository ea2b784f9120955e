"""``hie run --workers N``: N engine processes on one machine, sharing its listeners and one PostgreSQL.

One engine process is one Python interpreter: one core's worth of work, however many cores the
machine has. The architecture's answer is several ``hie`` processes sharing PostgreSQL (each its
own node: its own ids, its own queue entries, taken over by the others if it dies). On one machine
this supervisor starts them:

* the schema is migrated once, here, before any worker starts (Alembic runs are not concurrent);
* every worker listens on the same MLLP and HTTP ports with SO_REUSEPORT, and the kernel spreads
  incoming connections over them (a sender's connection stays with one worker, so its messages
  keep their order);
* sources that cannot be shared (folder pollers, the ITI-10 outbox reader) run in the first worker only;
* a worker that dies is started again (after 1 s, doubling to 30 s while it keeps dying); SIGTERM
  or Ctrl-C stops them all; a worker whose supervisor is killed stops by itself.

SQLite is refused: it has one writer per database file, so a second process only waits for it.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from types import FrameType

from sqlalchemy.engine import make_url

from engine.config import AppConfig
from engine.store.db import migrate, open_engine

__all__ = ["WorkersRefused", "supervise", "worker_argument"]

log = logging.getLogger(__name__)

STOP_SECONDS = 30.0  # how long a worker may take to stop before it is killed
_BACKOFF_MAX = 30.0


class WorkersRefused(ValueError):
    """This configuration cannot run several workers (the message says why)."""


@dataclass
class _Child:
    index: int
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    backoff: float = 1.0
    due: float = 0.0  # when to start it again after it died
    exits: list[int] = field(default_factory=list)


def worker_argument(index: int, count: int, parent: int) -> str:
    """The hidden ``--worker`` value a child is started with: ``index/count/parent pid``."""
    return f"{index}/{count}/{parent}"


def supervise(app: AppConfig, count: int) -> int:
    """Run ``count`` workers until SIGTERM/SIGINT; the exit code for ``hie run``."""
    if make_url(app.store_url).get_backend_name() != "postgresql":
        raise WorkersRefused(
            f"--workers {count} needs a PostgreSQL store (store.url in {app.path}); SQLite has one "
            "writer per database file, so more processes would only wait for each other"
        )
    db = open_engine(app.store_url)
    try:
        migrate(db, app.migrations)
    finally:
        db.dispose()
    stopping = False

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    children = [_Child(i) for i in range(count)]
    try:
        for child in children:
            _start(app, child, count)
        log.info("supervisor %d: %d workers started", os.getpid(), count)
        while not stopping:
            now = time.monotonic()
            for child in children:
                _tend(app, child, count, now)
            time.sleep(0.2)
    finally:
        _stop_all(children)
        for s, handler in previous.items():
            signal.signal(s, handler)
    log.info("supervisor %d: every worker stopped", os.getpid())
    return 0


def _start(app: AppConfig, child: _Child, count: int) -> None:
    argv = [sys.executable, "-m", "engine.cli.main", "run", "--config", str(app.path)]
    argv += ["--worker", worker_argument(child.index, count, os.getpid())]
    child.process = subprocess.Popen(argv)
    child.started = time.monotonic()


def _tend(app: AppConfig, child: _Child, count: int, now: float) -> None:
    """Start again a worker that died, no sooner than its backoff allows."""
    if child.process is not None:
        code = child.process.poll()
        if code is None:
            if now - child.started > 60.0:
                child.backoff = 1.0  # it has been healthy for a minute
            return
        child.exits.append(code)
        log.error("worker %d (pid %d) exited with %d; starting it again in %.0f s",
                  child.index + 1, child.process.pid, code, child.backoff)  # fmt: skip
        child.process, child.due = None, now + child.backoff
        child.backoff = min(child.backoff * 2, _BACKOFF_MAX)
    if now >= child.due:
        _start(app, child, count)


def _stop_all(children: list[_Child]) -> None:
    running = [c.process for c in children if c.process is not None and c.process.poll() is None]
    for process in running:
        process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_SECONDS
    for process in running:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.error("worker pid %d did not stop in %.0f s: killed", process.pid, STOP_SECONDS)
            process.kill()
            process.wait()
