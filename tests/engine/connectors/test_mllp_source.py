"""MLLP source against real senders: ACKs, charsets, broken frames, limits, floods, pipelining.

Every case checks what the sender sees (the ACK fields, the connection state) and what the store
kept: a bad input is always an errored record with the bytes that were received.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.exceptions import ValidationError
from hl7apy.parser import parse_message

from engine.config import AppConfig
from engine.connectors import memory
from engine.connectors.mllp import MllpSource
from engine.message import Message
from engine.steps.base import StepResult
from engine.steps.filter import FilterStep
from engine.store.schema import deliveries, messages
from tests.conftest import free_port, hl7_message, running, sample
from tests.engine.connectors.mllp_peers import (
    END,
    SB,
    Peer,
    ack_of,
    channel,
    frame,
    hl7_send,
    hl7_send_one,
    rows,
    unframe,
    until,
)

MakeApp = Callable[..., AppConfig]


def adt(control_id: str, *, facility: str = "HOSP_A", charset: str = "UNICODE UTF-8") -> str:
    """A synthetic ADT^A01 whose MSH-4 (sending facility) can be non-ASCII."""
    return hl7_message(control_id, charset=charset).replace("|HIS|HOSP_A|", f"|HIS|{facility}|", 1)


def strict(text: str) -> None:
    """hl7apy's strict parse and validation of an answer; raises on any non-conformance."""
    parse_message(text, validation_level=VALIDATION_LEVEL.STRICT).validate()


def stored(rt: Any) -> list[dict[str, Any]]:
    return rows(rt, messages)


async def errored(rt: Any, count: int = 1) -> list[dict[str, Any]]:
    """Wait for ``count`` errored records (unframed bytes are kept by a task of their own)."""
    return list(
        await until(
            lambda: (
                (found := [r for r in stored(rt) if r["status"] == "errored"])
                and len(found) >= count
                and found
            )
        )
    )


# -- 1. happy path ------------------------------------------------------------------------------------
async def test_aa_names_the_message_and_the_bytes_are_kept_and_delivered_unchanged(
    make_app: MakeApp, store_url: str
) -> None:
    port = free_port()
    payload = sample("adt_a01_utf8.hl7")
    async with running(make_app({"adt": channel(port)}, store_url=store_url)) as rt:
        answer = await hl7_send_one(port, payload)
        ack = ack_of(answer)
        assert ack["MSA"][1:3] == ["AA", "MSG-A-0001"]
        msh = ack["MSH"]
        assert msh[2:6] == ["HIE", "CITY_HIE", "HIS", "HOSP_A"]  # MSH-3..6: us, then the sender's MSH-3/4
        assert msh[8] == "ACK^A01^ACK" and msh[11] == "2.5" and msh[17] == "UNICODE UTF-8"
        assert "ERR" not in ack
        strict(unframe(answer).decode())

        (row,) = stored(rt)
        assert row["status"] == "received" and row["raw"] == payload
        assert (row["control_id"], row["message_type"], row["charset"]) == ("MSG-A-0001", "ADT^A01", "utf-8")
        assert row["peer"].startswith("127.0.0.1:")
        await until(lambda: memory.SINKS.get("adt-out"))
        (d,) = await until(lambda: [d for d in rows(rt, deliveries) if d["status"] == "sent"])
        assert d["message_id"] == row["id"] and d["attempts"] == 1
    assert memory.SINKS["adt-out"] == [payload]


async def test_gb18030_message_is_answered_in_gb18030(make_app: MakeApp, store_url: str) -> None:
    port = free_port()
    payload = adt("GB-1", facility="第一医院", charset="GB 18030-2000").encode("gb18030")
    received = sample("adt_a04_gb18030.hl7")
    async with running(make_app({"adt": channel(port)}, store_url=store_url)) as rt:
        answer, answer2 = await hl7_send(port, payload, received)
        body = unframe(answer)
        with pytest.raises(UnicodeDecodeError):
            body.decode("utf-8")  # not UTF-8: the sender's own charset
        ack = ack_of(answer, "gb18030")
        assert ack["MSA"][1:3] == ["AA", "GB-1"]
        assert ack["MSH"][5] == "第一医院" and ack["MSH"][17] == "GB 18030-2000"
        strict(body.decode("gb18030"))
        assert ack_of(answer2, "gb18030")["MSA"][1:3] == ["AA", "MSG-A-0002"]

        by_control = {r["control_id"]: r for r in stored(rt)}
        assert by_control["GB-1"]["raw"] == payload and by_control["GB-1"]["charset"] == "gb18030"
        assert by_control["MSG-A-0002"]["raw"] == received
        assert by_control["GB-1"]["sending_facility"] == "第一医院"
        await until(lambda: len(memory.SINKS.get("adt-out", [])) == 2)
    assert memory.SINKS["adt-out"] == [payload, received]  # byte for byte, not re-encoded


async def test_gbk_without_msh18_is_read_and_answered_in_the_channel_default(make_app: MakeApp) -> None:
    port = free_port()
    payload = adt("GBK-1", facility="第一医院", charset="").encode("gbk")
    async with running(make_app({"adt": channel(port)})) as rt:
        answer = await hl7_send_one(port, payload)
        ack = ack_of(answer, "gb18030")
        assert ack["MSA"][1:3] == ["AA", "GBK-1"]
        assert ack["MSH"][5] == "第一医院"
        assert len(ack["MSH"]) < 18 or ack["MSH"][17] == ""  # no MSH-18 was declared, none is claimed
        (row,) = stored(rt)
        assert row["charset"] == "gb18030" and row["raw"] == payload and row["sending_facility"] == "第一医院"


async def test_our_acks_pass_hl7apy_strict_validation(
    make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """AA, AE and AR with ERR validate; the NAK to bytes that are not HL7 only lacks MSA-2.

    A NAK to bytes that never were an HL7 message has no MSH-10 to echo, so MSA-2 (required in
    v2.5) stays empty: inventing one would let the sender match the NAK to a message it never sent.
    hl7apy reports exactly that and nothing else; with any control id in MSA-2 it validates.
    """
    _fail_on_control_id(monkeypatch, "BOOM")
    port = free_port()
    steps = "steps:\n  - filter: {message_type: [ADT^A01]}\n"
    async with running(make_app({"adt": channel(port, more=steps)})):
        aa, ae, ar, nak = await hl7_send(
            port, adt("V-1").encode(), adt("BOOM").encode(), adt("V-3", charset="KLINGON").encode(), b"hello"
        )
    assert [ack_of(a)["MSA"][1] for a in (aa, ae, ar, nak)] == ["AA", "AE", "AR", "AR"]
    for answer in (aa, ae, ar):
        strict(unframe(answer).decode())
    text = unframe(nak).decode()
    assert ack_of(nak)["MSH"][8] == "ACK^^ACK"  # MSH-9.3 (structure) is required in v2.5 even here
    with pytest.raises(ValidationError, match=r"^Missing required child MSA\.MSA_2$"):
        strict(text)
    strict(text.replace("MSA|AR|", "MSA|AR|X1"))


# -- 2.-4. messages the channel refuses -----------------------------------------------------------------
async def test_missing_control_id_is_rejected_101(make_app: MakeApp, store_url: str) -> None:
    port = free_port()
    payload = hl7_message("").encode()
    async with running(make_app({"adt": channel(port)}, store_url=store_url)) as rt:
        ack = ack_of(await hl7_send_one(port, payload))
        assert ack["MSA"][1:3] == ["AR", ""]
        err = ack["ERR"]
        assert err[2] == "MSH^1^10" and err[3].split("^")[0] == "101" and err[4] == "E"
        assert "MSH-10" in err[8]
        (row,) = stored(rt)
        assert row["status"] == "errored" and row["raw"] == payload and "MSH-10" in row["error"]
        assert rows(rt, deliveries) == []


async def test_bytes_that_are_not_hl7_are_rejected_100(make_app: MakeApp) -> None:
    port = free_port()
    async with running(make_app({"adt": channel(port)})) as rt:
        ack = ack_of(await hl7_send_one(port, b"hello"))
        assert ack["MSA"][1] == "AR" and ack["ERR"][3].split("^")[0] == "100"
        assert "MSH" in ack["ERR"][8]
        (row,) = stored(rt)
        assert row["status"] == "errored" and row["raw"] == b"hello"


async def test_unknown_charset_is_rejected_103_and_still_names_the_message(make_app: MakeApp) -> None:
    port = free_port()
    payload = adt("KL-1", charset="KLINGON").encode()
    async with running(make_app({"adt": channel(port)})) as rt:
        ack = ack_of(await hl7_send_one(port, payload))
        assert ack["MSA"][1:3] == ["AR", "KL-1"]  # the sender can match the NAK to its message
        assert ack["ERR"][2] == "MSH^1^18" and ack["ERR"][3].split("^")[0] == "103"
        assert "KLINGON" in ack["ERR"][8]
        assert len(ack["MSH"]) < 18 or ack["MSH"][17] != "KLINGON"  # we do not claim to speak it
        (row,) = stored(rt)
        assert row["status"] == "errored" and row["raw"] == payload and "KLINGON" in row["error"]
        assert row["control_id"] == "KL-1"


async def test_bytes_not_in_the_declared_charset_are_an_error_102_with_the_offset(make_app: MakeApp) -> None:
    port = free_port()
    payload = adt("U8-1").encode("gbk")  # declares UNICODE UTF-8, but the name is in GBK
    offset = next(i for i, b in enumerate(payload) if b >= 0x80)
    async with running(make_app({"adt": channel(port)})) as rt:
        ack = ack_of(await hl7_send_one(port, payload))
        assert ack["MSA"][1:3] == ["AE", "U8-1"]
        assert ack["ERR"][2] == "MSH^1^18" and ack["ERR"][3].split("^")[0] == "102"
        assert f"bytes {offset}-" in ack["ERR"][8] and "utf-8" in ack["ERR"][8]
        (row,) = stored(rt)
        assert row["status"] == "errored" and row["raw"] == payload and f"bytes {offset}-" in row["error"]


# -- 5.-8. broken frames and idle connections ------------------------------------------------------------
async def test_bytes_outside_a_frame_get_a_nak_and_the_connection_goes_on(
    make_app: MakeApp, store_url: str
) -> None:
    port = free_port()
    junk = hl7_message("NOSB-1").encode() + END  # a sender that forgot the start block
    async with running(make_app({"adt": channel(port)}, store_url=store_url)) as rt:
        peer = await Peer.open(port)
        await peer.send(junk)
        nak = ack_of(await peer.frame())
        assert nak["MSA"][1] == "AR" and nak["ERR"][3].split("^")[0] == "100"
        assert "outside an MLLP frame" in nak["ERR"][8]
        ack = await peer.ask(hl7_message("NOSB-2").encode())
        assert ack["MSA"][1:3] == ["AA", "NOSB-2"]
        await peer.close()
        (bad,) = await errored(rt)
        assert bad["raw"] == junk and "outside an MLLP frame" in bad["error"]
        assert [r["control_id"] for r in stored(rt) if r["status"] == "received"] == ["NOSB-2"]


async def test_oversized_message_is_cut_naked_and_closed_without_harm_to_others(
    make_app: MakeApp, store_url: str
) -> None:
    port = free_port()
    big = hl7_message("BIG-1", extra="NTE|1||" + "x" * 5000 + "\r").encode()
    source = "max_message_bytes: 2048"
    async with running(make_app({"adt": channel(port, source=source)}, store_url=store_url)) as rt:
        other = await Peer.open(port)
        assert (await other.ask(hl7_message("OK-1").encode()))["MSA"][1] == "AA"
        peer = await Peer.open(port)
        await peer.send(frame(big))
        nak = ack_of(await peer.frame())
        assert nak["MSA"][1] == "AR" and "limit of 2048 bytes" in nak["ERR"][8]
        assert await peer.rest() == b""  # then the connection is closed
        assert (await other.ask(hl7_message("OK-2").encode()))["MSA"][1:3] == ["AA", "OK-2"]
        await peer.close()
        await other.close()
        (bad,) = await errored(rt)
        assert bad["raw"] == big[:2048] and "2048" in bad["error"]


async def test_message_of_exactly_the_limit_is_accepted_even_with_a_split_end_block(
    make_app: MakeApp,
) -> None:
    port = free_port()
    base = hl7_message("EXACT-1").encode()
    exact = base + b"NTE|1||" + b"x" * (2048 - len(base) - 8) + b"\r"
    assert len(exact) == 2048
    async with running(make_app({"adt": channel(port, source="max_message_bytes: 2048")})) as rt:
        peer = await Peer.open(port)
        await peer.send(SB + exact + b"\x1c")  # the end block's CR comes in a later read
        await asyncio.sleep(0.2)
        await peer.send(b"\r")
        assert ack_of(await peer.frame())["MSA"][1:3] == ["AA", "EXACT-1"]
        over = exact.replace(b"EXACT-1", b"EXACT-2") + b"y"
        await peer.send(frame(over))
        assert ack_of(await peer.frame())["MSA"][1] == "AR"
        await peer.close()
        assert [r["raw"] for r in stored(rt) if r["status"] == "received"] == [exact]


async def test_frame_cut_off_by_a_closed_connection_is_kept_as_truncated(make_app: MakeApp) -> None:
    port = free_port()
    whole = hl7_message("HALF-1").encode()
    half = whole[: len(whole) // 2]
    async with running(make_app({"adt": channel(port)})) as rt:
        peer = await Peer.open(port)
        await peer.send(SB + half)
        await peer.close()
        (bad,) = await errored(rt)
        assert bad["raw"] == half and "truncated" in bad["error"] and "connection closed" in bad["error"]


async def test_frame_stalled_past_the_idle_timeout_is_kept_and_the_connection_closed(
    make_app: MakeApp,
) -> None:
    port = free_port()
    half = hl7_message("STALL-1").encode()[:60]
    async with running(make_app({"adt": channel(port, source="idle_timeout: 0.5")})) as rt:
        peer = await Peer.open(port)
        await peer.send(SB + half)
        assert await peer.rest() == b""  # closed by the engine, no answer
        await peer.close()
        (bad,) = await errored(rt)
        assert bad["raw"] == half and "truncated" in bad["error"] and "idle timeout" in bad["error"]


async def test_silent_connection_is_closed_after_the_idle_timeout(make_app: MakeApp) -> None:
    port = free_port()
    async with running(make_app({"adt": channel(port, source="idle_timeout: 0.5")})) as rt:
        peer = await Peer.open(port)
        assert await peer.rest() == b""  # rest() fails on its own if the engine never closes it
        await peer.close()
        assert stored(rt) == []  # no byte came, nothing to keep


async def test_new_start_block_inside_a_frame_naks_the_cut_message_and_takes_the_next(
    make_app: MakeApp,
) -> None:
    port = free_port()
    cut = hl7_message("CUT-1").encode()[:50]
    async with running(make_app({"adt": channel(port)})) as rt:
        peer = await Peer.open(port)
        await peer.send(SB + cut + frame(hl7_message("NEXT-1").encode()))
        nak, ack = ack_of(await peer.frame()), ack_of(await peer.frame())
        assert nak["MSA"][1] == "AR" and "truncated" in nak["ERR"][8]
        assert ack["MSA"][1:3] == ["AA", "NEXT-1"]
        await peer.close()
        (bad,) = await errored(rt)
        assert bad["raw"] == cut


# -- 9.-11. load ---------------------------------------------------------------------------------------
async def test_connections_beyond_the_limit_are_turned_away_at_once(make_app: MakeApp) -> None:
    port = free_port()
    async with running(make_app({"adt": channel(port, source="max_connections: 3")})) as rt:
        source = rt.sources["adt"]
        assert isinstance(source, MllpSource)
        peers = [await Peer.open(port) for _ in range(3)]
        for i, peer in enumerate(peers):
            assert (await peer.ask(hl7_message(f"FL-{i}").encode()))["MSA"][1] == "AA"
        refused = await Peer.open(port)
        assert await refused.rest() == b""  # closed at once, long before any idle timeout
        await refused.close()
        for i, peer in enumerate(peers):
            assert (await peer.ask(hl7_message(f"FL-{i}-again").encode()))["MSA"][1] == "AA"
        await peers[0].close()
        await until(lambda: len(source.connections) == 2)
        newcomer = await Peer.open(port)
        assert (await newcomer.ask(hl7_message("FL-new").encode()))["MSA"][1:3] == ["AA", "FL-new"]
        for peer in (*peers[1:], newcomer):
            await peer.close()
        assert source.refused == 1
        assert all(r["status"] == "received" for r in stored(rt)) and len(stored(rt)) == 7


async def test_pipelined_messages_are_answered_in_order(make_app: MakeApp) -> None:
    port = free_port()
    ids = [f"PIPE-{i:03d}" for i in range(50)]
    async with running(make_app({"adt": channel(port)})) as rt:
        peer = await Peer.open(port)
        # all at once, with the LF some senders put between frames
        await peer.send(b"\n".join(frame(hl7_message(c).encode()) for c in ids))
        answers = [ack_of(await peer.frame()) for _ in ids]
        await peer.close()
        assert [a["MSA"][2] for a in answers] == ids
        assert {a["MSA"][1] for a in answers} == {"AA"}
        assert [r["control_id"] for r in stored(rt)] == ids
        assert {r["status"] for r in stored(rt)} == {"received"}


async def test_many_concurrent_senders_all_stored_and_delivered_once(make_app: MakeApp) -> None:
    port = free_port()
    threads, each = 8, 50
    sent = {
        t: [hl7_message(f"C{t}-{i:02d}", patient=f"{t}{i:04d}").encode() for i in range(each)]
        for t in range(threads)
    }
    async with running(make_app({"adt": channel(port)})) as rt:
        results = await asyncio.gather(*(hl7_send(port, *sent[t]) for t in range(threads)))
        for t, answers in enumerate(results):
            acks = [ack_of(a) for a in answers]
            assert [a["MSA"][1:3] for a in acks] == [["AA", f"C{t}-{i:02d}"] for i in range(each)]
        assert len(stored(rt)) == threads * each
        await until(lambda: len(memory.SINKS.get("adt-out", [])) >= threads * each)
        await asyncio.sleep(0.2)  # a duplicate would show up now
        assert {d["status"] for d in rows(rt, deliveries)} == {"sent"}
    everything = [p for t in range(threads) for p in sent[t]]
    assert sorted(memory.SINKS["adt-out"]) == sorted(everything)


# -- 12. failures inside the engine ----------------------------------------------------------------------
def _fail_on_control_id(monkeypatch: pytest.MonkeyPatch, control_id: str) -> None:
    original = FilterStep.apply

    def apply(self: FilterStep, msg: Message) -> StepResult:
        if msg.control_id == control_id:
            raise RuntimeError("synthetic step failure")
        return original(self, msg)

    monkeypatch.setattr(FilterStep, "apply", apply)


async def test_a_failing_step_is_answered_ae_207_and_the_listener_lives_on(
    make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fail_on_control_id(monkeypatch, "BOOM")
    port = free_port()
    steps = "steps:\n  - filter: {message_type: [ADT^A01]}\n"
    async with running(make_app({"adt": channel(port, more=steps)})) as rt:
        boom, after = await hl7_send(port, hl7_message("BOOM").encode(), hl7_message("AFTER-1").encode())
        ack = ack_of(boom)
        assert ack["MSA"][1:3] == ["AE", "BOOM"] and ack["ERR"][3].split("^")[0] == "207"
        assert "RuntimeError: synthetic step failure" in ack["ERR"][8]
        assert ack_of(after)["MSA"][1:3] == ["AA", "AFTER-1"]
        assert ack_of(await hl7_send_one(port, hl7_message("AFTER-2").encode()))["MSA"][1] == "AA"
        bad = next(r for r in stored(rt) if r["control_id"] == "BOOM")
        assert bad["status"] == "errored" and bad["raw"] == hl7_message("BOOM").encode()
        assert "RuntimeError" in bad["error_detail"]


async def test_unparseable_message_in_a_field_filter_is_answered_ae(
    make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hl7  # engine.message calls hl7.parse through the module

    real_parse = hl7.parse

    def parse(text: str, *args: Any, **kwargs: Any) -> Any:
        if "UNPARSEABLE" in text:
            raise ValueError("synthetic parser failure")
        return real_parse(text, *args, **kwargs)

    monkeypatch.setattr(hl7, "parse", parse)
    port = free_port()
    steps = "steps:\n  - filter: {fields: [{path: PID.8, in: [M, F]}]}\n"
    async with running(make_app({"adt": channel(port, more=steps)})) as rt:
        bad, good = await hl7_send(
            port, hl7_message("UNPARSEABLE").encode(), hl7_message("PARSE-OK").encode()
        )
        ack = ack_of(bad)
        assert ack["MSA"][1:3] == ["AE", "UNPARSEABLE"] and ack["ERR"][3].split("^")[0] == "100"
        assert "cannot parse" in ack["ERR"][8]
        assert ack_of(good)["MSA"][1:3] == ["AA", "PARSE-OK"]
        assert {r["control_id"]: r["status"] for r in stored(rt)} == {
            "UNPARSEABLE": "errored",
            "PARSE-OK": "received",
        }


async def test_an_internal_error_before_storing_keeps_the_bytes_and_answers_ae(
    make_app: MakeApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine.channel import Channel

    original = Channel.prepare

    def prepare(self: Channel, raw: bytes, *args: Any, **kwargs: Any) -> Any:
        if b"CRASH" in raw:
            raise RuntimeError("synthetic engine bug")
        return original(self, raw, *args, **kwargs)

    monkeypatch.setattr(Channel, "prepare", prepare)
    port = free_port()
    payload = hl7_message("CRASH-1").encode()
    async with running(make_app({"adt": channel(port)})) as rt:
        crash, fine = await hl7_send(port, payload, hl7_message("FINE-1").encode())
        ack = ack_of(crash)
        assert ack["MSA"][1] == "AE" and ack["ERR"][3].split("^")[0] == "207"
        assert ack_of(fine)["MSA"][1:3] == ["AA", "FINE-1"]
        (bad,) = await errored(rt)
        assert bad["raw"] == payload and "internal error" in bad["error"]
