"""Free-text search (engine/store/textindex.py) on a big store: how fast the background indexer reads
and indexes, how long it holds the store's writer, and what a text search's first page costs.

    .venv/bin/python bench/text_search.py                         # 1,000,000 messages, SQLite
    .venv/bin/python bench/text_search.py --messages 200000 --postgres

1. The store is filled directly (as the writer would) with ``--messages`` synthetic HL7 v2 messages of
   about 1 KB: made-up Chinese names (family name + one or two given characters) and addresses, ward,
   doctor, lab results; every other message GB18030 with MSH-18 ``GB 18030-2000``; ids made from each
   message's time as the engine's are, over ``--days`` days.
2. The indexer (``textindex.index_pending``, what the engine's job runs) indexes the backlog on a
   store writer of its own: the oldest 90 % with the writer otherwise idle, then the rest while a
   probe commits a tiny write through the same writer about 50 times a second (as stored messages
   would; on SQLite the indexer then takes at most ``BUSY_SHARE`` of the writer). Printed: messages
   indexed per second (reading, decoding and writing) in each phase, the index's size, how long each
   chunk took from its submission to its commit (on SQLite the longest a message's commit would wait
   behind it), and the probe's commit latency while the indexer works and then idle.
3. Searches, ``queries.search(Search(text=..., limit=50))`` (the console's first page, newest first),
   each asked ``--repeat`` times: p50 and slowest, and how many it found (of 50). PostgreSQL is
   analyzed first, as autovacuum soon does; SQLite is not (the engine never runs ANALYZE there).

    .venv/bin/python bench/text_search.py --keep /tmp/t/hie.db       # keep the SQLite store, then
    .venv/bin/python bench/text_search.py --searches-only /tmp/t/hie.db  # ask the searches again
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.mllp_throughput import pg_database  # noqa: E402

EPOCH_MS = 1_704_067_200_000  # engine.ids
CHANNELS = [f"hosp-{n:02d}-adt" for n in range(4)]
FAMILY = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
)
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华建国志红玉萍文斌宇浩凯鹏辉晨阳欣怡子涵梓轩雨桐思远"
STREETS = ["人民路", "解放路", "中山路", "建设路", "和平街", "文化路", "胜利路", "新华街", "长江路", "黄河路"]
CITIES = [
    ("北京市", "100000"),
    ("上海市", "200000"),
    ("广州市", "510000"),
    ("杭州市", "310000"),
    ("成都市", "610000"),
]
TESTS = [("2345-7", "Glucose", "mmol/L", "3.9-6.1"), ("2160-0", "Creatinine", "umol/L", "44-133"),
         ("718-7", "Hemoglobin", "g/L", "115-150"), ("6690-2", "WBC", "10*9/L", "3.5-9.5"),
         ("2823-3", "Potassium", "mmol/L", "3.5-5.3"), ("2951-2", "Sodium", "mmol/L", "137-147")]  # fmt: skip


def person(rng: random.Random) -> str:
    return rng.choice(FAMILY) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2, 2))))


def message(rng: random.Random, n: int, at: datetime, gb: bool) -> tuple[bytes, str]:
    """(bytes, charset) of one synthetic ADT^A01 of about 1 KB."""
    ts = at.strftime("%Y%m%d%H%M%S")
    h = n % len(CHANNELS)
    name = person(rng)
    city, post = rng.choice(CITIES)
    street = f"{rng.randint(1, 300)}号{rng.choice(STREETS)}"
    charset = "GB 18030-2000" if gb else "UNICODE UTF-8"
    lines = [
        f"MSH|^~\\&|HIS|HOSP_{h:02d}|HIE|CITY_HIE|{ts}||ADT^A01^ADT_A01|C{n:010d}|P|2.5|||AL|NE|CHN|{charset}",
        f"EVN|A01|{ts}",
        f"PID|1||P{rng.randrange(10**8):08d}^^^HOSP_{h:02d}&1.2.156.112604.1.{h}&ISO^PI||{name}^^^^^^L||"
        f"19{rng.randint(30, 99)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}|{rng.choice('MF')}|||"
        f"{street}^^{city}^^{post}^CHN||^PRN^PH^^^^^1{rng.randint(3000000000, 8999999999)}",
        f"PV1|1|I|W{rng.randint(1, 40):02d}^{rng.randint(100, 999)}^1^HOSP_{h:02d}||||"
        f"D{rng.randint(1000, 9999)}^{person(rng)}^^^^医生|||MED||||1|||||V{n}",
        f"DG1|1||I10^高血压^ICD10||{ts}|A",
    ]
    size = sum(len(x.encode()) + 1 for x in lines)
    i = 0
    while size < 1000:
        code, test, unit, ref = rng.choice(TESTS)
        i += 1
        line = f"OBX|{i}|NM|{code}^{test}^LN||{rng.uniform(1, 150):.1f}|{unit}|{ref}|N|||F|||{ts}"
        lines.append(line)
        size += len(line) + 1
    text = "\r".join(lines) + "\r"
    return (text.encode("gb18030"), "gb18030") if gb else (text.encode(), "utf-8")


def load(store_url: str, count: int, days: int) -> tuple[float, str]:
    """Fill the store; (seconds, a name of a message in the oldest tenth, to search for)."""
    from engine.store.db import migrate, open_engine
    from engine.store.schema import messages
    from engine.store.writer import insert_rows

    db = open_engine(store_url, synchronous="normal")
    migrate(db)
    rng = random.Random(20261212)
    now = datetime.now(UTC) - timedelta(minutes=1)
    start = now - timedelta(days=days)
    step = (now - start) / count
    rows: list[dict[str, Any]] = []
    rare = ""
    t0 = time.perf_counter()
    for n in range(count):
        at = start + step * n
        ident = (int(at.timestamp() * 1000) - EPOCH_MS) << 22 | 7 << 12 | (n & 0xFFF)
        raw, charset = message(rng, n, at, gb=n % 2 == 1)
        if n == count // 20:
            rare = raw.decode(charset).split("PID|", 1)[1].split("|")[4].split("^")[0]
        rows.append(
            {
                "id": ident,
                "channel_id": CHANNELS[n % len(CHANNELS)],
                "received_at": at,
                "updated_at": at,
                "status": "sent",
                "content_type": "hl7v2",
                "charset": charset,
                "control_id": f"C{n:010d}",
                "message_type": "ADT^A01",
                "sending_application": "HIS",
                "sending_facility": f"HOSP_{n % len(CHANNELS):02d}",
                "receiving_application": "HIE",
                "receiving_facility": "CITY_HIE",
                "peer": "10.1.0.1:40000",
                "raw": raw,
                "content": None,
                "error": None,
                "error_detail": None,
                "warnings": None,
                "reprocessed_from": None,
            }
        )
        if len(rows) >= 10_000:
            with db.begin() as conn:
                insert_rows(conn, [(messages, rows)])
            rows.clear()
    if rows:
        with db.begin() as conn:
            insert_rows(conn, [(messages, rows)])
    db.dispose()
    return time.perf_counter() - t0, rare


def size(db: Any) -> float:
    """The store's size in MB."""
    from sqlalchemy import text

    with db.connect() as conn:
        if db.dialect.name == "postgresql":
            return float(conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one()) / 1e6
        pages = conn.exec_driver_sql("PRAGMA page_count").scalar_one()
        free = conn.exec_driver_sql("PRAGMA freelist_count").scalar_one()
        page = conn.exec_driver_sql("PRAGMA page_size").scalar_one()
        return float((pages - free) * page) / 1e6


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


class Probe(threading.Thread):
    """A tiny commit through the store's writer about 50 times a second; its latencies, in ms."""

    def __init__(self, services: Any, node_id: int) -> None:
        super().__init__(daemon=True)
        self.services = services
        self.node_id = node_id
        self.latencies: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        from sqlalchemy import update

        from engine.store.db import utcnow
        from engine.store.schema import nodes
        from engine.store.writer import Batch

        while not self.stop.is_set():
            batch = Batch()
            stmt = update(nodes).where(nodes.c.id == self.node_id).values(heartbeat_at=utcnow())
            batch.then(lambda conn, s=stmt: conn.execute(s) and None)
            began = time.perf_counter()
            self.services.writer.write_sync(batch)
            self.latencies.append((time.perf_counter() - began) * 1000)
            time.sleep(0.02)


def index(store_url: str, days: int) -> dict[str, Any]:
    """Index the oldest 90 % of the messages with the writer otherwise idle, then the rest while the
    probe commits (the indexer then takes at most ``textindex.BUSY_SHARE`` of the writer)."""
    from engine.ids import IdGenerator
    from engine.services import Services
    from engine.store import textindex
    from engine.store.db import open_engine, register_node
    from engine.store.writer import BatchWriter

    db = open_engine(store_url, synchronous="full")
    node = register_node(db)
    writer = BatchWriter(db)
    writer.start()
    services = Services(app=None, db=db, writer=writer, ids=IdGenerator(node), node_id=node)  # type: ignore[arg-type]
    before = size(db)
    holds: list[float] = []
    took = textindex._Pace.took

    def timed(pace: Any, count: int, seconds: float, busy: bool) -> float:
        holds.append(seconds * 1000)
        return took(pace, count, seconds, busy)

    textindex._Pace.took = timed  # type: ignore[method-assign]
    t0 = time.perf_counter()
    idle_done = textindex.index_pending(services, settle=days * 86400 * 0.1)
    idle_seconds = time.perf_counter() - t0
    probe = Probe(services, node)
    probe.start()
    t0 = time.perf_counter()
    busy_done = textindex.index_pending(services, settle=0)
    busy_seconds = time.perf_counter() - t0
    busy = list(probe.latencies)
    time.sleep(3)
    probe.stop.set()
    probe.join()
    idle = probe.latencies[len(busy) :]
    textindex._Pace.took = took  # type: ignore[method-assign]
    out = {
        "idle_done": idle_done,
        "idle_seconds": idle_seconds,
        "busy_done": busy_done,
        "busy_seconds": busy_seconds,
        "index_mb": size(db) - before,
        "holds": holds,
        "busy": busy,
        "idle": idle,
        "postgres": db.dialect.name == "postgresql",
    }
    writer.stop()
    db.dispose()
    return out


def searches(store_url: str, rare: str, repeat: int) -> list[tuple[str, list[float], int]]:
    from engine.store.db import open_engine, open_reader
    from engine.store.queries import Search, search

    db = open_engine(store_url)
    reads = open_reader(store_url, db)
    with db.connect() as conn:
        newest = conn.exec_driver_sql("SELECT max(id) FROM messages").scalar_one()
    cases = [
        (f"a rare name ({rare})", Search(text=rare)),
        (f"a rare name, channel {CHANNELS[1]}", Search(text=rare, channel=CHANNELS[1])),
        ("an address fragment (号人民路, 1 in 10)", Search(text="号人民路")),
        ("a street and a city (人民路^^北京市)", Search(text="人民路^^北京市")),
        ("a word in every message (CITY_HIE)", Search(text="CITY_HIE")),
        ("second page of it (before=newest)", Search(text="CITY_HIE", before_id=newest)),
        ("absent (不存在的文字)", Search(text="不存在的文字")),
        ("absent, common trigrams (A01|HOSP_0)", Search(text="A01|HOSP_0")),
        ("lab value (Potassium^LN||4.2)", Search(text="Potassium^LN||4.2")),
    ]
    out = []
    for label, s in cases:
        times = []
        found = 0
        for _ in range(repeat):
            t0 = time.perf_counter()
            found = len(search(reads, s))
            times.append((time.perf_counter() - t0) * 1000)
        out.append((label, times, found))
    if reads is not db:
        reads.dispose()
    db.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=5, help="times each search is asked")
    parser.add_argument("--postgres", action="store_true", help="a fresh PostgreSQL database, not SQLite")
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--keep", type=Path, metavar="FILE", help="SQLite: fill this new file, keep it")
    parser.add_argument(
        "--searches-only", type=Path, metavar="FILE", help="only the searches, on a file --keep made"
    )
    args = parser.parse_args()
    if args.searches_only:
        rare = (args.searches_only.parent / f"{args.searches_only.name}.rare").read_text("utf-8")
        report_searches(f"sqlite:///{args.searches_only}", rare, args.repeat)
        return
    if args.postgres:
        with pg_database(args.pg_url) as store_url:
            run(store_url, args)
        return
    with tempfile.TemporaryDirectory(prefix="hie-text-") as tmp:
        run(f"sqlite:///{args.keep or Path(tmp) / 'hie.db'}", args)


def run(store_url: str, args: argparse.Namespace) -> None:
    import sqlite3

    kind = "PostgreSQL" if args.postgres else f"SQLite {sqlite3.sqlite_version}"
    print(f"{kind}: loading {args.messages:,} messages of about 1 KB ...", flush=True)
    seconds, rare = load(store_url, args.messages, args.days)
    if args.keep:
        (args.keep.parent / f"{args.keep.name}.rare").write_text(rare, "utf-8")
    print(f"  loaded in {seconds:,.0f} s", flush=True)
    print("indexing the backlog (textindex.index_pending, as the engine's job) ...", flush=True)
    r = index(store_url, args.days)
    holds, busy, idle = r["holds"], r["busy"], r["idle"]
    indexed = r["idle_done"] + r["busy_done"]
    print(
        f"  writer otherwise idle: {r['idle_done']:,} messages in {r['idle_seconds']:,.1f} s: "
        f"{r['idle_done'] / r['idle_seconds']:,.0f} messages/s"
    )
    print(
        f"  while a probe commits 50 times a second: {r['busy_done']:,} messages in "
        f"{r['busy_seconds']:,.1f} s: {r['busy_done'] / r['busy_seconds']:,.0f} messages/s"
    )
    per = r["index_mb"] * 1e6 / max(1, indexed)
    print(f"  index size: {r['index_mb']:,.0f} MB ({per:,.0f} bytes/message)")
    if holds:
        print(
            f"  a chunk, from its submission to the writer to its commit: p50 {pct(holds, 0.5):.1f} ms, "
            f"p99 {pct(holds, 0.99):.1f} ms, max {max(holds):.1f} ms ({len(holds):,} chunks)"
        )
    print(
        f"  the probe's commit latency while indexing: p50 {pct(busy, 0.5):.1f} ms, "
        f"p99 {pct(busy, 0.99):.1f} ms, max {max(busy, default=0):.1f} ms; "
        f"idle: p50 {pct(idle, 0.5):.1f} ms, p99 {pct(idle, 0.99):.1f} ms"
    )
    if args.postgres:  # as autovacuum does soon after a large change; SQLite is never analyzed
        from sqlalchemy import create_engine

        db = create_engine(store_url, isolation_level="AUTOCOMMIT")
        with db.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
        db.dispose()
    report_searches(store_url, rare, args.repeat)


def report_searches(store_url: str, rare: str, repeat: int) -> None:
    print(f"first page (50 newest) of a text search, {repeat} times each:")
    for label, times, found in searches(store_url, rare, repeat):
        print(
            f"  {label:<45} first {times[0]:8.1f} ms  p50 {statistics.median(times):8.1f} ms  "
            f"max {max(times):8.1f} ms  found {found}"
        )


if __name__ == "__main__":
    main()
