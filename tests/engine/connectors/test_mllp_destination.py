"""MLLP destination against a fake downstream and against a second channel: ACK rules and retries.

AA: sent, the answer kept. AE: dead letter at once (a content error no retry fixes). AR, a wrong
MSA-2, no answer, no connection: retried with backoff, dead-lettered after ``max_attempts``.
``ack: after_delivery`` relays the downstream's own answer to the sender.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from engine.config import AppConfig
from engine.connectors import memory
from engine.store.schema import attempts, deliveries, messages
from tests.conftest import free_port, hl7_message, running, sample
from tests.engine.connectors.mllp_peers import (
    Answer,
    Downstream,
    ack_of,
    channel,
    downstream_ack,
    hl7_send_one,
    msh10,
    port_refusing,
    rows,
    unframe,
    until,
)

MakeApp = Callable[..., AppConfig]


def forwarding(port: int, downstream_port: int, dest: str = "", more: str = "") -> str:
    """A channel that forwards what it gets over MLLP to ``downstream_port``; ``dest`` adds options."""
    defaults = [
        o
        for o in ("ack_timeout: 2", "retry: {max_attempts: 3, backoff: 0.05}")
        if o.split(":")[0] not in dest
    ]
    options = ", ".join([*defaults, dest] if dest else defaults)
    url = f"mllp://127.0.0.1:{downstream_port}"
    return channel(port, cid="fwd", more=more, dests=f"  - {{id: lab, url: '{url}', {options}}}")


async def settled(rt: Any) -> dict[str, Any]:
    """The forwarding channel's one delivery, once it is sent or dead-lettered."""
    found: list[dict[str, Any]] = await until(
        lambda: [
            d
            for d in rows(rt, deliveries, deliveries.c.channel_id == "fwd")
            if d["status"] in ("sent", "errored")
        ]
    )
    assert len(found) == 1
    return found[0]


def tries(rt: Any, delivery_id: int) -> list[dict[str, Any]]:
    return sorted(rows(rt, attempts, attempts.c.delivery_id == delivery_id), key=lambda a: a["attempt"])


Settled = tuple[dict[str, Any], list[dict[str, Any]], Downstream]


async def forward_one(
    make_app: MakeApp, answer: Answer, payload: bytes, *, dest: str = "", store_url: str | None = None
) -> Settled:
    """Send ``payload`` to a forwarding channel whose downstream answers with ``answer``."""
    port = free_port()
    async with (
        Downstream(answer) as lab,
        running(make_app({"fwd": forwarding(port, lab.port, dest)}, store_url=store_url)) as rt,
    ):
        assert ack_of(await hl7_send_one(port, payload))["MSA"][1] == "AA"  # stored: AA whatever comes next
        d = await settled(rt)
        await asyncio.sleep(0.2)  # a retry that should not happen would show up now (backoff is 0.05 s)
        d = next(r for r in rows(rt, deliveries) if r["id"] == d["id"])
        return d, tries(rt, d["id"]), lab


async def test_downstream_aa_marks_the_delivery_sent_and_keeps_the_answer(
    make_app: MakeApp, store_url: str
) -> None:
    payload = hl7_message("AA-1").encode()
    d, log, lab = await forward_one(
        make_app, lambda p, _: downstream_ack(p, "AA"), payload, store_url=store_url
    )
    assert d["status"] == "sent" and d["attempts"] == 1 and d["last_error"] is None
    assert d["response"] == downstream_ack(payload, "AA") and d["sent"] is None  # None: the bytes received
    assert [a["outcome"] for a in log] == ["sent"]
    assert lab.received == [payload]


async def test_downstream_ae_is_a_dead_letter_without_retry(make_app: MakeApp) -> None:
    payload = hl7_message("AE-1").encode()

    def answer(p: bytes, _: int) -> bytes:
        return downstream_ack(p, "AE", text="unknown patient")

    d, log, lab = await forward_one(make_app, answer, payload)
    assert d["status"] == "errored" and d["attempts"] == 1
    assert f"AE from 127.0.0.1:{lab.port}" in d["last_error"] and "unknown patient" in d["last_error"]
    assert [a["outcome"] for a in log] == ["refused"]
    assert lab.received == [payload]


async def test_downstream_ar_is_retried_then_dead_lettered(make_app: MakeApp) -> None:
    payload = hl7_message("AR-1").encode()
    d, log, lab = await forward_one(make_app, lambda p, _: downstream_ack(p, "AR", text="busy"), payload)
    assert d["status"] == "errored" and d["attempts"] == 3 and "AR from" in d["last_error"]
    assert [(a["attempt"], a["outcome"]) for a in log] == [(1, "failed"), (2, "failed"), (3, "failed")]
    assert all("busy" in a["error"] for a in log)
    assert lab.received == [payload] * 3


async def test_answer_naming_another_message_is_retried(make_app: MakeApp) -> None:
    def answer(payload: bytes, index: int) -> bytes:
        return downstream_ack(payload, "AA", control="WRONG-9" if index == 0 else None)

    payload = hl7_message("MSA2-1").encode()
    d, log, lab = await forward_one(make_app, answer, payload)
    assert d["status"] == "sent" and d["attempts"] == 2
    assert [a["outcome"] for a in log] == ["failed", "sent"]
    assert "'WRONG-9'" in log[0]["error"] and "'MSA2-1'" in log[0]["error"]
    assert len(lab.received) == 2


async def test_no_answer_within_ack_timeout_is_retried(make_app: MakeApp) -> None:
    def answer(payload: bytes, index: int) -> bytes | None:
        return None if index == 0 else downstream_ack(payload, "AA")

    payload = hl7_message("SILENT-1").encode()
    d, log, lab = await forward_one(make_app, answer, payload, dest="ack_timeout: 0.3")
    assert d["status"] == "sent" and d["attempts"] == 2
    assert [a["outcome"] for a in log] == ["failed", "sent"]
    assert "no answer" in log[0]["error"] and "0.3 s" in log[0]["error"]
    assert lab.connections == 2  # the silent connection was dropped, not reused for the retry


async def test_downstream_down_then_up_is_delivered(make_app: MakeApp) -> None:
    port, lab_port = free_port(), port_refusing()
    payload = hl7_message("DOWN-1").encode()
    retry = "retry: {max_attempts: 100, backoff: 0.05, max_backoff: 0.1}"
    async with running(make_app({"fwd": forwarding(port, lab_port, retry)})) as rt:
        assert ack_of(await hl7_send_one(port, payload))["MSA"][1] == "AA"
        await until(lambda: any(a["outcome"] == "failed" for a in rows(rt, attempts)))
        async with Downstream(lambda p, _: downstream_ack(p, "AA"), port=lab_port) as lab:
            d = await settled(rt)
            assert d["status"] == "sent" and lab.received == [payload]
        log = tries(rt, d["id"])
        assert log[-1]["outcome"] == "sent"
        assert log[0]["outcome"] == "failed" and "cannot connect" in log[0]["error"]


async def test_chained_channels_deliver_byte_identical_and_keep_the_acks(
    make_app: MakeApp, store_url: str
) -> None:
    front, back = free_port(), free_port()
    payload = sample("adt_a04_gb18030.hl7")
    app = make_app({"fwd": forwarding(front, back), "back": channel(back, cid="back")}, store_url=store_url)
    async with running(app) as rt:
        assert ack_of(await hl7_send_one(front, payload), "gb18030")["MSA"][1:3] == ["AA", "MSG-A-0002"]
        d = await settled(rt)
        await until(lambda: memory.SINKS.get("back-out"))
        assert d["status"] == "sent"
        answer = ack_of(d["response"], "gb18030")  # the second channel's ACK, kept with the delivery
        assert answer["MSA"][1:3] == ["AA", "MSG-A-0002"] and answer["MSH"][17] == "GB 18030-2000"
        raws = {r["channel_id"]: r["raw"] for r in rows(rt, messages)}
        assert raws == {"fwd": payload, "back": payload}
    assert memory.SINKS["back-out"] == [payload]


# -- 14. after_delivery --------------------------------------------------------------------------------
AFTER = "ack: after_delivery\nack_from: lab\n"


async def test_after_delivery_relays_the_downstream_answer_bytes(make_app: MakeApp) -> None:
    def rsp(payload: bytes, _: int) -> bytes:
        return (
            f"MSH|^~\\&|EMPI|CITY|HIS|HOSP_A|20261122083002||RSP^K22^RSP_K21|R-1|P|2.5\r"
            f"MSA|AA|{msh10(payload)}\rQAK|Q-1|OK\rPID|1||MARKER-777^^^CITY^PI\r"
        ).encode()

    port = free_port()
    payload = hl7_message("QRY-1").encode()
    async with (
        Downstream(rsp) as lab,
        running(make_app({"fwd": forwarding(port, lab.port, more=AFTER)})) as rt,
    ):
        answer = await hl7_send_one(port, payload)
        assert unframe(answer) == rsp(payload, 0)  # the downstream's own bytes, not an ACK of ours
        d = await settled(rt)
        assert d["status"] == "sent" and d["response"] == rsp(payload, 0)
        assert lab.received == [payload]


async def test_after_delivery_with_downstream_down_answers_ae_naming_it(make_app: MakeApp) -> None:
    port = free_port()
    payload = hl7_message("QRY-2").encode()
    async with running(make_app({"fwd": forwarding(port, port_refusing(), more=AFTER)})) as rt:
        ack = ack_of(await hl7_send_one(port, payload))
        assert ack["MSA"][1:3] == ["AE", "QRY-2"] and ack["ERR"][3].split("^")[0] == "207"
        assert "destination lab" in ack["ERR"][8] and "cannot connect" in ack["ERR"][8]
        d = await settled(rt)
        await asyncio.sleep(0.2)
        assert rows(rt, deliveries)[0]["status"] == "errored"
        assert [a["outcome"] for a in tries(rt, d["id"])] == ["failed"]  # the sender retries, not us
        (row,) = rows(rt, messages)
        assert row["raw"] == payload
