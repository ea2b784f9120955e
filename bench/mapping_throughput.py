"""Mapping throughput: vendor ADT^A01 -> the platform's AdtEvent (Patient + Encounter), on one core.

    .venv/bin/python bench/mapping_throughput.py [--seconds 2] [--repeat 3]

For each shipped vendor mapping it maps that vendor's ADT^A01 test case (already decoded from its
charset, as the channel hands it over) over and over in this one process, and prints:

* python-hl7 parse alone (``hl7.parse``) of the same message: the cost the issue compares with;
* the mapping (lazy HL7 reader + every rule + the AdtEvent model validated);
* the mapping plus its JSON rendering (what a map step stores);
* the chain vendor -> AdtEvent -> the platform's HL7 v2.5 ADT (two mappings, as a channel runs them).

Ratios are mapping msg/s ÷ python-hl7-parse msg/s: above 1 means mapping a message costs less than
python-hl7 takes only to parse it (the reader splits only the segments and fields the rules touch).
Target: at least 3,000 msg/s for the mapping. Figures are printed, never asserted.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hl7

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.mapping import cases  # noqa: E402
from engine.mapping.catalog import load_catalog  # noqa: E402

VENDORS = {
    "hospital-a-adt": "a01-inpatient.hl7",
    "hospital-b-adt": "a01-inpatient.hl7",
    "hospital-c-adt": "a01-inpatient.hl7",
}
TARGET = 3000.0


def rate(fn: Callable[[], Any], seconds: float) -> float:
    """Calls per second of ``fn`` over about ``seconds`` (after a short warm-up)."""
    for _ in range(50):
        fn()
    n, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(100):
            fn()
        n += 100
        now = time.perf_counter()
        if now >= deadline:
            return n / (now - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0, help="measuring time per figure")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure; the median is shown")
    args = parser.parse_args(argv)
    catalog, problems = load_catalog(ROOT / "mappings")
    if problems:
        for p in problems:
            print(p)
        return 2
    v25 = catalog.get("platform-adt-v25")
    print(f"mapping throughput, one core, median of {args.repeat} x {args.seconds:.0f} s")
    print(
        f"{'mapping':18} {'bytes':>5} {'hl7.parse':>10} {'map':>8} {'ratio':>6} {'map+json':>9} "
        f"{'chain v2.5':>10}  target >= {TARGET:,.0f}"
    )
    worst = float("inf")
    for mapping_id, case in VENDORS.items():
        mapping = catalog.get(mapping_id)
        text = cases.read_input(ROOT / "tests" / "data" / "mappings" / mapping_id / case, "hl7v2")

        def parse_only(text: str = text) -> Any:
            return hl7.parse(text)

        def map_only(text: str = text, mapping: Any = mapping) -> Any:
            return mapping.run(text)

        def map_json(text: str = text, mapping: Any = mapping) -> Any:
            return mapping.render(mapping.run(text))

        def chain(text: str = text, mapping: Any = mapping) -> Any:
            return v25.render(v25.run(mapping.run(text).output))

        figures = {}
        for name, fn in (("parse", parse_only), ("map", map_only), ("json", map_json), ("chain", chain)):
            figures[name] = statistics.median(rate(fn, args.seconds) for _ in range(args.repeat))
        worst = min(worst, figures["map"])
        print(
            f"{mapping_id:18} {len(text.encode()):5} {figures['parse']:10,.0f} {figures['map']:8,.0f} "
            f"{figures['map'] / figures['parse']:6.2f} {figures['json']:9,.0f} {figures['chain']:10,.0f}"
        )
    verdict = "met" if worst >= TARGET else "MISSED"
    print(f"slowest mapping: {worst:,.0f} msg/s; target >= {TARGET:,.0f}: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
