"""A store filled by a real engine run, shared by the CLI and query tests (synthetic messages only).

Channel ``adt`` keeps ADT^A01/A04/A08 and delivers to ``out`` (answers AA) and ``arch``; channel ``lab``
delivers to ``lis``, which refuses everything. Messages:

- A1: ADT^A01, patient P100, HOSP_A, UTF-8: sent to out and arch
- A2: ADT^A08, patient P200, HOSP_B, GB18030 bytes: sent to out and arch
- A3: ADT^A03, patient P300: filtered
- A4: ADT^A01 without MSH-10, patient P400: rejected, stored as errored
- L1 (lab): ADT^A04, patient P100: its delivery to lis is errored (refused)
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, func, select

from engine.config import AppConfig
from engine.connectors import memory
from engine.store.db import open_engine
from engine.store.schema import deliveries
from tests.conftest import hl7_message, running

__all__ = ["ADT", "LAB", "Filled", "fill", "raw_messages", "until"]

ADT = """id: adt
source: {url: 'memory://adt'}
steps:
  - filter: {message_type: [ADT^A01, ADT^A04, ADT^A08]}
destinations:
  - {id: out, url: 'memory://adt-out', answer: true}
  - {id: arch, url: 'memory://adt-arch'}
"""

LAB = """id: lab
source: {url: 'memory://lab'}
destinations:
  - {id: lis, url: 'memory://lab-lis', refuse: true}
"""


def raw_messages() -> dict[str, bytes]:
    a2 = hl7_message("A2", event="A08", patient="P200", charset="GB18030")
    a2 = a2.replace("|HIS|HOSP_A|", "|HIS|HOSP_B|")
    return {
        "A1": hl7_message("A1", event="A01", patient="P100").encode(),
        "A2": a2.encode("gb18030"),
        "A3": hl7_message("A3", event="A03", patient="P300").encode(),
        "A4": hl7_message("", event="A01", patient="P400").encode(),
        "L1": hl7_message("L1", event="A04", patient="P100").encode(),
    }


@dataclass
class Filled:
    app: AppConfig
    config: Path  # config.yaml, for --config
    ids: dict[str, int]  # label (A1...) -> message id
    raw: dict[str, bytes]

    def db(self) -> Engine:
        return open_engine(self.app.store_url)


async def until(predicate: Callable[[], Any], seconds: float = 15.0) -> Any:
    for _ in range(int(seconds / 0.05)):
        value = predicate()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met in time")


def _settled(db: Engine) -> bool:
    with db.connect() as conn:
        query = select(deliveries.c.status, func.count()).group_by(deliveries.c.status)
        counts: dict[str, int] = {status: n for status, n in conn.execute(query)}
    return counts.get("sent", 0) == 4 and counts.get("errored", 0) == 1 and not counts.get("queued")


async def fill(make_app: Callable[..., AppConfig], store_url: str | None = None) -> Filled:
    """Run the engine, feed the five messages, wait until every delivery is done, stop it."""
    memory.SINKS.clear()
    app = make_app({"adt": ADT, "lab": LAB}, store_url=store_url)
    raws = raw_messages()
    ids: dict[str, int] = {}
    async with running(app) as rt:
        assert rt.services is not None
        for label in ("A1", "A2", "A3", "A4", "L1"):
            _, msg = await memory.inject("lab" if label == "L1" else "adt", raws[label])
            assert msg is not None
            ids[label] = msg.id
        await until(lambda: _settled(rt.services.db) if rt.services else False)
    return Filled(app=app, config=app.path, ids=ids, raw=raws)
