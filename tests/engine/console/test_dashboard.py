"""``GET /api/v1/dashboard`` over real HTTP against a running engine, on SQLite and PostgreSQL: what a
user sees after real MLLP traffic (received, filtered, errored, sent, a queue that does not drain, a
dead letter), the hourly series, the last hour's errors without patient data, every role allowed and
the viewer kept from reprocessing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta

from sqlalchemy import select

from engine.config import AppConfig
from engine.console import accounts
from engine.store.db import utcnow
from engine.store.schema import deliveries, messages
from tests.conftest import free_port, hl7_message, running
from tests.engine.connectors.mllp_peers import hl7_send
from tests.engine.console.test_api import ROLES, Deployment


@asynccontextmanager
async def busy_deployment(make_app: Callable[..., AppConfig], store_url: str) -> AsyncIterator[Deployment]:
    """Like ``test_api.deployment``, with what a dashboard is for: a channel that filters ADT^A08 and
    has a downstream that stays down (its queue grows), one whose downstream refuses everything
    (dead letters), and a disabled channel."""
    adt_port, lab_port, old_port, port = free_port(), free_port(), free_port(), free_port()
    adt = (
        f"id: adt\nsource: {{url: 'mllp://127.0.0.1:{adt_port}'}}\n"
        "steps:\n  - filter: {message_type: [ADT^A08], exclude: true}\n"
        "destinations:\n"
        "  - {id: out, url: 'memory://dash-out'}\n"
        "  - {id: stuck, url: 'memory://dash-stuck', fail_times: 1000000,"
        " retry: {max_attempts: 1000, backoff: 3600, max_backoff: 3600}}\n"
    )
    lab = (
        f"id: lab\nsource: {{url: 'mllp://127.0.0.1:{lab_port}'}}\n"
        "destinations:\n  - {id: lis, url: 'memory://dash-lis', refuse: true}\n"
    )
    old = f"id: old\nenabled: false\nsource: {{url: 'mllp://127.0.0.1:{old_port}'}}\n"
    console = f"id: console\nsource: {{url: 'console://127.0.0.1:{port}'}}\n"
    app = make_app({"adt": adt, "lab": lab, "old": old, "console": console}, store_url=store_url)
    async with running(app) as rt:
        assert rt.services is not None
        db, ids = rt.services.db, rt.services.ids
        issued, token_ids = {}, {}
        for role in ROLES:
            accounts.add_user(db, ids, username=role, password="correct horse battery", role=role, actor="t")
            token_ids[role], issued[role] = accounts.issue_token(db, ids, username=role, days=1, actor="t")
        await hl7_send(
            adt_port,
            hl7_message("CTL-1", patient="P-1").encode(),
            hl7_message("CTL-2", event="A08", patient="P-2").encode(),  # filtered
            hl7_message("", patient="P-SECRET-9").encode(),  # no control id: refused, stored as errored
        )
        await hl7_send(lab_port, hl7_message("LAB-1", patient="P-3").encode())  # its delivery is refused
        yield Deployment(rt, db, f"http://127.0.0.1:{port}", issued, token_ids, [])


async def _settled(d: Deployment) -> None:
    """Until the engine has done what it will do: CTL-1 sent to out, LAB-1's delivery dead-lettered."""
    for _ in range(200):
        with d.db.connect() as conn:
            states = {(r.destination, r.status) for r in conn.execute(select(deliveries))}
        if {("out", "sent"), ("lis", "errored"), ("stuck", "queued")} <= states:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"deliveries did not settle: {states}")


def _message_id(d: Deployment, control_id: str, channel: str) -> int:
    with d.db.connect() as conn:
        return int(
            conn.execute(
                select(messages.c.id).where(
                    messages.c.control_id == control_id, messages.c.channel_id == channel
                )
            ).scalar_one()
        )


async def test_the_dashboard_counts_what_the_channels_did(
    make_app: Callable[..., AppConfig], store_url: str
) -> None:
    async with busy_deployment(make_app, store_url) as d:
        await _settled(d)
        async with d.client("viewer") as c:
            r = await c.get("/api/v1/dashboard")
        assert r.status_code == 200, r.text
        board = r.json()
        refused_id, lab_id = _message_id(d, "", "adt"), _message_id(d, "LAB-1", "lab")

    assert board["hours"] == 24 and board["bucket_seconds"] == 3600
    generated = datetime.fromisoformat(board["generated_at"])
    assert abs(generated - utcnow()) < timedelta(minutes=5)
    rows = {ch["id"]: ch for ch in board["channels"]}
    assert list(rows) == ["adt", "console", "lab", "old"]
    assert rows["adt"] == {
        "id": "adt",
        "listening": True,
        "received": 3,
        "filtered": 1,
        "queued": 1,  # CTL-1 waits for the destination that stays down
        "sent": 1,
        "errored": 1,  # the message without a control id
    }
    assert rows["lab"] == {
        "id": "lab",
        "listening": True,
        "received": 1,
        "filtered": 0,
        "queued": 0,
        "sent": 0,
        "errored": 1,  # its only delivery is a dead letter
    }
    assert rows["old"]["listening"] is None and rows["old"]["received"] == 0  # disabled: not run
    assert rows["console"]["listening"] is True
    assert board["total"] == {"received": 4, "filtered": 1, "queued": 1, "sent": 1, "errored": 2}

    series = board["series"]
    start = datetime.fromisoformat(series["start"])
    assert series["buckets"] == 24 and start.minute == 0 and start.second == 0
    assert start <= generated < start + timedelta(hours=24)
    for cid, row in rows.items():
        hourly = series["channels"][cid]
        assert len(hourly["received"]) == len(hourly["errored"]) == 24
        assert sum(hourly["received"]) == row["received"] and sum(hourly["errored"]) == row["errored"]
    # everything was received within the last two hours (the current one, or the one before)
    assert sum(series["channels"]["adt"]["received"][-2:]) == 3

    (queue,) = board["queues"]
    assert queue["channel_id"] == "adt" and queue["destination"] == "stuck" and queue["queued"] == 1
    assert abs(datetime.fromisoformat(queue["oldest_at"]) - generated) < timedelta(minutes=5)

    errors = board["errors_last_hour"]
    assert errors["count"] == 2
    assert [e["id"] for e in errors["recent"]] == [str(lab_id), str(refused_id)]  # newest first
    for e in errors["recent"]:
        assert set(e) == {"id", "channel_id", "received_at", "message_type", "error"}
        assert e["message_type"] == "ADT^A01" and e["error"]
    assert "P-SECRET-9" not in json.dumps(board) and "王" not in json.dumps(board, ensure_ascii=False)


async def test_every_role_sees_the_dashboard_and_a_viewer_cannot_reprocess(
    make_app: Callable[..., AppConfig], store_url: str
) -> None:
    async with busy_deployment(make_app, store_url) as d:
        for role in ROLES:
            async with d.client(role) as c:
                r = await c.get("/api/v1/dashboard", params={"hours": 1})
            assert r.status_code == 200, (role, r.text)
            assert r.json()["hours"] == 1 and r.json()["series"]["buckets"] == 1
        async with d.client("viewer") as c:
            r = await c.post("/api/v1/reprocess", json={"filter": {"channel": "adt"}})
            assert r.status_code == 403 and r.json()["required_roles"] == ["admin", "integrator"]
            assert (await c.get("/api/v1/messages")).status_code == 403
            for bad in ("0", "169", "a day", "-1"):
                r = await c.get("/api/v1/dashboard", params={"hours": bad})
                assert r.status_code == 400 and "hours" in r.json()["error"], bad
            week = (await c.get("/api/v1/dashboard", params={"hours": 168})).json()
        assert week["series"]["buckets"] == 168 and len(week["series"]["channels"]["adt"]["received"]) == 168
        assert {ch["id"]: ch["received"] for ch in week["channels"]}["adt"] == 3
        async with d.client() as anonymous:
            assert (await anonymous.get("/api/v1/dashboard")).status_code == 401
        with d.db.connect() as conn:
            copies = conn.execute(select(messages.c.id).where(messages.c.reprocessed_from.is_not(None))).all()
        assert copies == []
