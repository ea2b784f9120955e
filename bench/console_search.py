"""The web console on a big store: message search and the dashboard, over HTTP, with millions of
stored messages.

    .venv/bin/python bench/console_search.py                                # 5,000,000 messages, SQLite
    .venv/bin/python bench/console_search.py --messages 1000000 --postgres  # and on PostgreSQL

The store is filled directly (as the writer would: messages, their PID-3 identifier and one delivery
each), spread over ``--days`` days with ids made from each message's time as the engine's ids are; about
1 KB of HL7 per message, 0.5 % of them errored, the newest few hundred still queued, 8 channels, and
one patient for every five messages. Then ``hie run`` serves only the console on that store and one
client asks, one request at a time, with an API token: the first page (50) of a search by patient id,
by control id, by channel and status errored, the newest page without filters, and the dashboard
(24 hours). p50, p95 and the slowest are printed per request kind. Targets (issue 8), with 5,000,000
messages: a search by patient id or control id under 200 ms p95; the dashboard under 500 ms.
"""

from __future__ import annotations

import argparse
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.mllp_throughput import free_port, pg_database  # noqa: E402

CHANNELS = [f"hosp-{n:02d}-adt" for n in range(8)]
EPOCH_MS = 1_704_067_200_000  # engine.ids
TEMPLATE = (
    "MSH|^~\\&|HIS|HOSP_{h:02d}|HIE|CITY_HIE|{ts}||ADT^A08^ADT_A01|{ctl}|P|2.5|||AL|NE|CHN|UNICODE UTF-8\r"
    "EVN|A08|{ts}\r"
    "PID|1||{pid}^^^HOSP_{h:02d}&1.2.156.112604.1.{h}&ISO^PI||张^三||19850312|M|||"
    "北京路1号^^广州^广东^510000^CHN||020-12345678\r"
    "PV1|1|I|W01^101^1^HOSP_{h:02d}||||D001^李^医生|||MED||||1|||D001^李^医生|IP|{ctl}|||||||||||||||||||||"
    "HOSP_{h:02d}|||||{ts}\r"
)


def write_config(base: Path, store_url: str, port: int) -> Path:
    (base / "channels").mkdir(parents=True)
    (base / "config.yaml").write_text(
        "engine:\n  name: HIE\n  facility: BENCH\n  data_dir: data\n  channels_dir: channels\n"
        f"  mappings_dir: '{ROOT / 'mappings'}'\n  log_level: WARNING\n"
        f"store:\n  url: '{store_url}'\n",
        encoding="utf-8",
    )
    (base / "channels" / "console.yaml").write_text(
        f"id: console\nsource: {{url: 'console://127.0.0.1:{port}'}}\n", encoding="utf-8"
    )
    return base / "config.yaml"


def load(store_url: str, count: int, days: int, raw_bytes: int) -> tuple[float, list[str], list[str]]:
    """Fill the store; (seconds, some patient ids, some control ids) to search for."""
    from engine.store.db import migrate, open_engine
    from engine.store.schema import deliveries, identifiers, messages
    from engine.store.writer import insert_rows

    db = open_engine(store_url, synchronous="normal")
    migrate(db)
    rng = random.Random(20261205)
    patients = max(1, count // 5)
    now = datetime.now(UTC)
    start = now - timedelta(days=days)
    step = (now - start) / count
    pad = "NTE|1||" + "x" * max(0, raw_bytes - 600) + "\r"
    some_patients: list[str] = []
    some_controls: list[str] = []
    batch_m: list[dict[str, object]] = []
    batch_i: list[dict[str, object]] = []
    batch_d: list[dict[str, object]] = []
    t0 = time.perf_counter()

    def flush() -> None:
        with db.begin() as conn:
            insert_rows(conn, [(messages, batch_m), (identifiers, batch_i), (deliveries, batch_d)])
        batch_m.clear()
        batch_i.clear()
        batch_d.clear()

    for n in range(count):
        at = start + step * n
        ms = int(at.timestamp() * 1000) - EPOCH_MS
        ident = ms << 22 | 7 << 12 | (n & 0xFFF)
        h = n % 8
        pid = f"P{rng.randrange(patients):09d}"
        ctl = f"CTL{n:010d}"
        ts = at.strftime("%Y%m%d%H%M%S")
        errored = rng.random() < 0.005
        queued = n >= count - 300
        raw = (TEMPLATE.format(h=h, ts=ts, ctl=ctl, pid=pid) + pad).encode()
        batch_m.append(
            {
                "id": ident,
                "channel_id": CHANNELS[h],
                "received_at": at,
                "updated_at": at,
                "status": "errored" if errored else ("queued" if queued else "sent"),
                "content_type": "hl7v2",
                "charset": "utf-8",
                "control_id": ctl,
                "message_type": "ADT^A08",
                "sending_application": "HIS",
                "sending_facility": f"HOSP_{h:02d}",
                "receiving_application": "HIE",
                "receiving_facility": "CITY_HIE",
                "peer": "10.1.0.1:40000",
                "raw": raw,
                "content": None,
                "error": "PID-3: no patient identifier" if errored else None,
                "error_detail": None,
                "warnings": None,
                "reprocessed_from": None,
            }
        )
        batch_i.append(
            {
                "message_id": ident,
                "value": pid,
                "authority": f"HOSP_{h:02d}",
                "id_type": "PI",
                "field": "PID-3",
            }
        )
        if not errored:
            batch_d.append(
                {
                    "id": ident + 1,
                    "message_id": ident,
                    "channel_id": CHANNELS[h],
                    "destination": "platform",
                    "lane": 0,
                    "order_key": "",
                    "status": "queued" if queued else "sent",
                    "attempts": 0 if queued else 1,
                    "next_attempt_at": at if queued else None,
                    "owner_node": None,
                    "created_at": at,
                    "updated_at": at,
                    "sent_at": None if queued else at,
                    "sent": None,
                    "response": None,
                    "last_error": None,
                }
            )
        if n % max(1, count // 200) == 0:
            some_patients.append(pid)
            some_controls.append(ctl)
        if len(batch_m) >= 10_000:
            flush()
            if n % 500_000 < 10_000:
                print(f"  loaded {n + 1:,} messages in {time.perf_counter() - t0:,.0f} s", flush=True)
    if batch_m:
        flush()
    seconds = time.perf_counter() - t0
    from sqlalchemy import func, select

    from engine.store.schema import text_index_state

    with db.begin() as conn:  # the free-text index starts after what was loaded (see bench/text_search.py)
        newest = conn.execute(select(func.max(messages.c.id))).scalar_one()
        conn.execute(text_index_state.delete())
        conn.execute(text_index_state.insert().values(name="messages", mark=newest))
    if db.dialect.name == "postgresql":
        with db.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")
    else:
        with db.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    db.dispose()
    return seconds, some_patients, some_controls


def store_size(store_url: str, base: Path) -> str:
    if store_url.startswith("sqlite"):
        files = list((base / "data").glob("hie.db*"))
        return f"{sum(p.stat().st_size for p in files) / 1e9:.2f} GB"
    from sqlalchemy import create_engine, text

    db = create_engine(store_url)
    with db.connect() as conn:
        size = conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
    db.dispose()
    return f"{size / 1e9:.2f} GB"


def token(config: Path) -> str:
    from engine.config import load_config
    from engine.console import accounts
    from engine.ids import IdGenerator
    from engine.store.db import open_engine

    app = load_config(config)
    db = open_engine(app.store_url)
    ids = IdGenerator(999)
    accounts.add_user(db, ids, username="bench", password="bench-password-1", role="admin", actor="bench")
    _, issued = accounts.issue_token(db, ids, username="bench", days=1, actor="bench")
    db.dispose()
    return issued


def timed(label: str, make: Callable[[int], str], client: object, rounds: int) -> dict[str, float]:
    import httpx

    assert isinstance(client, httpx.Client)
    times: list[float] = []
    found = 0
    for n in range(rounds):
        t0 = time.perf_counter()
        resp = client.get(make(n))
        times.append((time.perf_counter() - t0) * 1000)
        resp.raise_for_status()
        body = resp.json()
        found += len(body.get("messages", [])) if isinstance(body, dict) else 0
    times.sort()
    p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
    row = {"p50": statistics.median(times), "p95": p95, "max": times[-1]}
    print(
        f"  {label:<34} p50 {row['p50']:7.1f} ms   p95 {row['p95']:7.1f} ms   max {row['max']:7.1f} ms"
        f"   ({rounds} requests, {found:,} rows)",
        flush=True,
    )
    return row


def run_store(label: str, store_url: str, args: argparse.Namespace) -> None:
    import httpx

    base = Path(tempfile.mkdtemp(prefix="hie-bench-console-"))
    (base / "data").mkdir()
    if label == "sqlite":
        store_url = f"sqlite:///{base / 'data' / 'hie.db'}"
    port = free_port()
    config = write_config(base, store_url, port)
    print(f"{label}: loading {args.messages:,} messages over {args.days} days", flush=True)
    seconds, patients, controls = load(store_url, args.messages, args.days, args.raw_bytes)
    rate = args.messages / seconds
    print(f"  loaded in {seconds:,.0f} s ({rate:,.0f} messages/s); store {store_size(store_url, base)}")
    issued = token(config)
    with open(base / "engine.log", "ab") as log:
        proc = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "hie"), "run", "--config", str(config)],
            cwd=base,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {issued}"}, timeout=60) as client:
            deadline = time.monotonic() + 120
            while True:
                try:
                    client.get("/api/v1/openapi.json").raise_for_status()
                    break
                except httpx.HTTPError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit((base / "engine.log").read_text()[-3000:]) from None
                    time.sleep(0.2)
            rounds = args.rounds
            timed(
                "search by patient id",
                lambda n: f"/api/v1/messages?patient_id={patients[n % len(patients)]}",
                client,
                rounds,
            )
            timed(
                "search by control id",
                lambda n: f"/api/v1/messages?control_id={controls[n % len(controls)]}",
                client,
                rounds,
            )
            timed(
                "channel + status errored",
                lambda n: f"/api/v1/messages?channel={CHANNELS[n % 8]}&status=errored",
                client,
                rounds,
            )
            timed("newest page, no filter", lambda n: "/api/v1/messages", client, rounds)
            has_dashboard = client.get("/api/v1/dashboard").status_code == 200
            if has_dashboard:
                timed(
                    "dashboard (24 h)", lambda n: "/api/v1/dashboard?hours=24", client, max(20, rounds // 5)
                )
            timed("stats, all time", lambda n: "/api/v1/stats", client, 5)
    finally:
        proc.terminate()
        proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=5_000_000)
    parser.add_argument("--days", type=int, default=30, help="the messages' times spread over this many days")
    parser.add_argument("--raw-bytes", type=int, default=1000, help="about this many bytes of HL7 each")
    parser.add_argument("--rounds", type=int, default=200, help="requests per search kind")
    parser.add_argument("--postgres", action="store_true", help="also on a fresh PostgreSQL database")
    parser.add_argument("--no-sqlite", action="store_true")
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    if not args.no_sqlite:
        run_store("sqlite", "", args)
    if args.postgres:
        with pg_database(args.pg_url) as url:
            run_store("postgresql", url, args)


if __name__ == "__main__":
    main()
