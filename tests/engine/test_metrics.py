"""The metrics:// source: Prometheus scrapes over HTTP after real MLLP traffic, on SQLite and PostgreSQL.

What an operator's Prometheus would see: the exposition parses (a small parser here, written from the
format's description), every family has HELP and TYPE, the per channel counters agree with
``hie stats``, the queue depths with the store, and a stopped listener shows as 0.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from engine.config import AppConfig, load_config
from engine.errors import ConfigError
from engine.metrics import Exposition
from engine.runtime import Runtime
from engine.store import queries
from engine.store.schema import deliveries
from tests.conftest import free_port, hl7_message, running
from tests.engine.connectors.mllp_peers import hl7_send, until

ROOT = Path(__file__).resolve().parents[2]

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')

Samples = dict[str, list[tuple[dict[str, str], float]]]


def parse(text: str) -> tuple[dict[str, str], Samples]:
    """The exposition's families (name -> type) and samples; fails on any line out of format."""
    assert text.endswith("\n")
    types: dict[str, str] = {}
    helps: set[str] = set()
    samples: Samples = {}
    for line in text.rstrip("\n").split("\n"):
        if line.startswith("# HELP "):
            name, _, help_text = line[7:].partition(" ")
            assert help_text and name not in helps, line
            helps.add(name)
            continue
        if line.startswith("# TYPE "):
            name, kind = line[7:].split(" ")
            assert kind in ("counter", "gauge", "histogram", "summary", "untyped"), line
            assert name in helps and name not in types, f"TYPE without HELP first, or twice: {line}"
            types[name] = kind
            continue
        m = _SAMPLE.match(line)
        assert m is not None, f"not a sample line: {line!r}"
        name, label_text, value = m.groups()
        labels: dict[str, str] = {}
        rest = label_text or ""
        while rest:
            lm = _LABEL.match(rest)
            assert lm is not None, f"bad labels in {line!r}"
            labels[lm.group(1)] = lm.group(2).replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")
            rest = rest[lm.end() :]
        family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in types else name
        assert family in types, f"sample before its TYPE: {line}"
        if types[family] == "counter":
            assert name.endswith("_total"), line
        samples.setdefault(name, []).append((labels, float(value)))
    return types, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    found = [v for ls, v in samples.get(name, []) if all(ls.get(k) == x for k, x in labels.items())]
    assert len(found) == 1, f"{name}{labels}: {found}"
    return found[0]


async def scrape(port: int) -> tuple[httpx.Response, dict[str, str], Samples]:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"http://127.0.0.1:{port}/metrics")
    assert response.status_code == 200
    types, samples = parse(response.text)
    return response, types, samples


def deployment(make_app: Callable[..., AppConfig], store_url: str) -> tuple[AppConfig, int, int]:
    mllp, metrics, closed = free_port(), free_port(), free_port()  # nobody listens on ``closed``
    adt = (
        f"id: adt\nsource: {{url: 'mllp://127.0.0.1:{mllp}', idle_timeout: 5}}\n"
        "steps:\n  - filter: {message_type: [ADT^A08], exclude: true}\n"
        "destinations:\n"
        "  - {id: out, url: 'memory://adt-out'}\n"
        f"  - {{id: down, url: 'mllp://127.0.0.1:{closed}', retry: {{max_attempts: 100, backoff: 60}}}}\n"
        f"  - {{id: dead, url: 'mllp://127.0.0.1:{closed}', retry: {{max_attempts: 1}}}}\n"
    )
    monitor = f"id: metrics\nsource: {{url: 'metrics://127.0.0.1:{metrics}/metrics'}}\n"
    return make_app({"adt": adt, "metrics": monitor}, store_url=store_url), mllp, metrics


def dead_letters(db: object) -> int:
    with db.connect() as conn:  # type: ignore[attr-defined]
        query = select(func.count()).where(deliveries.c.status == "errored")
        return int(conn.execute(query).scalar_one())


async def test_a_scrape_counts_what_the_channel_answered_and_what_waits(
    make_app: Callable[..., AppConfig], store_url: str
) -> None:
    app, mllp, metrics = deployment(make_app, store_url)
    async with running(app) as rt:
        assert rt.services is not None
        payloads = [hl7_message(f"M{i}").encode() for i in range(3)]
        payloads.append(hl7_message("M-A08", event="A08").encode())  # filtered
        payloads.append(hl7_message("").encode())  # no MSH-10: rejected, stored as errored
        answers = await hl7_send(mllp, *payloads)
        assert [a.split(b"MSA|")[1][:2] for a in answers] == [b"AA", b"AA", b"AA", b"AA", b"AR"]
        db = rt.services.db
        await until(lambda: dead_letters(db) == 3)  # the ``dead`` destination gave up at once
        await until(lambda: all(q.sent == 3 for q in rt.queues if q.destination_id == "out"))

        response, types, samples = await scrape(metrics)

        assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
        stats = queries.stats(db)["adt"]  # what hie stats says, from the store
        assert value(samples, "hie_messages_received_total", channel="adt") == stats["received"] == 5
        assert value(samples, "hie_messages_filtered_total", channel="adt") == stats["filtered"] == 1
        assert value(samples, "hie_messages_errored_total", channel="adt") == stats["errored_messages"] == 1
        assert value(samples, "hie_messages_received_total", channel="metrics") == 0

        # queue depths and dead letters per destination, as the store has them
        expected = {
            ("out", "queued"): 0,
            ("down", "queued"): 3,
            ("dead", "errored"): 3,
            ("dead", "queued"): 0,
        }
        for (dest, status), n in expected.items():
            assert value(samples, "hie_deliveries", channel="adt", destination=dest, status=status) == n
        with db.connect() as conn:
            depth = conn.execute(
                select(func.count()).where(
                    deliveries.c.destination == "down", deliveries.c.status == "queued"
                )
            ).scalar_one()
        assert value(samples, "hie_queue_depth", channel="adt", destination="down") == depth == 3
        assert value(samples, "hie_queue_depth", channel="adt", destination="out") == 0
        attempts = "hie_delivery_attempts_total"
        assert value(samples, attempts, channel="adt", destination="out", outcome="sent") == 3
        assert value(samples, attempts, channel="adt", destination="dead", outcome="failed") == 3

        # the answer latency: one observation per message answered, cumulative buckets up to +Inf
        assert types["hie_answer_seconds"] == "histogram"
        buckets = [
            (float(ls["le"]), v) for ls, v in samples["hie_answer_seconds_bucket"] if ls["channel"] == "adt"
        ]
        assert [le for le, _ in buckets] == sorted(le for le, _ in buckets) and buckets[-1][0] == float("inf")
        assert [v for _, v in buckets] == sorted(v for _, v in buckets)
        assert buckets[-1][1] == value(samples, "hie_answer_seconds_count", channel="adt") == 5
        assert 0 < value(samples, "hie_answer_seconds_sum", channel="adt") < 30

        assert value(samples, "hie_source_up", channel="adt", scheme="mllp") == 1
        assert value(samples, "hie_source_up", channel="metrics", scheme="metrics") == 1
        assert value(samples, "hie_store_up") == 1
        assert value(samples, "hie_store_commits_total") >= 1
        assert value(samples, "hie_store_rows_written_total") >= 5
        assert value(samples, "process_resident_memory_bytes") > 1_000_000
        assert value(samples, "process_cpu_seconds_total") > 0
        assert types["hie_deliveries"] == "gauge" and types["hie_messages_received_total"] == "counter"
        assert "王" not in response.text and "100001" not in response.text  # no patient data

        # counters only grow: a second scrape after one more message
        await hl7_send(mllp, hl7_message("M9").encode())
        _, _, again = await scrape(metrics)
        assert value(again, "hie_messages_received_total", channel="adt") == 6
        assert value(again, "hie_queue_depth", channel="adt", destination="down") == 4


async def test_a_stopped_listener_shows_as_down_until_it_listens_again(
    make_app: Callable[..., AppConfig], tmp_path: Path
) -> None:
    app, _, metrics = deployment(make_app, f"sqlite:///{tmp_path / 'store.db'}")
    async with running(app) as rt:
        source = rt.sources["adt"]
        await source.stop()
        _, _, samples = await scrape(metrics)
        assert value(samples, "hie_source_up", channel="adt", scheme="mllp") == 0
        await source.start()
        _, _, samples = await scrape(metrics)
        assert value(samples, "hie_source_up", channel="adt", scheme="mllp") == 1


async def test_an_engine_that_keeps_its_heap_shows_the_collectors_pauses(
    make_app: Callable[..., AppConfig], tmp_path: Path
) -> None:
    """``hie run`` freezes the heap it started with (``engine.heap``): the scrape shows how many
    objects the collector's passes skip and how long each generation's collections stopped the
    process; stopping gives the objects back."""
    app, _, metrics = deployment(make_app, f"sqlite:///{tmp_path / 'store.db'}")
    rt = Runtime(app, keep_heap=True)
    await rt.start()
    try:
        gc.collect()  # at least one full pass after the freeze
        _, types, samples = await scrape(metrics)
    finally:
        await rt.stop()
    assert gc.get_freeze_count() == 0
    assert value(samples, "hie_gc_frozen_objects") > 10_000  # modules, channels, compiled statements
    assert types["hie_gc_pause_seconds"] == "histogram"
    assert types["python_gc_collections_total"] == "counter"
    for g in ("0", "1", "2"):
        count = value(samples, "hie_gc_pause_seconds_count", generation=g)
        assert count == value(samples, "python_gc_collections_total", generation=g)
        infinite = [
            v for ls, v in samples["hie_gc_pause_seconds_bucket"] if ls == {"generation": g, "le": "+Inf"}
        ]
        assert infinite == [count]
    assert value(samples, "python_gc_collections_total", generation="2") >= 2  # the settle, and ours
    assert value(samples, "hie_gc_pause_seconds_sum", generation="2") > 0


async def test_only_get_is_answered(make_app: Callable[..., AppConfig], tmp_path: Path) -> None:
    app, _, metrics = deployment(make_app, f"sqlite:///{tmp_path / 'store.db'}")
    async with running(app), httpx.AsyncClient(timeout=10) as client:
        assert (await client.post(f"http://127.0.0.1:{metrics}/metrics", content=b"x")).status_code == 405
        assert (await client.get(f"http://127.0.0.1:{metrics}/other")).status_code == 404
        head = await client.head(f"http://127.0.0.1:{metrics}/metrics")
        assert head.status_code == 200 and head.headers["content-type"].startswith(
            "text/plain; version=0.0.4"
        )


def test_label_values_are_escaped() -> None:
    out = Exposition()
    out.family("hie_x", "gauge", "A test family.", [({"channel": 'a"b\\c\nd'}, 1.5), ({}, float("inf"))])
    text = out.text()
    assert 'hie_x{channel="a\\"b\\\\c\\nd"} 1.5\n' in text and "hie_x +Inf\n" in text
    _, samples = parse(text)
    assert samples["hie_x"][0] == ({"channel": 'a"b\\c\nd'}, 1.5)


def test_the_sample_channel_loads() -> None:
    app = load_config(ROOT / "config.yaml")
    (channel,) = [c for c in app.channels if c.id == "metrics"]
    assert channel.source.url == "metrics://127.0.0.1:9464/metrics" and channel.destinations == []


def test_hie_check_wants_a_host_and_port(make_app: Callable[..., AppConfig]) -> None:
    with pytest.raises(ConfigError) as caught:
        make_app({"metrics": "id: metrics\nsource: {url: 'metrics://127.0.0.1/metrics'}\n"})
    (problem,) = caught.value.problems
    assert problem.file.endswith("metrics.yaml") and problem.line == 2 and problem.field == "source.url"
    assert "needs a host and a port" in problem.message
