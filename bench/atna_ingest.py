"""ATNA Audit Record Repository intake: syslog audit messages over UDP (RFC 5426) into the engine's
``atna-repository`` channel, at a target rate; how many per second were stored, and how many lost.

    .venv/bin/python bench/atna_ingest.py                          # 20,000 messages at 2,500/s, SQLite
    .venv/bin/python bench/atna_ingest.py --postgres               # also on a fresh PostgreSQL database

The messages are the synthetic DICOM audit message of ``tests/data/atna/query-110112.xml`` (an
other system's 110112 Query about a made-up patient) in RFC 5424 frames, each with its own time and
PROCID so that no two are the same. One client process sends them paced to ``--rate``; the engine is
``hie run`` with only that channel (log level WARNING). Stored means a row of ``audit_events`` received
from outside (``atna_received``), committed with its syslog message: the benchmark counts them until
the count stops growing. Target (issue 8): 2,000 messages/s stored. They are sent faster than that
(2,500/s by default): the stored rate, measured from the first message sent to the last one stored,
can only show that the engine keeps up with more than the target when it is offered more.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.mllp_throughput import free_port, pg_database  # noqa: E402

AUDIT = (ROOT / "tests" / "data" / "atna" / "query-110112.xml").read_bytes().split(b"?>", 1)[-1].strip()


def write_config(base: Path, store_url: str, port: int) -> Path:
    (base / "channels").mkdir(parents=True)
    (base / "config.yaml").write_text(
        "engine:\n  name: HIE\n  facility: BENCH\n  data_dir: data\n  channels_dir: channels\n"
        f"  mappings_dir: '{ROOT / 'mappings'}'\n  log_level: WARNING\n"
        f"store:\n  url: '{store_url}'\n  synchronous: full\n",
        encoding="utf-8",
    )
    (base / "channels" / "atna-repository.yaml").write_text(
        f"id: atna-repository\nsource:\n  url: syslog-udp://127.0.0.1:{port}\n"
        "ack: after_delivery\nack_from: repository\n"
        "destinations:\n  - {id: repository, url: 'atna-repository:'}\n",
        encoding="utf-8",
    )
    return base / "config.yaml"


def frame(n: int) -> bytes:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    return f"<85>1 {stamp}.{n % 1000:03d}Z bench-host IHE+RFC-3881 {n} IHE+RFC-3881 - ".encode() + AUDIT


def stored(store_url: str) -> int:
    from sqlalchemy import create_engine, func, select

    from profiles.atna.schema import received

    db = create_engine(store_url)
    try:
        with db.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(received)).scalar_one())
    finally:
        db.dispose()


def run(store_url: str, count: int, rate: float) -> tuple[float, float, int]:
    """(send seconds, seconds until the last one was stored, stored)"""
    with tempfile.TemporaryDirectory(prefix="hie-atna-bench-") as folder:
        base = Path(folder)
        port = free_port()
        config = write_config(base, store_url, port)
        url = store_url or f"sqlite:///{base / 'data' / 'hie.db'}"
        proc = subprocess.Popen(
            [str(ROOT / ".venv" / "bin" / "hie"), "run", "--config", str(config)],
            cwd=base,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            time.sleep(6)  # the UDP source gives no connect to wait on
            if proc.poll() is not None:
                raise RuntimeError(proc.stderr.read().decode(errors="replace") if proc.stderr else "exited")
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            start = time.perf_counter()
            for n in range(count):
                due = start + n / rate
                while (now := time.perf_counter()) < due:
                    time.sleep(min(due - now, 0.002))
                sock.sendto(frame(n), ("127.0.0.1", port))
            sent_s = time.perf_counter() - start
            last, same_since = -1, time.perf_counter()
            while time.perf_counter() - same_since < 3:
                found = stored(url)
                if found != last:
                    last, same_since = found, time.perf_counter()
                    done_at = same_since - start
                if found >= count:
                    break
                time.sleep(0.2)
            return sent_s, done_at, last
        finally:
            proc.terminate()
            proc.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=2500.0, help="messages per second sent")
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--store-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    stores = [("sqlite", "")]
    if args.postgres:
        stores.append(("postgresql", args.store_url))
    print(f"{args.count:,} audit messages of {len(frame(0)):,} bytes, sent at {args.rate:,.0f}/s over UDP\n")
    print(f"{'':12}{'sent/s':>10}{'stored':>10}{'lost':>8}{'stored/s':>10}   target")
    for label, url in stores:
        if url:
            with pg_database(url) as fresh:
                sent_s, done_s, kept = run(fresh, args.count, args.rate)
        else:
            sent_s, done_s, kept = run("", args.count, args.rate)
        rate = kept / done_s if done_s else 0.0
        mark = "met" if rate >= 2000 and kept == args.count else "MISSED"
        print(
            f"{label:12}{args.count / sent_s:>10,.0f}{kept:>10,}{args.count - kept:>8,}{rate:>10,.0f}"
            f"   >= 2,000/s, none lost: {mark}"
        )


if __name__ == "__main__":
    main()
