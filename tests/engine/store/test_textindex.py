"""Free-text search on SQLite and PostgreSQL: a real engine receives MLLP messages (synthetic patients),
its background indexer makes them searchable by any fragment of their content (a Chinese name, an
address, in UTF-8 or GB18030, in the raw bytes or the transformed content), combined with the other
filters, but not by an embedded document's base64; a string of two characters is refused; LIKE and
FTS5 syntax in the string is plain text; pruned content stops being found; a restarted engine goes
on from the indexer's mark; two indexers never index a message twice."""

from __future__ import annotations

import asyncio
import base64
import random
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, func, select, text, update

from engine import retention
from engine.cli.store_access import cli_services
from engine.config import AppConfig, load_config
from engine.console import accounts
from engine.store import textindex
from engine.store.db import migrate, open_engine, utcnow
from engine.store.queries import Search, search
from engine.store.schema import messages
from tests.conftest import QUIET_RETENTION, free_port, hl7_message, running
from tests.engine.connectors.mllp_peers import ack_of, channel, hl7_send, until

MakeApp = Callable[..., AppConfig]


@pytest.fixture(autouse=True)
def quick_indexer(monkeypatch: pytest.MonkeyPatch) -> None:
    """The indexer as it runs in production, only sooner: every 0.2 s, messages 0.3 s old."""
    monkeypatch.setattr(textindex, "INTERVAL_SECONDS", 0.2)
    monkeypatch.setattr(textindex, "SETTLE_SECONDS", 0.3)


def adt(
    control_id: str, *, name: str, address: str = "", charset: str = "UNICODE UTF-8", note: str = ""
) -> str:
    """A synthetic ADT^A01 with the patient's name (PID-5), address (PID-11) and a note (NTE-3)."""
    msg = hl7_message(control_id, name=name, charset=charset, extra=f"NTE|1||{note}\r" if note else "")
    return msg.replace("|19850312|M\r", f"|19850312|M|||{address}\r", 1)


MESSAGES = {
    # label: (channel, bytes)
    "zhang": ("adt", adt("Z1", name="张三丰", address="人民路88号^^北京市^^100000^CHN").encode()),
    "harbour": ("adt", adt("H1", name="陈^小红", address="88 Harbour Road^^Hong Kong").encode()),
    "gb18030": (
        "adt",
        adt("G1", name="李四光", address="解放路12号^^上海市", charset="GB18030").encode("gb18030"),
    ),
    "lab-zhang": ("lab", adt("L1", name="张三丰", address="和平街3号").encode()),
    "odd": ("lab", adt("O1", name="赵^六", note='rate 50%_off a%_%b "quoted" a*b^c (x) NOT y').encode()),
}


def app_for(make_app: MakeApp, store_url: str, ports: dict[str, int]) -> AppConfig:
    return make_app(
        {cid: channel(port, cid=cid) for cid, port in ports.items()},
        store_url=store_url,
    )


async def send(port: int, payload: bytes) -> None:
    (answer,) = await hl7_send(port, payload)
    assert ack_of(answer)["MSA"][1] == "AA"


def last_id(db: Engine) -> int:
    with db.connect() as conn:
        return int(conn.execute(select(func.max(messages.c.id))).scalar_one())


async def indexed(db: Engine) -> None:
    """Wait until the indexer has read every message stored so far."""
    newest = last_id(db)
    await until(lambda: textindex.mark(db) >= newest)


def control_ids(db: Engine, wanted: str, **filters: Any) -> list[str]:
    """MSH-10 of the messages ``Search(text=wanted, ...)`` finds, newest first."""
    return [r["control_id"] for r in search(db, Search(text=wanted, **filters))]


def index_rows(db: Engine) -> list[int]:
    """The message ids in the index, one per row (a message indexed twice would appear twice)."""
    key = "message_id" if db.dialect.name == "postgresql" else "rowid"
    with db.connect() as conn:
        return sorted(int(i) for i in conn.execute(text(f"SELECT {key} FROM message_text")).scalars())


@pytest.fixture
def ports() -> dict[str, int]:
    return {"adt": free_port(), "lab": free_port()}


@pytest.fixture
def db(store_url: str) -> Iterator[Engine]:
    eng = open_engine(store_url)
    yield eng
    eng.dispose()


async def feed(ports: dict[str, int], labels: list[str]) -> None:
    for label in labels:
        cid, payload = MESSAGES[label]
        await send(ports[cid], payload)


async def test_messages_are_found_by_any_fragment_of_their_content(
    make_app: MakeApp, store_url: str, ports: dict[str, int], db: Engine
) -> None:
    app = app_for(make_app, store_url, ports)
    async with running(app):
        await feed(ports, list(MESSAGES))
        await indexed(db)
        # a Chinese name of three characters, on both channels; with a channel, on that one only
        assert control_ids(db, "张三丰") == ["L1", "Z1"]
        assert control_ids(db, "张三丰", channel="lab") == ["L1"]
        assert control_ids(db, "张三丰", channel="adt") == ["Z1"]
        assert control_ids(db, "张三丰", channel="adt", message_type="ADT^A08") == []
        # an address fragment; any case
        assert control_ids(db, "人民路88") == ["Z1"]
        assert control_ids(db, "harbour ROAD") == ["H1"]
        # GB18030 bytes on the wire, found by their Chinese text
        assert control_ids(db, "李四光") == ["G1"]
        assert control_ids(db, "解放路12号") == ["G1"]
        # text no message holds
        assert control_ids(db, "王五六") == []
        assert control_ids(db, "Harbour Street") == []
        # header fields are content too: every message holds its MSH-2 (with HL7's escape character)
        assert len(control_ids(db, "^~\\&")) == len(MESSAGES)
        # paging goes on below the page's last id
        newest = search(db, Search(text="张三丰", limit=1))
        assert [r["control_id"] for r in newest] == ["L1"]
        assert control_ids(db, "张三丰", before_id=newest[0]["id"]) == ["Z1"]


ROOT = Path(__file__).resolve().parents[3]


def mapped_app(tmp_path: Path, store_url: str, port: int, lab: int) -> AppConfig:
    """Channel his-a maps a vendor's GBK ADT to the platform's v2.5 (as tests/engine/steps/test_map.py);
    channel lab takes anything."""
    (tmp_path / "channels").mkdir()
    (tmp_path / "channels" / "his-a.yaml").write_text(
        f"id: his-a\nsource: {{url: 'mllp://127.0.0.1:{port}', idle_timeout: 2}}\nsteps:\n"
        "  - map: {mapping: hospital-a-adt}\n  - map: {mapping: platform-adt-v25}\n"
        "destinations:\n  - {id: platform, url: 'memory://text-his-a-platform'}\n",
        "utf-8",
    )
    (tmp_path / "channels" / "lab.yaml").write_text(channel(lab, cid="lab"), "utf-8")
    (tmp_path / "config.yaml").write_text(
        f"engine: {{data_dir: data, mappings_dir: '{ROOT / 'mappings'}'}}\nstore: {{url: '{store_url}'}}\n"
        + QUIET_RETENTION,
        "utf-8",
    )
    return load_config(tmp_path / "config.yaml")


VENDOR = (ROOT / "tests" / "data" / "mappings" / "hospital-a-adt" / "a01-inpatient.hl7").read_bytes()


async def test_the_transformed_content_is_searched_and_embedded_documents_are_not(
    tmp_path: Path, store_url: str, db: Engine
) -> None:
    """A vendor's GBK feed mapped to the platform's v2.5: found by what only the raw bytes hold and by
    what only the transformed content holds. An ORU carrying a PDF as base64 (OBX-5) is found by its
    patient, not by the base64."""
    port, lab = free_port(), free_port()
    app = mapped_app(tmp_path, store_url, port, lab)
    pdf = base64.b64encode(random.Random(8).randbytes(3000)).decode()
    oru = hl7_message("R1", name="周^一诺", extra=f"OBX|1|ED|PDF^Report||^AP^PDF^Base64^{pdf}||||||F\r")
    async with running(app):
        await send(port, VENDOR.replace(b"\r\n", b"\r").replace(b"\n", b"\r"))
        await send(lab, oru.encode())
        await indexed(db)
    assert control_ids(db, "中山路12号") == ["A20261120001"]  # the raw GBK bytes: 张伟, in one component
    assert control_ids(db, "张^伟^^^^^L") == ["A20261120001"]  # the platform's v2.5 name
    assert control_ids(db, "10011.1.3&ISO^NI") == ["A20261120001"]  # the ID card as NI identifier
    assert control_ids(db, "周^一诺") == ["R1"]
    assert control_ids(db, pdf[1000:1030]) == []


async def test_like_and_match_syntax_is_plain_text(
    make_app: MakeApp, store_url: str, ports: dict[str, int], db: Engine
) -> None:
    app = app_for(make_app, store_url, ports)
    async with running(app):
        await feed(ports, ["zhang", "odd"])
        await indexed(db)
        # as LIKE wildcards, "%_%" would match every message; as an FTS5 query, " * ^ ( NOT are syntax
        for wanted in ("%_%", "50%_off", '"quoted"', "a*b^c", "(x) NOT y", "a%_%b"):
            assert control_ids(db, wanted) == ["O1"], wanted
        # as wildcards "_" would match the "f", "a", "*" here; as an escape "\\" would make "%" literal
        for absent in ("50%_of_", "a_b", "a*b^d", "50\\%"):
            assert control_ids(db, absent) == [], absent


def test_a_string_of_two_characters_is_refused(db: Engine) -> None:
    migrate(db)
    for short in ("张三", "ab", "  a ", "\r\nab"):
        with pytest.raises(textindex.TextSearchError, match="free text needs at least 3 characters"):
            search(db, Search(text=short))
    with pytest.raises(ValueError, match="at least 3 characters"):  # the API answers a ValueError 400
        search(db, Search(text="张三", channel="adt"))
    assert search(db, Search(text="")) == []  # no text: no filter, and an empty store
    assert Search().is_empty() and not Search(text="张三丰").is_empty()


async def test_pruned_content_is_no_longer_found(
    make_app: MakeApp, store_url: str, ports: dict[str, int], db: Engine
) -> None:
    app = app_for(make_app, store_url, ports)
    async with running(app):
        await feed(ports, ["zhang", "harbour", "gb18030"])
        await indexed(db)
    ids = {r["control_id"]: r["id"] for r in search(db, Search())}
    now = utcnow()
    with db.begin() as conn:  # Z1 is 40 days old (content pruned), G1 400 days (deleted)
        conn.execute(
            update(messages).where(messages.c.id == ids["Z1"]).values(received_at=now - timedelta(days=40))
        )
        conn.execute(
            update(messages).where(messages.c.id == ids["G1"]).values(received_at=now - timedelta(days=400))
        )
    with cli_services(app, db) as services:
        done = retention.prune(services, app, now)
    assert (done.pruned, done.deleted) == (2, 1)
    assert control_ids(db, "张三丰") == []
    assert control_ids(db, "人民路88") == []
    assert control_ids(db, "李四光") == []
    assert control_ids(db, "Harbour Road") == ["H1"]
    assert index_rows(db) == [ids["H1"]]  # nothing of the pruned messages is left in the index


async def test_a_message_pruned_while_being_indexed_is_not_indexed(
    make_app: MakeApp, store_url: str, ports: dict[str, int], db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(textindex, "INTERVAL_SECONDS", 3600.0)  # the engine's indexer stays idle
    app = app_for(make_app, store_url, ports)
    async with running(app):
        await feed(ports, ["zhang", "harbour"])
    ids = {r["control_id"]: r["id"] for r in search(db, Search())}
    read = textindex._unread(db, 0, textindex._horizon(utcnow().timestamp(), 0))
    assert [i for i, _ in read] == sorted(ids.values())
    with db.begin() as conn:  # retention prunes Z1 between the indexer's read and its write
        conn.execute(update(messages).where(messages.c.id == ids["Z1"]).values(raw=None, content=None))
    with cli_services(app, db) as services:
        write = textindex._write(0, read[-1][0], read)
        if db.dialect.name == "postgresql":
            assert textindex._on_own_connection(services, write) == 1
        else:
            assert textindex._on_writer(services, write) == 1
    assert control_ids(db, "张三丰") == []
    assert control_ids(db, "Harbour Road") == ["H1"]


async def test_a_restarted_engine_goes_on_from_the_mark(
    make_app: MakeApp, store_url: str, ports: dict[str, int], db: Engine
) -> None:
    app = app_for(make_app, store_url, ports)
    async with running(app):
        await feed(ports, ["zhang", "harbour"])
        await indexed(db)
    first = textindex.mark(db)
    ids = {r["control_id"]: r["id"] for r in search(db, Search())}
    assert first == max(ids.values())
    # an index row lost while the engine is down: indexed again only if the indexer started over
    key = "message_id" if db.dialect.name == "postgresql" else "rowid"
    with db.begin() as conn:
        conn.execute(text(f"DELETE FROM message_text WHERE {key} = :i"), {"i": ids["Z1"]})
    async with running(app):
        await feed(ports, ["gb18030"])
        await indexed(db)
    ids = {r["control_id"]: r["id"] for r in search(db, Search())}
    assert textindex.mark(db) == ids["G1"] > first
    assert control_ids(db, "李四光") == ["G1"]  # the new message
    assert control_ids(db, "Harbour Road") == ["H1"]  # the old one, still there
    assert control_ids(db, "张三丰") == []  # not read again
    assert index_rows(db) == sorted([ids["H1"], ids["G1"]])  # each message once


async def test_an_indexer_behind_another_writes_nothing(
    make_app: MakeApp, store_url: str, ports: dict[str, int], db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two engines sharing a database: the second to write finds the mark moved and gives way."""
    monkeypatch.setattr(textindex, "INTERVAL_SECONDS", 3600.0)
    app = app_for(make_app, store_url, ports)
    async with running(app):
        await feed(ports, ["zhang", "harbour"])
    read = textindex._unread(db, 0, textindex._horizon(utcnow().timestamp(), 0))
    with cli_services(app, db) as services:
        assert textindex.index_pending(services, settle=0) == 2  # the first indexer
        stale = textindex._write(0, read[-1][0], read)  # the second one read the same mark, 0
        if db.dialect.name == "postgresql":
            assert textindex._on_own_connection(services, stale) is None
        else:
            assert textindex._on_writer(services, stale) is None
        assert textindex.index_pending(services, settle=0) == 0  # nothing new
    assert index_rows(db) == sorted(i for i, _ in read)


async def test_with_the_index_off_nothing_is_indexed_and_the_api_refuses_text(
    make_app: MakeApp, store_url: str, ports: dict[str, int], db: Engine
) -> None:
    console = free_port()
    app = make_app(
        {
            **{cid: channel(port, cid=cid) for cid, port in ports.items()},
            "console": f"id: console\nsource: {{url: 'console://127.0.0.1:{console}'}}\n",
        },
        store_url=store_url,
    )
    app.store.text_index = False  # store: {text_index: false} in config.yaml
    async with running(app) as rt:
        assert rt.services is not None
        await feed(ports, ["zhang", "harbour"])
        await asyncio.sleep(1.5)  # several intervals of the (quick) indexer, had it been scheduled
        assert textindex.mark(db) == 0 and index_rows(db) == []
        accounts.add_user(
            rt.services.db, rt.services.ids, username="ann", password="long-enough", role="admin", actor="t"
        )
        _, token = accounts.issue_token(rt.services.db, rt.services.ids, username="ann", days=1, actor="t")
        async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as c:
            r = await c.get(f"http://127.0.0.1:{console}/api/v1/messages", params={"text": "张三丰"})
            assert r.status_code == 400 and "store.text_index" in r.json()["error"]
            r = await c.get(f"http://127.0.0.1:{console}/api/v1/messages", params={"channel": "adt"})
            assert len(r.json()["messages"]) == 2  # the rest of the search works as ever


class _Clock:
    """``textindex.time`` for a test: a clock that moves only when told, and the pauses asked for."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.pauses: list[float] = []
        self.time = time.time  # _horizon: which messages are old enough

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)


async def test_a_backlog_is_indexed_in_short_chunks_that_give_way_while_messages_are_stored(
    make_app: MakeApp, store_url: str, ports: dict[str, int], db: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While messages are being stored the index takes at most its share of the time (on
    PostgreSQL too, where a chunk holds a core: unpaced, the EMPI's slowest answers came in its
    bursts); once it is quiet the index works at full speed."""
    monkeypatch.setattr(textindex, "INTERVAL_SECONDS", 3600.0)  # the engine's indexer stays idle
    monkeypatch.setattr(textindex, "FIRST_CHUNK", 2)
    monkeypatch.setattr(textindex, "CHUNK_LIMITS", (2, 2))
    app = app_for(make_app, store_url, ports)
    async with running(app):
        await feed(ports, ["zhang", "harbour", "gb18030", "lab-zhang", "odd"])
    clock = _Clock()
    monkeypatch.setattr(textindex, "time", clock)
    write = textindex._write
    traffic = {"on": True}

    with cli_services(app, db) as services:

        def timed_write(old: int, new: int, docs: Any) -> Callable[[Any], int | None]:
            work = write(old, new, docs)

            def chunk(conn: Any) -> int | None:
                clock.now += 0.01  # each chunk takes 10 ms
                if traffic["on"]:  # meanwhile the channels stored messages
                    services.writer.rows_written += 8
                return work(conn)

            return chunk

        monkeypatch.setattr(textindex, "_write", timed_write)
        assert textindex.index_pending(services, settle=0) == 5
        share = textindex.PG_BUSY_SHARE if db.dialect.name == "postgresql" else textindex.BUSY_SHARE
        assert len(clock.pauses) == 3  # chunks of 2, 2 and 1 messages
        for pause in clock.pauses:
            assert 0.01 / (0.01 + pause) == pytest.approx(share)
        assert control_ids(db, "Harbour Road") == ["H1"]

        traffic["on"] = False
        async with running(app):
            await feed(ports, ["zhang", "harbour"])
        clock.pauses.clear()
        assert textindex.index_pending(services, settle=0) == 2
        assert clock.pauses == [0.0]  # quiet: no pause
