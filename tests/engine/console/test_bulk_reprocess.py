"""``POST /api/v1/reprocess`` over real HTTP against a running engine, on SQLite and PostgreSQL: every
message of a patient reprocessed to one chosen destination, delivered there only and audited one by
one; an empty or malformed request refused with nothing written; the limit; pruned messages skipped;
the roles that may; the CSRF token a cookie session must send."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select, update

from engine import runtime
from engine.config import AppConfig
from engine.connectors.memory import SINKS
from engine.store.schema import messages
from tests.conftest import hl7_message
from tests.engine.connectors.mllp_peers import hl7_send, msh10
from tests.engine.console.test_api import PASSWORD, Deployment, deployment


@pytest.fixture(autouse=True)
def _quick_takeover(monkeypatch: pytest.MonkeyPatch) -> None:
    # reprocessed copies are queued without an owner; the engine's recovery pass (every 10 s in
    # production) takes them over and delivers them
    monkeypatch.setattr(runtime, "HEARTBEAT_SECONDS", 0.5)


def _count(d: Deployment) -> int:
    with d.db.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(messages)).scalar_one())


async def _delivered(sink: str, wanted: int) -> list[bytes]:
    for _ in range(400):
        got = SINKS.get(sink, [])
        if len(got) >= wanted:
            return got
        await asyncio.sleep(0.05)
    raise AssertionError(f"{sink} has {len(SINKS.get(sink, []))} message(s), not {wanted}")


async def _mllp_port(d: Deployment) -> int:
    source = d.rt.sources["adt"]
    port = source.url.port
    assert port is not None
    return port


async def test_a_patients_messages_are_reprocessed_to_the_chosen_destination_only_and_audited(
    make_app: Callable[..., AppConfig], store_url: str
) -> None:
    SINKS.clear()
    async with deployment(make_app, store_url) as d:
        await hl7_send(await _mllp_port(d), hl7_message("CTL-3", patient="P-1").encode())
        await _delivered("console-copy", 3)
        await _delivered("console-out", 3)  # both queues drained before counting what comes next
        before_out = len(SINKS["console-out"])
        async with d.client("integrator") as c:
            r = await c.post(
                "/api/v1/reprocess", json={"filter": {"patient_id": "P-1"}, "destinations": ["copy"]}
            )
            assert r.status_code == 201, r.text
            result = r.json()
            assert result["matched"] == 2 and result["limit_reached"] is False and result["skipped"] == []
            with d.db.connect() as conn:
                p1 = [
                    str(i)
                    for i in conn.execute(
                        select(messages.c.id).where(
                            messages.c.control_id.in_(["CTL-1", "CTL-3"]),
                            messages.c.reprocessed_from.is_(None),
                        )
                    ).scalars()
                ]
            assert sorted(x["original"] for x in result["reprocessed"]) == sorted(p1)
            assert all(x["queued"] == ["copy"] for x in result["reprocessed"])
            copies = [x["message_id"] for x in result["reprocessed"]]

            # the copies reach the chosen destination, and only it
            sent = await _delivered("console-copy", 5)
            assert sorted(msh10(p) for p in sent[3:]) == ["CTL-1", "CTL-3"]
            assert len(SINKS["console-out"]) == before_out
            for copy in copies:
                body = (await c.get(f"/api/v1/messages/{copy}")).json()
                assert body["reprocessed_from"] in p1
                assert {x["destination"]: x["status"] for x in body["deliveries"]} == {
                    "out": "filtered",
                    "copy": "sent",
                }
        # each message is audited as a single reprocess is: 110106 Export, action E, the user, the patient
        exports = [a for a in d.audit("110106") if a["action"] == "E"]
        assert sorted(str(a["message_id"]) for a in exports) == sorted(p1)
        for a in exports:
            assert a["user_id"] == "integrator" and "P-1" in str(a["patient_ids"])
            assert '"network_access_point": "127.0.0.1"' in str(a["participants"])
        assert "P-2" not in str([a["patient_ids"] for a in exports])


async def test_an_empty_or_malformed_request_is_refused_and_nothing_is_written(
    make_app: Callable[..., AppConfig], store_url: str
) -> None:
    async with deployment(make_app, store_url) as d:
        stored = _count(d)
        refused: list[Any] = [
            {"filter": {}},
            {"filter": {"channel": "", "patient_id": None}},
            {},
            {"destinations": ["copy"]},
            {"filter": {"nosuch": "x"}},
            {"filter": {"channel": 7}},
            {"filter": "channel=adt"},
            {"filter": {"status": "bogus"}},
            {"filter": {"since": "<script>"}},
            {"filter": {"channel": "adt"}, "limit": 0},
            {"filter": {"channel": "adt"}, "limit": 1001},
            {"filter": {"channel": "adt"}, "limit": "10"},
            {"filter": {"channel": "adt"}, "destinations": "copy"},
            {"filter": {"channel": "adt"}, "destinations": ["nowhere"]},
            {"filter": {"channel": "adt"}, "everything": True},
            [],
        ]
        async with d.client("admin") as c:
            for body in refused:
                r = await c.post("/api/v1/reprocess", json=body)
                assert r.status_code == 400, (body, r.text)
                assert r.headers["content-type"] == "application/json" and "<script>" not in r.text
            r = await c.post("/api/v1/reprocess", json={"filter": {}})
            assert "at least one filter" in r.json()["error"]
            r = await c.post(
                "/api/v1/reprocess", json={"filter": {"channel": "adt"}, "destinations": ["nowhere"]}
            )
            assert r.json()["destinations"] == ["out", "copy"]
            r = await c.post("/api/v1/reprocess", content=b"{not json")
            assert r.status_code == 400
            # a filter that matches nothing is no error: nothing to do
            r = await c.post("/api/v1/reprocess", json={"filter": {"patient_id": "NOBODY"}})
            assert r.status_code == 201 and r.json() == {
                "matched": 0,
                "limit_reached": False,
                "reprocessed": [],
                "skipped": [],
            }
        assert _count(d) == stored
        assert [a for a in d.audit("110106") if a["action"] == "E"] == []


async def test_the_limit_takes_the_newest_and_pruned_messages_are_skipped(
    make_app: Callable[..., AppConfig], store_url: str
) -> None:
    async with deployment(make_app, store_url) as d:
        first, second = d.message_ids
        async with d.client("admin") as c:
            r = await c.post("/api/v1/reprocess", json={"filter": {"channel": "adt"}, "limit": 1})
            assert r.status_code == 201, r.text
            result = r.json()
            assert result["matched"] == 1 and result["limit_reached"] is True
            assert [x["original"] for x in result["reprocessed"]] == [str(second)]

            with d.db.begin() as conn:
                conn.execute(update(messages).where(messages.c.id == first).values(raw=None, content=None))
            r = await c.post("/api/v1/reprocess", json={"filter": {"control_id": "CTL-1"}})
            assert r.status_code == 201, r.text
            assert r.json()["reprocessed"] == []
            assert r.json()["skipped"] == [
                {"id": str(first), "reason": "the raw bytes were pruned by retention"}
            ]

            # a message of a channel no longer configured here: refused, as the CLI refuses it
            with d.db.begin() as conn:
                conn.execute(update(messages).where(messages.c.id == first).values(channel_id="retired"))
            r = await c.post("/api/v1/reprocess", json={"filter": {"since": "1d"}})
            assert r.status_code == 409 and "retired" in r.json()["error"]
        with d.db.connect() as conn:
            copies = conn.execute(
                select(messages.c.reprocessed_from).where(messages.c.reprocessed_from.is_not(None))
            )
            assert [int(x) for x in copies.scalars()] == [second]


async def test_only_admin_and_integrator_may_and_a_cookie_session_must_send_its_csrf_token(
    make_app: Callable[..., AppConfig], store_url: str
) -> None:
    async with deployment(make_app, store_url) as d:
        body = {"filter": {"control_id": "CTL-2"}, "destinations": ["copy"]}
        for role in ("auditor", "viewer"):
            async with d.client(role) as c:
                r = await c.post("/api/v1/reprocess", json=body)
            assert r.status_code == 403 and r.json()["required_roles"] == ["admin", "integrator"]
        async with d.client() as c:
            assert (await c.post("/api/v1/reprocess", json=body)).status_code == 401
            login = (
                await c.post("/api/v1/session", json={"username": "integrator", "password": PASSWORD})
            ).json()
            r = await c.post("/api/v1/reprocess", json=body)
            assert r.status_code == 403 and "X-CSRF-Token" in r.json()["error"]
            r = await c.post("/api/v1/reprocess", json=body, headers={"X-CSRF-Token": "forged"})
            assert r.status_code == 403
            assert _count(d) == 2
            r = await c.post("/api/v1/reprocess", json=body, headers={"X-CSRF-Token": login["csrf_token"]})
            assert r.status_code == 201, r.text
            assert [x["original"] for x in r.json()["reprocessed"]] == [str(d.message_ids[1])]
        assert _count(d) == 3
        alerts = [a for a in d.audit("110113") if a["user_id"] == "integrator"]
        assert len(alerts) == 2 and all("CSRF" in str(a["outcome_description"]) for a in alerts)
