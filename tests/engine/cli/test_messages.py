"""``hie messages``: list/search, show (audited), reprocess, against a store filled by a real engine run."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import and_, func, insert, select, update

from engine import audit, runtime
from engine.cli import reprocess as cli_reprocess
from engine.cli.main import main
from engine.cli.output import format_table, parse_when
from engine.cli.store_access import cli_services
from engine.config import AppConfig, load_config
from engine.connectors import memory
from engine.store.db import migrate, open_engine
from engine.store.schema import audit_events, deliveries, messages, nodes
from tests.conftest import hl7_message, running
from tests.engine.cli.scenario import ADT, Filled, fill, until

__all__: list[str] = []


@pytest.fixture
async def filled(make_app: Callable[..., AppConfig]) -> Filled:
    return await fill(make_app)


@pytest.fixture
async def filled_both(make_app: Callable[..., AppConfig], store_url: str) -> Filled:
    """The same store on SQLite and on PostgreSQL."""
    return await fill(make_app, store_url)


def hie(f: Filled, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, [*args, "--config", str(f.config)], input=input, catch_exceptions=False)


def listed(f: Filled, *args: str) -> list[str]:
    """Labels (A1...) of the messages `hie messages search ARGS --json` returns, newest first."""
    result = hie(f, "messages", "search", *args, "--json")
    assert result.exit_code == 0, result.output
    by_id = {v: k for k, v in f.ids.items()}
    return [by_id[m["id"]] for m in json.loads(result.stdout)["messages"]]


def rows(f: Filled, table: Any, *where: Any) -> list[dict[str, Any]]:
    db = f.db()
    try:
        with db.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(table).where(*where))]
    finally:
        db.dispose()


def execute(f: Filled, statement: Any) -> None:
    db = f.db()
    try:
        with db.begin() as conn:
            conn.execute(statement)
    finally:
        db.dispose()


def reads(f: Filled, label: str) -> list[dict[str, Any]]:
    return rows(
        f, audit_events, audit_events.c.message_id == f.ids[label], audit_events.c.event_id.like("110110^%")
    )


# -- list / search --------------------------------------------------------------------------------------
async def test_list_prints_an_aligned_metadata_table_without_content(filled: Filled) -> None:
    result = hie(filled, "messages", "list")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "ID",
        "RECEIVED",
        "CHANNEL",
        "TYPE",
        "CONTROL",
        "ID",
        "FACILITY",
        "STATUS",
        "DELIVERIES",
        "ERROR",
    ]
    assert len(lines) == 6
    # aligned: every column starts at the same offset on every line
    start = lines[0].index("CHANNEL")
    assert all(line[start:].split()[0] in ("CHANNEL", "adt", "lab") for line in lines)
    assert lines[1].startswith(str(filled.ids["L1"]))  # newest first
    l1 = lines[1]
    assert "lis:errored" in l1 and "lis: memory destination refuses" in l1
    a1 = next(line for line in lines if f" {filled.ids['A1']} " in f" {line} ")
    assert "out:sent arch:sent" in a1 and "HOSP_A" in a1 and "ADT^A01" in a1
    a4 = next(line for line in lines if line.startswith(str(filled.ids["A4"])))
    assert "errored" in a4 and "MSH-10" in a4
    # never content: no segment, no patient name or id
    for forbidden in ("PID|", "MSH|", "王", "P100"):
        assert forbidden not in result.output
    assert rows(filled, audit_events, audit_events.c.event_id.like("110110^%")) == []  # listing is not a read


async def test_search_by_each_filter(filled: Filled) -> None:
    assert listed(filled) == ["L1", "A4", "A3", "A2", "A1"]
    assert listed(filled, "--patient-id", "P100") == ["L1", "A1"]
    assert listed(filled, "--control-id", "A2") == ["A2"]
    assert listed(filled, "--status", "errored") == ["L1", "A4"]  # L1: its delivery errored
    assert listed(filled, "--status", "errored", "--destination", "lis") == ["L1"]
    assert listed(filled, "--status", "filtered") == ["A3"]
    assert listed(filled, "--status", "sent") == ["A2", "A1"]
    assert listed(filled, "--type", "ADT^A08") == ["A2"]
    assert listed(filled, "--type", "ADT") == ["L1", "A4", "A3", "A2", "A1"]
    assert listed(filled, "--channel", "lab") == ["L1"]
    assert listed(filled, "--facility", "HOSP_B") == ["A2"]
    assert listed(filled, "--destination", "arch") == ["A2", "A1"]
    assert listed(filled, "--channel", "adt", "--patient-id", "P100") == ["A1"]
    assert listed(filled, "--since", "1h") == ["L1", "A4", "A3", "A2", "A1"]
    execute(
        filled,
        update(messages)
        .where(messages.c.id == filled.ids["A1"])
        .values(received_at=datetime.now(UTC) - timedelta(days=3)),
    )
    assert listed(filled, "--since", "2d") == ["L1", "A4", "A3", "A2"]
    assert listed(filled, "--until", "2d") == ["A1"]
    today = datetime.now().astimezone().date().isoformat()  # local midnight
    assert "A1" not in listed(filled, "--since", today)
    four_days_ago = (datetime.now(UTC) - timedelta(days=4)).isoformat()
    assert listed(filled, "--since", four_days_ago, "--until", "1d") == ["A1"]
    result = hie(filled, "messages", "list", "--since", "yesterday-ish")
    assert result.exit_code == 2 and "expected a date" in result.output


async def test_list_says_when_nothing_matches(filled: Filled) -> None:
    result = hie(filled, "messages", "list", "--control-id", "NOPE")
    assert result.exit_code == 0 and result.stdout == "" and "no messages match" in result.stderr


async def test_paging_with_before(filled: Filled) -> None:
    first = hie(filled, "messages", "list", "--limit", "2")
    assert first.exit_code == 0
    assert len(first.stdout.splitlines()) == 3  # header + 2
    assert f"--before {filled.ids['A4']}" in first.stderr
    seen: list[str] = []
    before: int | None = None
    by_id = {v: k for k, v in filled.ids.items()}
    while True:
        args = ["messages", "list", "--limit", "2", "--json"] + (["--before", str(before)] if before else [])
        page = json.loads(hie(filled, *args).stdout)
        seen += [by_id[m["id"]] for m in page["messages"]]
        before = page["next_before"]
        if before is None:
            break
    assert seen == ["L1", "A4", "A3", "A2", "A1"]
    last = hie(filled, "messages", "list", "--limit", "2", "--before", str(filled.ids["A2"]))
    assert "more:" not in last.stderr and len(last.stdout.splitlines()) == 2


async def test_json_listing_shape(filled: Filled) -> None:
    out = json.loads(hie(filled, "messages", "list", "--channel", "lab", "--json").stdout)
    (m,) = out["messages"]
    assert m["channel_id"] == "lab" and m["control_id"] == "L1" and m["status"] == "received"
    assert m["deliveries"][0]["destination"] == "lis" and m["deliveries"][0]["status"] == "errored"
    assert datetime.fromisoformat(m["received_at"]).utcoffset() == timedelta(0)
    assert "raw" not in m and "content" not in m


# -- show -----------------------------------------------------------------------------------------------
async def test_show_prints_every_stage_and_audits_each_read(filled_both: Filled) -> None:
    filled = filled_both
    result = hie(filled, "messages", "show", str(filled.ids["A2"]))
    assert result.exit_code == 0, result.output
    out = result.stdout
    for expected in (
        "== message",
        "channel",
        "ADT^A08",
        "HIS / HOSP_B",
        "== identifiers ==",
        "PID-3: P200 (authority HOSP_A, type PI)",
        "shown as gb18030",
        "content: not transformed",
        "== delivery to out: sent ==",
        "== delivery to arch: sent ==",
        "-- sent: the received bytes, unchanged",
        "-- response:",
        "MSA|AA|A2",
    ):
        assert expected in out, expected
    lines = out.splitlines()
    raw_at = next(i for i, line in enumerate(lines) if line.startswith("== raw:"))
    assert lines[raw_at + 1].startswith("MSH|") and lines[raw_at + 2].startswith("EVN|")  # a segment per line
    assert lines[raw_at + 3] == "PID|1||P200^^^HOSP_A&1.2.156.112604.1.1&ISO^PI||王^小明||19850312|M"
    assert any(line.startswith("  #1 ") and " sent " in line for line in lines)

    (event,) = reads(filled, "A2")
    assert event["action"] == "R" and event["outcome"] == 0
    assert event["event_id"] == "110110^Patient Record^DCM"
    assert event["user_id"] == audit.cli_user()
    assert event["patient_ids"] == "P200^^^HOSP_A"
    participants = json.loads(event["participants"])
    assert participants[0] == {"user_id": audit.cli_user(), "requestor": True}
    objects = json.loads(event["objects"])
    assert objects[-1]["detail"]["message_id"] == str(filled.ids["A2"]) and objects[-1]["id"] == "A2"
    assert audit.to_dicom_xml(event).startswith("<AuditMessage>")

    assert hie(filled, "messages", "show", str(filled.ids["A2"]), "--stage", "content").exit_code == 0
    assert len(reads(filled, "A2")) == 2  # exactly one more record per show
    assert reads(filled, "A1") == []


async def test_show_raw_writes_the_exact_bytes(filled: Filled) -> None:
    result = hie(filled, "messages", "show", str(filled.ids["A2"]), "--stage", "raw")
    assert result.exit_code == 0
    assert result.stdout_bytes == filled.raw["A2"]  # GB18030 bytes, CR terminators, untouched
    assert len(reads(filled, "A2")) == 1


async def test_show_errored_delivery_transformed_content_and_sent_bytes(filled: Filled) -> None:
    result = hie(filled, "messages", "show", str(filled.ids["L1"]))
    assert "== delivery to lis: errored ==" in result.stdout
    assert "refused" in result.stdout and "memory destination refuses every message" in result.stdout
    assert "-- sent: nothing yet" in result.stdout
    # a message a map step changed, and a destination that re-encoded it
    a1 = filled.ids["A1"]
    execute(filled, update(messages).where(messages.c.id == a1).values(content="MSH|^~\\&|X\rPID|1||CHANGED"))
    arch = and_(deliveries.c.message_id == a1, deliveries.c.destination == "arch")
    execute(filled, update(deliveries).where(arch).values(sent=b"MSH|^~\\&|X\rPID|1||CHANGED\r"))
    out = hie(filled, "messages", "show", str(a1)).stdout
    assert "== content: transformed ==\nMSH|^~\\&|X\nPID|1||CHANGED\n" in out
    assert "-- sent: 26 bytes\nMSH|^~\\&|X\nPID|1||CHANGED\n" in out
    sent = hie(filled, "messages", "show", str(a1), "--stage", "sent").stdout
    assert "== delivery to out: sent ==\n-- sent: the received bytes, unchanged" in sent
    assert "PID|1||CHANGED" in sent and "EVN|" not in sent
    response = hie(filled, "messages", "show", str(a1), "--stage", "response").stdout
    assert "MSA|AA|A1" in response and "-- response: none" in response and "EVN|" not in response


async def test_show_does_not_pass_control_characters_to_the_terminal(filled: Filled) -> None:
    execute(
        filled,
        update(messages).where(messages.c.id == filled.ids["A1"]).values(content="MSH|^~\\&|\x1b[2J\rPID|1"),
    )
    out = hie(filled, "messages", "show", str(filled.ids["A1"]), "--stage", "content").stdout
    assert "\x1b" not in out and "MSH|^~\\&|\\x1b[2J" in out


async def test_show_json(filled: Filled) -> None:
    result = hie(filled, "messages", "show", str(filled.ids["A1"]), "--json")
    data = json.loads(result.stdout)
    assert data["id"] == filled.ids["A1"] and data["raw"]["text"].startswith("MSH|")
    assert data["identifiers"] == [
        {"value": "P100", "authority": "HOSP_A", "id_type": "PI", "field": "PID-3"}
    ]
    out = data["deliveries"][0]
    assert out["sent"] == "unchanged" and "MSA|AA|A1" in out["response"]["text"]
    assert out["attempt_log"][0]["outcome"] == "sent"
    assert len(reads(filled, "A1")) == 1


async def test_show_unknown_id_exits_1_without_audit(filled: Filled) -> None:
    before = rows(filled, audit_events)
    result = hie(filled, "messages", "show", "4242")
    assert result.exit_code == 1 and "no message with id 4242" in result.output
    assert rows(filled, audit_events) == before


# -- reprocess ------------------------------------------------------------------------------------------
def new_ids(result: Result) -> list[int]:
    return [int(line.split(" -> ")[1].split()[0]) for line in result.stdout.splitlines() if " -> " in line]


async def test_reprocess_only_to_chosen_destinations_then_a_restarted_engine_delivers(
    filled_both: Filled,
) -> None:
    filled = filled_both
    a1 = filled.ids["A1"]
    before = rows(filled, deliveries, deliveries.c.message_id == a1)
    result = hie(filled, "messages", "reprocess", str(a1), "--to", "out")
    assert result.exit_code == 0, result.output
    (new,) = new_ids(result)
    assert f"{a1} -> {new} queued for out" in result.stdout
    assert "within ~10 s" in result.stdout
    (copy,) = rows(filled, messages, messages.c.id == new)
    assert copy["reprocessed_from"] == a1 and copy["raw"] == filled.raw["A1"] and copy["status"] == "received"
    assert copy["peer"] == f"reprocess:{audit.cli_user()}"
    dels = {d["destination"]: d for d in rows(filled, deliveries, deliveries.c.message_id == new)}
    assert dels["out"]["status"] == "queued" and dels["out"]["owner_node"] is None
    assert dels["arch"]["status"] == "filtered"
    assert rows(filled, deliveries, deliveries.c.message_id == a1) == before  # the original is untouched
    (event,) = rows(filled, audit_events, audit_events.c.message_id == a1, audit_events.c.action == "E")
    assert event["event_id"].startswith("110106^") and event["user_id"] == audit.cli_user()
    assert event["patient_ids"] == "P100^^^HOSP_A" and str(new) in event["objects"]

    memory.SINKS.clear()
    async with running(filled.app) as rt:
        await until(lambda: memory.SINKS.get("adt-out"))
        assert rt.services is not None
        done = await until(
            lambda: [
                d for d in rows(filled, deliveries, deliveries.c.message_id == new) if d["status"] == "sent"
            ]
        )
        assert done[0]["owner_node"] == rt.services.node_id
    assert memory.SINKS["adt-out"] == [filled.raw["A1"]]
    assert "adt-arch" not in memory.SINKS
    show = hie(filled, "messages", "show", str(a1)).stdout
    assert f"reprocessed as    {new}" in show


async def test_a_running_engine_takes_reprocessed_messages_over(
    filled: Filled, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runtime, "HEARTBEAT_SECONDS", 0.5)  # the recovery pass, every 10 s in production
    memory.SINKS.clear()
    async with running(filled.app):
        result = hie(filled, "messages", "reprocess", str(filled.ids["A2"]))
        assert result.exit_code == 0, result.output
        assert "queued for out, arch" in result.stdout
        await until(lambda: len(memory.SINKS.get("adt-out", [])) == 1 and memory.SINKS.get("adt-arch"))
    assert memory.SINKS["adt-arch"] == [filled.raw["A2"]]


async def test_reprocess_unknown_destination_lists_the_channels(filled: Filled) -> None:
    count = len(rows(filled, messages))
    result = hie(filled, "messages", "reprocess", str(filled.ids["A1"]), "--to", "nowhere")
    assert result.exit_code == 1
    assert "channel adt has no destination nowhere; its destinations: out, arch" in result.output
    assert len(rows(filled, messages)) == count


async def test_reprocess_unknown_id_and_bad_usage(filled: Filled) -> None:
    result = hie(filled, "messages", "reprocess", "4242")
    assert result.exit_code == 1 and "no message with id 4242" in result.output
    assert hie(filled, "messages", "reprocess").exit_code == 2
    assert hie(filled, "messages", "reprocess", "--all-matching").exit_code == 2  # needs a filter
    assert hie(filled, "messages", "reprocess", str(filled.ids["A1"]), "--channel", "adt").exit_code == 2


async def test_reprocess_all_matching_asks_first(filled: Filled) -> None:
    count = len(rows(filled, messages))
    no = hie(filled, "messages", "reprocess", "--all-matching", "--status", "errored", input="n\n")
    assert no.exit_code == 1 and "2 message(s) match" in no.output and "Aborted" in no.output
    assert len(rows(filled, messages)) == count
    yes = hie(filled, "messages", "reprocess", "--all-matching", "--patient-id", "P100", input="y\n")
    assert yes.exit_code == 0, yes.output
    assert "2 message(s) match" in yes.stdout
    copies = rows(filled, messages, messages.c.reprocessed_from.is_not(None))
    assert sorted(c["reprocessed_from"] for c in copies) == sorted([filled.ids["A1"], filled.ids["L1"]])
    assert sorted(new_ids(yes)) == sorted(c["id"] for c in copies)


async def test_reprocess_many_with_yes(filled: Filled) -> None:
    result = hie(filled, "messages", "reprocess", "--all-matching", "--channel", "adt", "--yes")
    assert result.exit_code == 0, result.output
    assert "4 message(s) match" in result.stdout
    assert "4 new message(s), 2 with queued deliveries" in result.stdout
    got = {r["reprocessed_from"]: r for r in rows(filled, messages, messages.c.reprocessed_from.is_not(None))}
    assert got[filled.ids["A3"]]["status"] == "filtered" and got[filled.ids["A4"]]["status"] == "errored"
    assert f"{filled.ids['A4']} -> " in result.stdout and "errored: MSH-10" in result.stdout
    assert "filtered: filter: message did not match the filter" in result.stdout
    db = filled.db()
    try:
        with db.connect() as conn:
            queued = conn.execute(
                select(func.count())
                .select_from(deliveries)
                .where(deliveries.c.status == "queued", deliveries.c.owner_node.is_(None))
            )
            assert queued.scalar_one() == 4  # A1 and A2, to out and arch
    finally:
        db.dispose()


async def test_reprocess_on_an_after_delivery_channel_queues_instead_of_pending(
    make_app: Callable[..., AppConfig],
) -> None:
    channel = """id: sync
source: {url: 'memory://sync'}
ack: after_delivery
ack_from: out
destinations:
  - {id: out, url: 'memory://sync-out', answer: true}
"""
    app = make_app({"sync": channel})
    async with running(app):
        _, msg = await memory.inject("sync", hl7_message("S1").encode())
    assert msg is not None
    result = CliRunner().invoke(main, ["messages", "reprocess", str(msg.id), "--config", str(app.path)])
    assert result.exit_code == 0, result.output
    (new,) = new_ids(result)
    f = Filled(app=app, config=app.path, ids={}, raw={})
    (d,) = rows(f, deliveries, deliveries.c.message_id == new)
    assert d["status"] == "queued" and d["owner_node"] is None  # nobody waits for this answer


async def test_reprocess_to_a_destination_the_routes_do_not_choose_is_reported(
    make_app: Callable[..., AppConfig],
) -> None:
    channel = """id: routed
source: {url: 'memory://routed'}
steps:
  - route:
      rules:
        - when: {message_type: ADT^A08}
          to: [b]
      otherwise: [a]
destinations:
  - {id: a, url: 'memory://routed-a'}
  - {id: b, url: 'memory://routed-b'}
"""
    app = make_app({"routed": channel})
    async with running(app):
        _, msg = await memory.inject("routed", hl7_message("R1").encode())
    assert msg is not None
    args = ["messages", "reprocess", str(msg.id), "--to", "b", "--config", str(app.path)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "no destination chosen" in result.stdout and "0 with queued deliveries" in result.stdout
    assert "not queued for b: the channel's routes do not send it there" in result.stderr


async def test_reprocess_many_in_chunks_with_a_progress_bar(
    make_app: Callable[..., AppConfig], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli_reprocess, "CHUNK", 7)
    app = make_app({"adt": ADT})
    async with running(app):
        for i in range(60):
            await memory.inject("adt", hl7_message(f"M{i:02d}", patient=f"P{i % 3}").encode())
    args = ["messages", "reprocess", "--all-matching", "--type", "ADT^A01", "--yes", "--to", "arch"]
    result = CliRunner().invoke(main, [*args, "--config", str(app.path)])
    assert result.exit_code == 0, result.output
    assert "reprocessing" in result.stderr and "60 new message(s), 60 with queued deliveries" in result.stdout
    f = Filled(app=app, config=app.path, ids={}, raw={})
    copies = rows(f, messages, messages.c.reprocessed_from.is_not(None))
    assert len(copies) == 60
    by_original = {c["reprocessed_from"]: c["id"] for c in copies}
    originals = sorted(by_original)
    assert [by_original[o] for o in originals] == sorted(by_original.values())  # arrival order is kept
    assert [n["id"] for n in rows(f, nodes)] == [1]  # the engine's; the CLI removed its own


def test_cli_node_bits_never_clash_with_a_live_node(tmp_path: Path) -> None:
    db = open_engine(f"sqlite:///{tmp_path / 'store.db'}")
    migrate(db)
    now = datetime.now(UTC)
    try:
        with db.begin() as conn:  # node 5 is alive on another host; 1028 is long dead
            conn.execute(
                insert(nodes),
                [
                    {"id": 5, "hostname": "elsewhere", "pid": 1, "started_at": now, "heartbeat_at": now},
                    {
                        "id": 1028,
                        "hostname": "elsewhere",
                        "pid": 1,
                        "started_at": now,
                        "heartbeat_at": now - timedelta(hours=1),
                    },
                ],
            )
        app = make_config(tmp_path)
        with cli_services(app, db) as services:
            assert services.node_id == 1030 and services.ids.node == 6  # 1029 would share node 5's bits
            with db.connect() as conn:
                assert sorted(conn.execute(select(nodes.c.id)).scalars()) == [5, 1028, 1030]
        with db.connect() as conn:
            assert sorted(conn.execute(select(nodes.c.id)).scalars()) == [5, 1028]  # its own row is gone
    finally:
        db.dispose()


def make_config(tmp_path: Path) -> AppConfig:
    (tmp_path / "channels").mkdir(exist_ok=True)
    (tmp_path / "config.yaml").write_text("store: {url: ''}\n", encoding="utf-8")
    return load_config(tmp_path / "config.yaml")


# -- helpers --------------------------------------------------------------------------------------------
def test_parse_when() -> None:
    now = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
    assert parse_when("2h", now=now) == datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    assert parse_when("30m", now=now) == datetime(2026, 11, 22, 11, 30, tzinfo=UTC)
    assert parse_when("7d", now=now) == datetime(2026, 11, 15, 12, 0, tzinfo=UTC)
    assert parse_when("2026-11-22T08:30+08:00") == datetime(2026, 11, 22, 0, 30, tzinfo=UTC)
    assert parse_when("2026-11-22T08:30Z") == datetime(2026, 11, 22, 8, 30, tzinfo=UTC)
    local_midnight = datetime(2026, 11, 22).astimezone()
    assert parse_when("2026-11-22") == local_midnight
    for bad in ("yesterday", "2026-13-01", "5 parsecs"):
        with pytest.raises(ValueError):
            parse_when(bad)


def test_format_table_aligns_wide_characters() -> None:
    lines: Sequence[str] = format_table(("A", "N"), [("王小明", 1), ("x", 100)], right=[1])
    assert lines == ["A         N", "王小明    1", "x       100"]
