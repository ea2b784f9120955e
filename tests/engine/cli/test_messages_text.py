"""``hie messages search --text``: free text in the content, with the other filters, on the store a real
engine run filled (tests/engine/cli/scenario.py), once the indexer has read it."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from click.testing import CliRunner, Result

from engine.cli.main import main
from engine.cli.store_access import cli_services
from engine.config import AppConfig
from engine.store import textindex
from tests.engine.cli.scenario import Filled, fill

__all__: list[str] = []


def index(filled: Filled) -> int:
    """What the engine's indexer does in the background, done now."""
    db = filled.db()
    try:
        with cli_services(filled.app, db) as services:
            return textindex.index_pending(services, settle=0)
    finally:
        db.dispose()


@pytest.fixture
async def indexed(make_app: Callable[..., AppConfig]) -> Filled:
    filled = await fill(make_app)
    assert index(filled) == len(filled.ids)
    return filled


def hie(f: Filled, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--config", str(f.config)], catch_exceptions=False)


def listed(f: Filled, *args: str) -> list[str]:
    result = hie(f, "messages", "search", *args, "--json")
    assert result.exit_code == 0, result.output
    by_id = {v: k for k, v in f.ids.items()}
    return [by_id[m["id"]] for m in json.loads(result.stdout)["messages"]]


async def test_search_by_text_alone_and_with_filters(indexed: Filled) -> None:
    # every message holds the patient 王^小明; A2 came as GB18030 bytes
    assert listed(indexed, "--text", "王^小明") == ["L1", "A4", "A3", "A2", "A1"]
    assert listed(indexed, "--text", "王^小明", "--channel", "lab") == ["L1"]
    assert listed(indexed, "--text", "p200^^^hosp_a") == ["A2"]  # any case
    assert listed(indexed, "--text", "HOSP_B", "--status", "sent") == ["A2"]
    assert listed(indexed, "--text", "HOSP_B", "--status", "errored") == []
    assert listed(indexed, "--text", "ADT^A0", "--limit", "2") == ["L1", "A4"]
    assert listed(indexed, "--text", "ADT^A08") == ["A2"]
    result = hie(indexed, "messages", "search", "--text", "no such text")
    assert result.exit_code == 0 and "no messages match" in result.stderr


async def test_text_of_two_characters_is_a_usage_error(indexed: Filled) -> None:
    result = hie(indexed, "messages", "search", "--text", "小明")
    assert result.exit_code == 2
    assert "'--text': free text needs at least 3 characters" in result.output
    # the listing itself prints no content: a name searched for is not echoed back
    result = hie(indexed, "messages", "search", "--text", "王^小明")
    assert result.exit_code == 0 and "王" not in result.output and "PID|" not in result.output


async def test_messages_not_indexed_yet_are_announced(make_app: Callable[..., AppConfig]) -> None:
    filled = await fill(make_app)
    result = hie(filled, "messages", "search", "--text", "王^小明")
    assert result.exit_code == 0 and "no messages match" in result.stderr
    assert "--text does not search the 5 newest message(s), not indexed yet" in result.stderr
    index(filled)
    result = hie(filled, "messages", "search", "--text", "王^小明")
    assert result.exit_code == 0 and "not indexed" not in result.stderr
    assert len(result.stdout.splitlines()) == 6  # a heading and the five messages
