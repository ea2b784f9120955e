"""Retention on SQLite and PostgreSQL: a real engine run stores messages (synthetic patients), they are
aged, and pruning as of ``now`` archives and strips the old ones' content, deletes the very old ones
(but never their audit records), leaves a message with a queued delivery and the young ones alone,
honours a channel's own retention, and writes a gzip JSON-lines archive that reads back to the bytes
received; ``hie prune --dry-run`` changes nothing, ``hie messages show`` says what was pruned, and the
engine schedules the job at ``retention.prune_at``."""

from __future__ import annotations

import base64
import fcntl
import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import Engine, func, select, text, update

from engine import retention
from engine.cli.main import main
from engine.cli.store_access import cli_services
from engine.config import AppConfig, load_config
from engine.connectors import memory
from engine.errors import ConfigError
from engine.ids import IdGenerator
from engine.services import Services
from engine.store.db import open_engine, utcnow
from engine.store.schema import attempts, audit_events, deliveries, identifiers, messages
from engine.store.writer import BatchWriter
from tests.conftest import hl7_message, running
from tests.engine.cli.scenario import until

ADT = """id: adt
source: {url: 'memory://ret-adt'}
steps:
  - filter: {message_type: [ADT^A01, ADT^A04, ADT^A08]}
destinations:
  - {id: out, url: 'memory://ret-adt-out', answer: true}
"""

LAB = """id: lab
source: {url: 'memory://ret-lab'}
retention: {content_days: 7, metadata_days: 60}
destinations:
  - {id: lis, url: 'memory://ret-lab-lis', answer: true}
"""

# a destination that is down: its delivery waits an hour for its second attempt, still queued
HOLD = """id: hold
source: {url: 'memory://ret-hold'}
destinations:
  - id: down
    url: 'memory://ret-hold-down'
    fail_times: 1000
    retry: {max_attempts: 100, backoff: 3600}
"""

# label: (channel, age in days, event); adt and hold keep content 30 days and metadata 365 (the
# defaults), lab 7 and 60
MESSAGES = {
    "young": ("adt", 10, "A01"),
    "old": ("adt", 40, "A01"),
    "filtered": ("adt", 40, "A03"),
    "ancient": ("adt", 400, "A08"),
    "lab-mid": ("lab", 10, "A04"),
    "lab-old": ("lab", 100, "A04"),
    "stuck": ("hold", 400, "A01"),
}


@dataclass
class Store:
    app: AppConfig
    ids: dict[str, int]
    raw: dict[str, bytes]
    now: datetime

    def db(self) -> Engine:
        return open_engine(self.app.store_url)

    def rows(self, table: Any, *where: Any) -> list[dict[str, Any]]:
        db = self.db()
        try:
            with db.connect() as conn:
                return [dict(r._mapping) for r in conn.execute(select(table).where(*where))]
        finally:
            db.dispose()

    def message(self, label: str) -> dict[str, Any] | None:
        found = self.rows(messages, messages.c.id == self.ids[label])
        return found[0] if found else None

    def deliveries_of(self, label: str) -> list[dict[str, Any]]:
        return self.rows(deliveries, deliveries.c.message_id == self.ids[label])

    def attempts_of(self, label: str) -> list[dict[str, Any]]:
        dels = [d["id"] for d in self.deliveries_of(label)]
        return self.rows(attempts, attempts.c.delivery_id.in_(dels))

    def prune(self, now: datetime | None = None, user: str | None = "tester") -> retention.Pruned:
        db = self.db()
        try:
            with cli_services(self.app, db) as services:
                return retention.prune(services, self.app, now or self.now, user=user)
        finally:
            db.dispose()

    def hie(self, *args: str) -> Result:
        return CliRunner().invoke(main, [*args, "--config", str(self.app.path)], catch_exceptions=False)

    def age(self, label: str, days: int) -> None:
        db = self.db()
        try:
            with db.begin() as conn:
                when = self.now - timedelta(days=days)
                conn.execute(
                    update(messages).where(messages.c.id == self.ids[label]).values(received_at=when)
                )
        finally:
            db.dispose()


def _settled(db: Engine) -> bool:
    """Every delivery done, but the one to the down destination, which has failed once and waits."""
    with db.connect() as conn:
        rows = list(conn.execute(select(deliveries.c.status, deliveries.c.attempts)))
    waiting = [n for status, n in rows if status in ("queued", "pending")]
    return len(rows) == 6 and waiting == [1]  # the filtered message has no delivery


async def fill(make_app: Callable[..., AppConfig], store_url: str, extra: str = "") -> Store:
    memory.SINKS.clear()
    app = make_app({"adt": ADT, "lab": LAB, "hold": HOLD}, store_url=store_url, extra=extra)
    ids: dict[str, int] = {}
    raws: dict[str, bytes] = {}
    async with running(app) as rt:
        for n, (label, (channel, _, event)) in enumerate(MESSAGES.items()):
            raws[label] = hl7_message(f"C{n}", event=event, patient=f"P{n}").encode()
            _, msg = await memory.inject(f"ret-{channel}", raws[label])
            assert msg is not None
            ids[label] = msg.id
        await until(lambda: _settled(rt.services.db) if rt.services else False)
    store = Store(app, ids, raws, utcnow())
    for label, (_, days, _) in MESSAGES.items():
        store.age(label, days)
    return store


@pytest.fixture
async def store(make_app: Callable[..., AppConfig], store_url: str) -> Store:
    return await fill(make_app, store_url)


def _archive(s: Store, channel: str) -> Path:
    return retention.archive_path(s.app, channel, s.now.astimezone().date())


async def test_old_content_is_archived_then_pruned_and_very_old_messages_deleted(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = store
    # small batches: the run must work across several transactions as it does on a large backlog
    monkeypatch.setattr(retention, "BATCH", 2)
    monkeypatch.setattr(retention, "ARCHIVE_CHUNK", 2)
    audited = {label: len(s.rows(audit_events, audit_events.c.message_id == s.ids[label])) for label in s.ids}
    assert audited["ancient"] >= 2  # received (Import) and sent (Export)
    ancient_deliveries = [d["id"] for d in s.deliveries_of("ancient")]

    result = s.prune()

    by_channel = {c.channel: c for c in result.channels}
    assert (by_channel["adt"].pruned, by_channel["adt"].deleted) == (3, 1)  # old, filtered, ancient
    assert (by_channel["lab"].pruned, by_channel["lab"].deleted) == (2, 1)  # lab-mid, lab-old
    assert (by_channel["hold"].pruned, by_channel["hold"].deleted, by_channel["hold"].held) == (0, 0, 1)
    # content gone from every stage, metadata kept
    for label in ("old", "filtered", "lab-mid"):
        msg = s.message(label)
        assert msg is not None and msg["raw"] is None and msg["content"] is None
        assert msg["control_id"] and msg["message_type"]
        assert s.rows(identifiers, identifiers.c.message_id == s.ids[label])
        for d in s.deliveries_of(label):
            assert (d["sent"], d["response"]) == (None, None) and d["status"] == "sent"
        assert all(a["response"] is None for a in s.attempts_of(label))
    # the lab channel keeps content 7 days: lab-mid (10 days) is pruned, adt's young (10 days) is not
    young = s.message("young")
    assert young is not None and young["raw"] == s.raw["young"]
    assert [d["response"] is not None for d in s.deliveries_of("young")] == [True]
    assert all(a["response"] is not None for a in s.attempts_of("young"))
    # deleted after metadata_days (365 for adt, 60 for lab), with deliveries, attempts, identifiers
    for label in ("ancient", "lab-old"):
        assert s.message(label) is None
        assert not s.deliveries_of(label)
        assert not s.rows(identifiers, identifiers.c.message_id == s.ids[label])
    assert not s.rows(attempts, attempts.c.delivery_id.in_(ancient_deliveries))
    # ... but never their audit records
    for label, n in audited.items():
        assert len(s.rows(audit_events, audit_events.c.message_id == s.ids[label])) == n
    # a queued delivery's message is left whole, however old
    stuck = s.message("stuck")
    assert stuck is not None and stuck["raw"] == s.raw["stuck"]
    assert [d["status"] for d in s.deliveries_of("stuck")] == ["queued"]
    # the run's own audit record: 110110 Patient Record, delete, per channel counts and archive
    (record,) = s.rows(audit_events, audit_events.c.event_type == "retention^prune")
    assert (record["event_id"], record["action"], record["outcome"]) == ("110110^Patient Record^DCM", "D", 0)
    assert record["user_id"] == "tester"
    objects = {o["id"]: o["detail"] for o in json.loads(record["objects"])}
    assert set(objects) == {"adt", "lab"}
    assert objects["adt"] | {"archive": ""} == {
        "content_days": "30",
        "metadata_days": "365",
        "pruned": "3",
        "deleted": "1",
        "archive": "",
    }
    assert objects["lab"]["archive"] == str(_archive(s, "lab")) == str(by_channel["lab"].archive)
    assert "5 message(s) archived and pruned, 2 deleted" in record["outcome_description"]


async def test_the_archive_is_gzip_json_lines_with_every_stage(store: Store) -> None:
    s = store
    before = {label: s.deliveries_of(label) for label in ("old", "ancient")}
    s.prune()
    path = _archive(s, "adt")
    assert path.parent == s.app.data_dir / "archive" / "adt"
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    # plain gzip and JSON, readable without the engine: raw bytes in base64
    with gzip.open(path, "rt", encoding="utf-8") as f:
        lines = [json.loads(line) for line in f]
    by_id = {line["message"]["id"]: line for line in lines}
    assert set(by_id) == {s.ids["old"], s.ids["filtered"], s.ids["ancient"]}
    ancient = by_id[s.ids["ancient"]]
    assert base64.b64decode(ancient["message"]["raw"]) == s.raw["ancient"]
    assert ancient["message"]["channel_id"] == "adt" and ancient["message"]["control_id"] == "C3"
    assert datetime.fromisoformat(ancient["message"]["received_at"]) < s.now - timedelta(days=399)
    assert [i["value"] for i in ancient["identifiers"]] == ["P3"]
    # read back with the engine's reader: bytes again, each delivery with its answer and attempts
    records = {r["message"]["id"]: r for r in retention.read_archive(path)}
    for label in ("old", "ancient"):
        record = records[s.ids[label]]
        assert record["message"]["raw"] == s.raw[label]
        (d,) = record["deliveries"]
        (stored,) = before[label]
        assert (d["id"], d["destination"], d["status"]) == (stored["id"], "out", "sent")
        assert d["response"] == stored["response"] and d["response"].startswith(b"MSH|")
        assert b"MSA|AA|C" in d["response"]
        (attempt,) = d["attempt_log"]
        assert attempt["outcome"] == "sent" and attempt["response"] == stored["response"]
    assert records[s.ids["filtered"]]["message"]["status"] == "filtered"
    lab = {r["message"]["id"] for r in retention.read_archive(_archive(s, "lab"))}
    assert lab == {s.ids["lab-mid"], s.ids["lab-old"]}
    assert not _archive(s, "hold").exists()


async def test_a_second_run_the_same_day_adds_to_that_days_file(store: Store) -> None:
    s = store
    s.prune()
    again = s.prune()
    assert (again.pruned, again.deleted) == (0, 0)
    s.age("young", 35)  # now old enough
    third = s.prune()
    assert [(c.channel, c.pruned) for c in third.channels if c.pruned] == [("adt", 1)]
    ids = [r["message"]["id"] for r in retention.read_archive(_archive(s, "adt"))]
    assert sorted(ids) == sorted(s.ids[label] for label in ("old", "filtered", "ancient", "young"))
    assert len(s.rows(audit_events, audit_events.c.event_type == "retention^prune")) == 3


async def test_the_store_is_unchanged_when_the_archive_cannot_be_written(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = store

    def full(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(retention.os, "replace", full)
    with pytest.raises(OSError, match="No space"):
        s.prune()
    old = s.message("old")
    ancient = s.message("ancient")
    assert old is not None and old["raw"] == s.raw["old"] and ancient is not None
    assert not _archive(s, "adt").exists()
    assert not [p for p in _archive(s, "adt").parent.iterdir() if p.name.endswith(".tmp")]
    (record,) = s.rows(audit_events, audit_events.c.event_type == "retention^prune")
    assert record["outcome"] == 8 and "OSError" in record["outcome_description"]


async def test_a_run_the_engine_stops_ends_between_transactions_and_is_still_audited(store: Store) -> None:
    s = store
    db = s.db()
    writer = BatchWriter(db)
    writer.start()
    writer.stop()  # what Runtime.stop does while the job runs on its scheduler thread
    services = Services(app=s.app, db=db, writer=writer, ids=IdGenerator(1), node_id=1)
    try:
        with pytest.raises(retention.Interrupted):
            retention.prune(services, s.app, s.now)
    finally:
        db.dispose()
    old = s.message("old")
    assert old is not None and old["raw"] == s.raw["old"]
    (record,) = s.rows(audit_events, audit_events.c.event_type == "retention^prune")
    assert record["outcome"] == 8 and "Interrupted" in record["outcome_description"]
    assert record["user_id"].startswith("hie-retention@")


def test_only_one_prune_runs_at_a_time(store: Store) -> None:
    """On this machine (the engine's nightly run and ``hie prune``) and, on PostgreSQL, across every
    machine sharing the database."""
    s = store
    folder = s.app.data_dir / "archive"
    folder.mkdir(parents=True)
    db = s.db()
    try:
        with open(folder / ".prune.lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            assert s.prune().locked_out
            fcntl.flock(lock, fcntl.LOCK_UN)
        if db.dialect.name == "postgresql":
            with db.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": retention._LOCK_KEY})
                assert s.prune().locked_out
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": retention._LOCK_KEY})
        old = s.message("old")
        assert old is not None and old["raw"] == s.raw["old"]
        result = s.prune()
        assert not result.locked_out and result.pruned == 5
    finally:
        db.dispose()


async def test_hie_messages_show_says_what_was_pruned(store: Store) -> None:
    s = store
    s.prune()
    shown = s.hie("messages", "show", str(s.ids["old"]))
    assert shown.exit_code == 0, shown.output
    assert "raw: pruned by retention" in shown.output
    assert "content: pruned by retention" in shown.output
    assert "-- sent: pruned by retention" in shown.output
    assert "-- response: pruned by retention" in shown.output
    as_json = json.loads(s.hie("messages", "show", str(s.ids["old"]), "--json").stdout)
    assert as_json["pruned"] is True and as_json["raw"] is None
    assert as_json["deliveries"][0]["sent"] is None
    raw = s.hie("messages", "show", str(s.ids["old"]), "--stage", "raw")
    assert raw.exit_code == 1 and "pruned by retention" in raw.output
    young = s.hie("messages", "show", str(s.ids["young"]))
    assert "pruned" not in young.output


def _snapshot(s: Store) -> dict[str, Any]:
    db = s.db()
    try:
        with db.connect() as conn:
            return {
                t.name: sorted(
                    tuple(str(v) for v in r) for r in conn.execute(select(t).order_by(*t.primary_key or []))
                )
                for t in (messages, deliveries, attempts, identifiers)
            } | {"audit": conn.execute(select(func.count()).select_from(audit_events)).scalar_one()}
    finally:
        db.dispose()


async def test_hie_prune_dry_run_counts_and_changes_nothing_then_hie_prune_prunes(store: Store) -> None:
    s = store
    before = _snapshot(s)
    dry = s.hie("prune", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "dry run: nothing changed" in dry.output
    assert "adt (content 30 d, metadata 365 d): would archive and prune 3, would delete 1" in dry.output
    assert "lab (content 7 d, metadata 60 d): would archive and prune 2, would delete 1" in dry.output
    assert "hold (content 30 d, metadata 365 d): would archive and prune 0, would delete 0" in dry.output
    assert "1 held (deliveries still queued)" in dry.output
    assert _snapshot(s) == before
    assert not (s.app.data_dir / "archive").exists()

    done = s.hie("prune")
    assert done.exit_code == 0, done.output
    assert "adt (content 30 d, metadata 365 d): archived and pruned 3, deleted 1" in done.output
    assert f"archive: {_archive(s, 'adt')}" in done.output
    assert f"archive: {_archive(s, 'lab')}" in done.output
    assert "total: archived and pruned 5, deleted 2" in done.output
    (record,) = s.rows(audit_events, audit_events.c.event_type == "retention^prune")
    assert record["user_id"] not in ("", "tester") and record["action"] == "D"


async def test_the_engine_schedules_pruning_at_the_configured_time(
    make_app: Callable[..., AppConfig],
) -> None:
    app = make_app({}, extra="retention: {prune_at: '03:45', timezone: Asia/Shanghai}\n")
    async with running(app) as rt:
        assert rt._scheduler is not None
        (job,) = [j for j in rt._scheduler.get_jobs() if j.args and j.args[0] is retention.PRUNE]
        fields = {f.name: str(f) for f in job.trigger.fields}
        assert (fields["hour"], fields["minute"]) == ("3", "45")
        assert str(job.trigger.timezone) == "Asia/Shanghai"


async def test_by_default_pruning_runs_at_half_past_two_local_time(
    make_app: Callable[..., AppConfig],
) -> None:
    # a retention section without prune_at: make_app leaves the default alone
    async with running(make_app({}, extra="retention: {content_days: 30}\n")) as rt:
        assert rt._scheduler is not None
        (job,) = [j for j in rt._scheduler.get_jobs() if j.args and j.args[0] is retention.PRUNE]
        fields = {f.name: str(f) for f in job.trigger.fields}
        assert (fields["hour"], fields["minute"]) == ("2", "30")
        local = datetime.now().astimezone().utcoffset()
        assert job.trigger.timezone.utcoffset(datetime.now()) == local


def test_hie_check_reports_bad_retention_with_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "channels").mkdir()
    (tmp_path / "channels" / "adt.yaml").write_text(
        "id: adt\nsource: {url: 'memory://x'}\nretention:\n  content_days: 0\n", encoding="utf-8"
    )
    (tmp_path / "channels" / "lab.yaml").write_text(
        "id: lab\nsource: {url: 'memory://y'}\nretention: {content_days: 400}\n", encoding="utf-8"
    )
    (tmp_path / "config.yaml").write_text(
        "retention:\n  content_days: 30\n  metadata_days: 365\n  prune_at: '25:00'\n  timezone: Mars/Base\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "config.yaml")
    found = {(Path(p.file).name, p.line, p.field): p.message for p in caught.value.problems}
    assert ("adt.yaml", 4, "retention.content_days") in found
    lab = found[("lab.yaml", 3, "retention")]
    assert "metadata_days (365) is shorter than content_days (400)" in lab
    assert ("config.yaml", 4, "retention.prune_at") in found
    assert "unknown time zone 'Mars/Base'" in found[("config.yaml", 5, "retention.timezone")]
    (tmp_path / "config.yaml").write_text("retention: {content_days: 90, metadata_days: 60}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "config.yaml")
    assert any("metadata_days (60) is shorter" in str(p) for p in caught.value.problems)


def test_a_channel_no_longer_configured_follows_the_global_retention(tmp_path: Path) -> None:
    (tmp_path / "channels").mkdir()
    (tmp_path / "channels" / "lab.yaml").write_text(
        "id: lab\nsource: {url: 'memory://y'}\nretention: {metadata_days: 90}\n", encoding="utf-8"
    )
    (tmp_path / "config.yaml").write_text("retention: {content_days: 20}\n", encoding="utf-8")
    app = load_config(tmp_path / "config.yaml")
    assert retention.policy(app, "lab") == (20, 90)
    assert retention.policy(app, "gone") == (20, 365)
