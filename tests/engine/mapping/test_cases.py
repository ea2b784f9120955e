"""The mapping test cases of ``tests/data/mappings/``, one test each (see ``engine.mapping.cases``).

A folder is named after the mapping it tests, or a chain ``a+b`` (a vendor mapping followed by the
platform's v2.5 mapping). Every shipped mapping must load without a problem.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.mapping import cases
from engine.mapping.catalog import Catalog, load_catalog

ROOT = Path(__file__).resolve().parents[3]
CASES = cases.discover(ROOT / "tests" / "data" / "mappings")


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    catalog, problems = load_catalog(ROOT / "mappings")
    assert [str(p) for p in problems] == []
    return catalog


def test_every_shipped_mapping_has_cases() -> None:
    tested = {m for c in CASES for m in c.mapping_id.split("+")}
    shipped = {p.stem for p in (ROOT / "mappings").glob("*.yaml")}
    assert shipped <= tested


@pytest.mark.parametrize("case", CASES, ids=[f"{c.mapping_id}/{c.name}" for c in CASES])
def test_case(case: cases.Case, catalog: Catalog) -> None:
    chain = [catalog.get(m) for m in case.mapping_id.split("+")]
    data = cases.read_input(case.input, chain[0].input.kind)
    diff = cases.compare(case.expected, cases.actual_text(chain, data))
    assert not diff, "".join(diff)
