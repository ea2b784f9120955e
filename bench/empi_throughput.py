"""EMPI benchmark: load a million persons, then PIX (ITI-9) and PDQ (ITI-21) queries and ITI-8 feeds.

Run from the project root::

    .venv/bin/python bench/empi_throughput.py [--persons 1000000] [--seconds 20] [--clients 8]
        [--sqlite] [--postgres] [--store-url URL] [--workers N]

1. Synthetic persons (made-up Chinese names, valid GB 11643 numbers, birth dates 1930-2020) with
   2-3 local identifiers each in four hospital domains, written to a CSV and loaded with the
   product's own bulk loader (``hie empi load``, ``profiles.empi.load``): time and rows/s.
2. ``hie run`` in a subprocess on that store (``--workers N`` engine processes on PostgreSQL),
   with the sample pix-feed, pix-query and pdq-query
   channels (MLLP, ``ack: after_delivery``: every query and feed is stored, answered by the EMPI,
   audited). ``--clients`` connections each send one request and wait for its answer:
   * ITI-9 QBP^Q23 for a random known local identifier (every answer must be AA/OK);
   * ITI-21 QBP^Q22 by family name, given name and birth date of a random person (AA/OK);
   * ITI-8 ADT^A04 of new local identifiers: half carry the person's national ID (linked by it),
     half do not (blocking and scoring against the candidates), every ACK must be AA.
   Figures: requests/s, p50/p99 latency, and the database size.

Targets (issue "EMPI with IHE PIX Manager and PDQ Supplier"): load in under 10 minutes; ITI-9 and
ITI-21 at least 500 queries/s with p99 below 20 ms; ITI-8 at least 500 feeds/s. The benchmark only
measures and prints; it never fails on a missed target.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.mllp_throughput import _wait_port, free_port, pg_database  # noqa: E402
from engine.mapping import gb11643  # noqa: E402

SB, EB, CR = b"\x0b", b"\x1c", b"\r"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
DOMAINS = [
    ("hospital-1", "HOSP_1", "1.2.156.112701.1.1", "HIS_1"),
    ("hospital-2", "HOSP_2", "1.2.156.112702.1.1", "HIS_2"),
    ("hospital-3", "HOSP_3", "1.2.156.112703.1.1", "HIS_3"),
    ("hospital-4", "HOSP_4", "1.2.156.112704.1.1", "HIS_4"),
]
_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾萧田董袁潘蒋蔡余杜叶程魏苏吕丁任沈"
)
_DOUBLE = ("欧阳", "司马", "诸葛", "上官", "东方")
_GIVEN = "伟芳娜秀敏静丽强磊军洋勇艳杰娟涛明超霞平刚桂英华玉兰萍红鹏辉建国志文斌宇浩凯欣怡梓涵子轩雨晨思远"
_AREAS = ("110101", "310104", "440305", "510107", "330106", "420102", "320102", "610113", "320508", "370102")
_CITIES = ("北京市", "上海市", "深圳市", "成都市", "杭州市", "武汉市", "南京市", "西安市", "苏州市", "济南市")


# -- synthetic persons ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Person:
    n: int
    national_id: str
    family: str
    given: str
    birth: date
    sex: str
    phone: str
    city: str
    locals: tuple[tuple[int, str], ...]  # (domain index, value)


def person(n: int) -> Person:
    rnd = random.Random(n)
    area_i = rnd.randrange(len(_AREAS))
    birth = date(1930, 1, 1) + timedelta(days=rnd.randrange(90 * 365))
    seq = rnd.randrange(1000)
    first17 = f"{_AREAS[area_i]}{birth:%Y%m%d}{seq:03d}"
    number = first17 + gb11643.check_character(first17)
    family = rnd.choice(_DOUBLE) if rnd.random() < 0.02 else rnd.choice(_SURNAMES)
    given = "".join(rnd.choice(_GIVEN) for _ in range(rnd.choice((1, 2, 2))))
    domains = rnd.sample(range(len(DOMAINS)), rnd.choice((2, 3)))
    return Person(
        n,
        number,
        family,
        given,
        birth,
        "1" if seq % 2 else "2",
        f"1{rnd.choice('3456789')}{rnd.randrange(10**9):09d}",
        _CITIES[area_i],
        tuple((d, f"P{d + 1}{n:08d}") for d in sorted(domains)),
    )


def write_csv(path: Path, count: int) -> int:
    rows = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        w = csv.writer(handle)
        w.writerow(
            (
                "domain",
                "value",
                "national_id",
                "name",
                "family",
                "given",
                "birth_date",
                "sex",
                "phone",
                "city",
            )
        )
        for n in range(count):
            p = person(n)
            for d, value in p.locals:
                w.writerow(
                    (
                        DOMAINS[d][0],
                        value,
                        p.national_id,
                        p.family + p.given,
                        p.family,
                        p.given,
                        p.birth.isoformat(),
                        p.sex,
                        p.phone,
                        p.city,
                    )
                )
                rows += 1
    return rows


# -- configuration -----------------------------------------------------------------------------------
def write_config(base: Path, store_url: str, ports: dict[str, int]) -> Path:
    (base / "channels").mkdir(parents=True)
    domains = "".join(
        f"    - {{id: {d}, namespace: {ns}, oid: {oid}, sources: [{{application: {app}}}]}}\n"
        for d, ns, oid, app in DOMAINS
    )
    (base / "config.yaml").write_text(
        "engine:\n  name: HIE\n  facility: BENCH\n  data_dir: data\n  channels_dir: channels\n"
        f"  mappings_dir: '{ROOT / 'mappings'}'\n  log_level: WARNING\n"
        f"store:\n  url: '{store_url}'\n  synchronous: full\n"
        f"empi:\n  domains:\n{domains}",
        encoding="utf-8",
    )
    for name in ("pix-feed", "pix-query", "pdq-query"):
        text = (ROOT / "channels" / f"{name}.yaml").read_text("utf-8")
        text = text.replace(text.split("url: mllp://", 1)[1].split("\n", 1)[0], f"127.0.0.1:{ports[name]}")
        (base / "channels" / f"{name}.yaml").write_text(text, "utf-8")
    return base / "config.yaml"


def database_mb(store_url: str, base: Path) -> float:
    if store_url.startswith("sqlite"):
        return sum(f.stat().st_size for f in (base / "data").glob("hie.db*")) / 1e6
    from sqlalchemy import create_engine, text

    eng = create_engine(store_url)
    with eng.connect() as conn:
        size = conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
    eng.dispose()
    return float(size) / 1e6


# -- load ---------------------------------------------------------------------------------------------
def load(config: Path, csv_path: Path) -> tuple[float, int]:
    from engine.config import load_config
    from engine.ids import IdGenerator
    from engine.store.db import migrate, open_engine
    from profiles.empi.config import EmpiConfig
    from profiles.empi.domains import Domains
    from profiles.empi.load import load_csv

    app = load_config(config)
    db = open_engine(app.store_url, synchronous="full")
    migrate(db, app.migrations)
    domains = Domains(app.section("empi", EmpiConfig))
    t0 = time.perf_counter()
    report = load_csv(db, domains, csv_path, IdGenerator(1000).next, batch=5000)
    seconds = time.perf_counter() - t0
    db.dispose()
    if report.problems:
        print("  load problems:", report.problems[:3])
    return seconds, report.records


# -- clients ------------------------------------------------------------------------------------------
@dataclass
class Phase:
    name: str
    done: int = 0
    bad: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        if not self.latencies_ms:
            return 0.0
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    def report(self, store: str) -> None:
        """The phase's figures as it ends, and its first bad answer if any."""
        print(
            f"  [{store}] {self.name}: {self.rate:,.0f}/s, p50 {self.pct(50):.1f} ms, "
            f"p99 {self.pct(99):.1f} ms, p99.9 {self.pct(99.9):.1f} ms, max {self.pct(100):.1f} ms, "
            f"{len(self.bad)} bad of {self.done:,}"
        )
        if self.bad:
            print(f"    first bad answer: {self.bad[0]!r}")


async def drive(
    port: int, clients: int, seconds: float, make: Callable[[int, int], tuple[bytes, str]], phase: Phase
) -> None:
    """``clients`` connections, each sending ``make(client, i)`` and waiting for its answer."""
    stop = time.perf_counter() + seconds

    async def one(c: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = 0
        while time.perf_counter() < stop:
            payload, expect = make(c, i)
            i += 1
            t0 = time.perf_counter()
            writer.write(SB + payload + EB + CR)
            answer = await reader.readuntil(EB + CR)
            phase.latencies_ms.append((time.perf_counter() - t0) * 1000)
            phase.done += 1
            if expect.encode() not in answer:
                phase.bad.append(answer[:300].decode("utf-8", "replace"))
        writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(one(c) for c in range(clients)))
    phase.seconds = time.perf_counter() - t0


def pix_query(persons: int) -> Callable[[int, int], tuple[bytes, str]]:
    def make(c: int, i: int) -> tuple[bytes, str]:
        p = person(random.randrange(persons))
        d, value = p.locals[0]
        _, ns, oid, _ = DOMAINS[d]
        msg = (
            f"MSH|^~\\&|XDS|CITY|PIX|HIE|20261203100000||QBP^Q23^QBP_Q21|Q{c}-{i}|P|2.5\r"
            f"QPD|IHE PIX Query|T{c}-{i}|{value}^^^{ns}&{oid}&ISO\rRCP|I\r"
        )
        return msg.encode("utf-8"), "QAK|T" + f"{c}-{i}|OK"

    return make


def pdq_query(persons: int) -> Callable[[int, int], tuple[bytes, str]]:
    def make(c: int, i: int) -> tuple[bytes, str]:
        p = person(random.randrange(persons))
        msg = (
            f"MSH|^~\\&|HIS|CITY|EMPI|HIE|20261203100000||QBP^Q22^QBP_Q21|P{c}-{i}|P|2.5\r"
            f"QPD|IHE PDQ Query|T{c}-{i}|@PID.5.1^{p.family}~@PID.5.2^{p.given}~@PID.7^{p.birth:%Y%m%d}\r"
            "RCP|I|10^RD\r"
        )
        return msg.encode("utf-8"), "QAK|T" + f"{c}-{i}|OK"

    return make


def feed(persons: int, run: str) -> Callable[[int, int], tuple[bytes, str]]:
    def make(c: int, i: int) -> tuple[bytes, str]:
        p = person(random.randrange(persons))
        d = next(k for k in range(len(DOMAINS)) if k not in {x for x, _ in p.locals} or k == 3)
        _, ns, oid, app = DOMAINS[d]
        nid = p.national_id if i % 2 == 0 else ""
        sex = "M" if p.sex == "1" else "F"
        msg = (
            f"MSH|^~\\&|{app}|CITY|PIX|HIE|20261203100000||ADT^A04^ADT_A01|F{run}{c}-{i}|P|2.5"
            "|||||CHN|UNICODE UTF-8\r"
            "EVN|A04|20261203100000\r"
            f"PID|1||N{run}{c}x{i}^^^{ns}&{oid}&ISO^PI||{p.family}^{p.given}||{p.birth:%Y%m%d}|{sex}"
            f"|||^^{p.city}||^PRN^CP^^^^^^^^^{p.phone}||||||{nid}\rPV1|1|O\r"
        )
        return msg.encode("utf-8"), "MSA|AA|"

    return make


# -- one store ----------------------------------------------------------------------------------------
def run_store(label: str, store: str, args: argparse.Namespace, csv_path: Path) -> dict[str, object]:
    base = Path(tempfile.mkdtemp(prefix="hie-empi-bench-"))
    out: dict[str, object] = {"store": label}
    try:
        with contextlib.ExitStack() as stack:
            store_url = (
                stack.enter_context(pg_database(store))
                if store.startswith("postgresql")
                else (store or f"sqlite:///{base / 'data' / 'hie.db'}")
            )
            ports = {name: free_port() for name in ("pix-feed", "pix-query", "pdq-query")}
            config = write_config(base, store_url, ports)
            seconds, rows = load(config, csv_path)
            out |= {"load_s": seconds, "load_rows": rows, "db_mb_loaded": database_mb(store_url, base)}
            print(f"  [{label}] loaded {rows:,} records in {seconds:,.1f} s ({rows / seconds:,.0f} rows/s)")
            proc = subprocess.Popen(
                [str(ROOT / ".venv" / "bin" / "hie"), "run", "--config", str(config)]
                + (["--workers", str(args.workers)] if args.workers > 1 and label == "postgresql" else []),
                cwd=base,
                stdout=subprocess.DEVNULL,
                stderr=(base / "engine.log").open("wb"),
            )
            try:
                _wait_port(ports["pdq-query"], proc, timeout=120.0)
                if args.workers > 1 and label == "postgresql":
                    time.sleep(5.0)  # the port opens with the first worker: let the others start too
                for name, port, make in (
                    ("ITI-9", ports["pix-query"], pix_query(args.persons)),
                    ("ITI-21", ports["pdq-query"], pdq_query(args.persons)),
                    ("ITI-8", ports["pix-feed"], feed(args.persons, uuid.uuid4().hex[:4])),
                ):
                    phase = Phase(name)
                    asyncio.run(drive(port, args.clients, args.seconds, make, phase))
                    out[name] = phase
                    phase.report(label)
            finally:
                proc.terminate()
                proc.wait(30)
            out["db_mb_after"] = database_mb(store_url, base)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return out


Cell = Callable[[dict[str, object]], str]


def stores_of(args: argparse.Namespace) -> list[tuple[str, str]]:
    """The stores to measure, as (label, store URL; empty for the embedded SQLite)."""
    stores = []
    if args.sqlite or not args.postgres:
        stores.append(("sqlite", ""))
    if args.postgres:
        stores.append(("postgresql", args.store_url))
    return stores


def load_rate(result: dict[str, object]) -> str:
    return f"{int(str(result['load_rows'])) / float(str(result['load_s'])):,.0f}"


def summary(
    results: list[dict[str, object]], first: list[tuple[str, Cell, str]], phases: list[tuple[str, str]]
) -> None:
    """The closing table: one column per store, the ``first`` rows, each phase's rate, latency
    and bad answers against its target, and the database's size."""
    print(f"{'':28}" + "".join(f"{r['store']!s:>16}" for r in results) + "   target")

    def row(label: str, cell: Cell, target: str) -> None:
        print(f"{label:28}" + "".join(f"{cell(r):>16}" for r in results) + f"   {target}")

    def phase(r: dict[str, object], name: str) -> Phase | None:
        found = r.get(name)
        return found if isinstance(found, Phase) else None

    for label, cell, target in first:
        row(label, cell, target)
    for name, target in phases:
        row(f"{name} requests/s", lambda r, n=name: f"{p.rate:,.0f}" if (p := phase(r, n)) else "-", target)
        row(
            f"{name} p50 / p99 (ms)",
            lambda r, n=name: f"{p.pct(50):.1f} / {p.pct(99):.1f}" if (p := phase(r, n)) else "-",
            "",
        )
        row(f"{name} bad answers", lambda r, n=name: str(len(p.bad)) if (p := phase(r, n)) else "-", "0")
    row("database after load (MB)", lambda r: f"{float(str(r['db_mb_loaded'])):,.0f}", "")
    row("database at the end (MB)", lambda r: f"{float(str(r.get('db_mb_after', 0))):,.0f}", "")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=20.0, help="per query/feed phase")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument(
        "--workers", type=int, default=1, help="engine processes on PostgreSQL (hie run --workers); SQLite: 1"
    )
    parser.add_argument(
        "--sqlite", action="store_true", help="measure on SQLite (default when nothing is named)"
    )
    parser.add_argument("--postgres", action="store_true", help="measure on a fresh PostgreSQL database too")
    parser.add_argument("--store-url", default=os.environ.get("HIE_BENCH_PG", DEFAULT_PG))
    args = parser.parse_args()
    stores = stores_of(args)
    work = Path(tempfile.mkdtemp(prefix="hie-empi-csv-"))
    try:
        csv_path = work / "persons.csv"
        t0 = time.perf_counter()
        rows = write_csv(csv_path, args.persons)
        took = time.perf_counter() - t0
        print(f"synthetic: {args.persons:,} persons, {rows:,} local identifiers ({took:.0f} s)")
        results = [run_store(label, url, args, csv_path) for label, url in stores]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    print(f"EMPI, {args.persons:,} persons, {args.clients} clients, {args.seconds:g} s per phase")
    summary(
        results,
        [
            ("load (minutes)", lambda r: f"{float(str(r['load_s'])) / 60:.1f}", "< 10"),
            ("load (records/s)", load_rate, ""),
        ],
        [("ITI-9", ">= 500/s, p99 < 20 ms"), ("ITI-21", ">= 500/s, p99 < 20 ms"), ("ITI-8", ">= 500/s")],
    )


if __name__ == "__main__":
    main()
