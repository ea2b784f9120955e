"""CDA validation benchmark: a typical 30 KB WS/T 500 document through the whole validator, on one
core, beside bare lxml schema validation of the same document in the same run.

Run from the project root::

    .venv/bin/python bench/cda_validate.py [--kb 30] [--seconds 5] [--repeat 3] [--document C0053]

The document is the synthetic sample of ``tests/data/cda/valid/`` grown to about ``--kb`` kilobytes
with more result entries (as a discharge summary with a long list of test results is). Three ways
are timed, each for ``--seconds`` per repeat, on this thread only:

* bare lxml: parse the bytes, validate against the China-extended CDA schema (compiled once);
* both schemas: parse, the CDA schema, the document type's own schema;
* the validator: everything ``hie cda validate`` and the upload service do (parse with entities
  off, document type, both schemas, every YAML rule, the built-in checks), the report built.

Target (issue "CDA upload validator"): at least 300 documents/s through the validator on one core.
The benchmark only measures and prints.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lxml import etree  # noqa: E402

from engine.mapping.codetables import CodeTables  # noqa: E402
from profiles.cda.rules import SHIPPED, load_rules  # noqa: E402
from profiles.cda.schemas import china_cda, document_schema  # noqa: E402
from profiles.cda.validator import CdaValidator, value_sets_by_system  # noqa: E402

V3 = "urn:hl7-org:v3"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
RESULTS = [
    ("血红蛋白", "132", "g/L"),
    ("白细胞计数", "6.8", "10^9/L"),
    ("血小板计数", "215", "10^9/L"),
    ("谷丙转氨酶", "28", "U/L"),
    ("肌酐", "76", "μmol/L"),
    ("空腹血糖", "5.6", "mmol/L"),
    ("总胆固醇", "5.9", "mmol/L"),
    ("低密度脂蛋白胆固醇", "3.8", "mmol/L"),
]


def typical(code: str, kilobytes: int) -> bytes:
    """The sample of ``code`` with result entries added until it is about ``kilobytes`` KB."""
    root = etree.fromstring((ROOT / "tests" / "data" / "cda" / "valid" / f"{code}.xml").read_bytes())
    sections = root.findall(f".//{{{V3}}}section")
    target = sections[-1]
    n = 0
    while len(etree.tostring(root, encoding="UTF-8")) < kilobytes * 1024:
        name, value, unit = RESULTS[n % len(RESULTS)]
        entry = etree.SubElement(target, f"{{{V3}}}entry")
        obs = etree.SubElement(entry, f"{{{V3}}}observation", classCode="OBS", moodCode="EVN")
        etree.SubElement(
            obs,
            f"{{{V3}}}code",
            code="DE04.50.128.00",
            codeSystem="2.16.156.10011.2.2.1",
            codeSystemName="卫生信息数据元目录",
            displayName="阳性辅助检查结果",
        )
        etree.SubElement(
            obs, f"{{{V3}}}value", {f"{{{XSI}}}type": "ST"}
        ).text = f"第 {n // len(RESULTS) + 1} 次 {name} {value} {unit}，较前变化不大。"
        n += 1
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True))


def rate(fn: Callable[[], object], seconds: float) -> float:
    done = 0
    start = time.perf_counter()
    stop = start + seconds
    while time.perf_counter() < stop:
        for _ in range(20):
            fn()
        done += 20
    return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--document", default="C0053")
    parser.add_argument("--kb", type=int, default=30)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    data = typical(args.document, args.kb)
    rules, problems = load_rules(SHIPPED)
    tables, table_problems = CodeTables.load(ROOT / "mappings" / "code_tables")
    assert not problems and not table_problems
    validator = CdaValidator(rules, value_sets_by_system(tables))
    report = validator.validate(data, "bench").report
    if not report.accepted:
        raise SystemExit(f"the benchmark document is not valid:\n{report.to_text()}")
    cda, own = china_cda(), document_schema(args.document)
    assert own is not None
    parser_ = etree.XMLParser(resolve_entities=False, no_network=True)

    def bare() -> None:
        assert cda.validate(etree.fromstring(data, parser_))

    def both() -> None:
        tree = etree.fromstring(data, parser_)
        assert cda.validate(tree) and own.validate(tree)

    def full() -> None:
        assert validator.validate(data, "bench").report.accepted

    ways = (("bare lxml (CDA schema)", bare), ("both schemas", both), ("the validator", full))
    figures: dict[str, list[float]] = {name: [] for name, _ in ways}
    for _ in range(args.repeat):
        for name, fn in ways:
            figures[name].append(rate(fn, args.seconds))
    rules_count = len(rules.for_document(args.document))
    print(
        f"CDA validation of one {args.document} document, {len(data):,} bytes, {rules_count} YAML rules "
        f"+ built-in checks; median of {args.repeat} x {args.seconds:g} s, one thread"
    )
    base = statistics.median(figures["bare lxml (CDA schema)"])
    for name, values in figures.items():
        med = statistics.median(values)
        spread = f"{min(values):,.0f}-{max(values):,.0f}"
        each = f"{1000 / med:6.2f} ms each"
        print(f"  {name:24} {med:8,.0f} docs/s  ({spread})  {each}  ratio to bare {med / base:5.2f}")
    verdict = "met" if statistics.median(figures["the validator"]) >= 300 else "MISSED"
    print(f"  target: >= 300 docs/s through the validator: {verdict}")


if __name__ == "__main__":
    main()
