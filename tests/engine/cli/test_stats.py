"""``hie stats``: per-channel counts, checked against what the engine actually sent."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from click.testing import CliRunner, Result

from engine.cli.main import main
from engine.config import AppConfig
from engine.connectors import memory
from tests.engine.cli.scenario import Filled, fill

__all__: list[str] = []


@pytest.fixture
async def filled(make_app: Callable[..., AppConfig]) -> Filled:
    return await fill(make_app)


def hie(f: Filled, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--config", str(f.config)], catch_exceptions=False)


def table(result: Result) -> dict[str, list[str]]:
    lines = [line.split() for line in result.stdout.splitlines() if not line.startswith("-")]
    return {cells[0]: cells[1:] for cells in lines}


async def test_stats_table_matches_what_was_sent(filled: Filled) -> None:
    sent = len(memory.SINKS["adt-out"]) + len(memory.SINKS["adt-arch"])
    assert sent == 4 and "lab-lis" not in memory.SINKS
    result = hie(filled, "stats")
    assert result.exit_code == 0, result.output
    rows = table(result)
    assert rows["CHANNEL"] == ["RECEIVED", "FILTERED", "QUEUED", "SENT", "ERRORED"]
    assert rows["adt"] == ["4", "1", "0", str(sent), "1"]  # A4 rejected
    assert rows["lab"] == ["1", "0", "0", "0", "1"]  # its delivery refused
    assert rows["total"] == ["5", "1", "0", "4", "2"]
    lines = result.stdout.splitlines()
    assert lines[-2].startswith("-----") and lines[-1].startswith("total")
    assert len({len(line) for line in lines}) == 1  # right-aligned numbers: every line ends in one column


async def test_stats_one_channel_and_json(filled: Filled) -> None:
    rows = table(hie(filled, "stats", "--channel", "lab"))
    assert set(rows) == {"CHANNEL", "lab", "total"} and rows["total"] == rows["lab"]
    data = json.loads(hie(filled, "stats", "--json").stdout)
    assert data["since"] is None
    assert data["channels"]["adt"]["sent"] == 4 and data["channels"]["adt"]["errored_messages"] == 1
    assert data["channels"]["lab"]["errored_deliveries"] == 1
    assert data["total"]["received"] == 5 and data["total"]["errored"] == 2


async def test_stats_since_and_reprocessed_messages(filled: Filled) -> None:
    future = hie(filled, "stats", "--since", "2999-01-01")
    assert future.stdout.startswith("since 2999-01-01")
    rows = table(future)
    assert rows["adt"] == rows["lab"] == rows["total"] == ["0"] * 5  # configured channels show, at zero
    assert hie(filled, "messages", "reprocess", str(filled.ids["A1"]), "--to", "out").exit_code == 0
    rows = table(hie(filled, "stats", "--since", "1h"))
    assert rows["adt"] == ["5", "1", "1", "4", "1"]  # the copy is received and queued for out
