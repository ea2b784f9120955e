"""File source and destination on real temp directories.

The source is driven through ``poll()`` (one look at the directory) with a fake channel that records
what it was given; one test runs the real scheduler through ``start()``/``stop()``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from engine.config import AppConfig
from engine.connectors import file as file_module
from engine.connectors.base import Outbound, parse_url
from engine.connectors.file import FileDestination, FileSource, split_batch
from engine.errors import DeliveryError, MessageError
from engine.hl7v2.charset import with_msh18
from engine.hl7v2.peek import peek
from engine.message import ContentType, Message, Outcome, OutcomeStatus
from tests.engine.connectors.fakes import SAMPLE, FakeReceiver, message


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    path = tmp_path / "inbox"
    path.mkdir()
    return path


def drop(directory: Path, name: str, data: bytes | str, *, age: float = 60.0) -> Path:
    """A file as a sender leaves it, last modified ``age`` seconds ago."""
    path = directory / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    old = time.time() - age
    os.utime(path, (old, old))
    return path


def source(app: AppConfig, directory: Path, receiver: FakeReceiver, **options: object) -> FileSource:
    opts = FileSource.Options.model_validate(options)
    return FileSource(parse_url(f"file://{directory}"), opts, receiver, app, None)


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


# --------------------------------------------------------------------------------------------------
# source


async def test_accepted_file_is_given_to_the_channel_and_moved_to_done(app: AppConfig, inbox: Path) -> None:
    path = drop(inbox, "a.hl7", SAMPLE)
    receiver = FakeReceiver()

    assert await source(app, inbox, receiver).poll() == 1

    assert [c.raw for c in receiver.calls] == [SAMPLE.encode()]
    assert receiver.calls[0].peer == f"file:{path}"
    assert receiver.calls[0].content_type is ContentType.HL7V2
    assert names(inbox) == ["done"]
    assert (inbox / "done" / "a.hl7").read_bytes() == SAMPLE.encode()


async def test_errored_file_goes_to_error_with_the_reason_next_to_it(app: AppConfig, inbox: Path) -> None:
    drop(inbox, "a.hl7", message("GOOD1"))
    drop(inbox, "b.hl7", message("BAD1"))

    def decide(raw: bytes) -> Outcome:
        if b"BAD1" in raw:
            return Outcome(
                OutcomeStatus.ERRORED,
                message_id=2,
                error=MessageError("PID-3 has no identifier", hl7_code="101"),
            )
        return Outcome(OutcomeStatus.ACCEPTED, message_id=1)

    assert await source(app, inbox, FakeReceiver(decide)).poll() == 2

    assert names(inbox / "done") == ["a.hl7"]
    assert names(inbox / "error") == ["b.hl7", "b.hl7.error.txt"]
    note = (inbox / "error" / "b.hl7.error.txt").read_text(encoding="utf-8")
    assert "PID-3 has no identifier" in note
    assert "errored" in note
    assert (inbox / "error" / "b.hl7").read_bytes() == message("BAD1").encode()


async def test_filtered_and_rejected_outcomes(app: AppConfig, inbox: Path) -> None:
    drop(inbox, "f.hl7", message("FILTERME"))
    drop(inbox, "r.hl7", "not hl7 at all")

    def decide(raw: bytes) -> Outcome:
        if raw.startswith(b"MSH"):
            return Outcome(OutcomeStatus.FILTERED, message_id=1)
        return Outcome(OutcomeStatus.REJECTED, message_id=2, error=MessageError("not an HL7 v2 message"))

    await source(app, inbox, FakeReceiver(decide)).poll()

    assert names(inbox / "done") == ["f.hl7"]
    assert names(inbox / "error") == ["r.hl7", "r.hl7.error.txt"]
    assert "not an HL7 v2 message" in (inbox / "error" / "r.hl7.error.txt").read_text(encoding="utf-8")


async def test_files_are_read_in_name_order_and_only_when_they_match(app: AppConfig, inbox: Path) -> None:
    drop(inbox, "b.hl7", message("B"))
    drop(inbox, "a.hl7", message("A"))
    drop(inbox, "c.txt", message("C"))
    drop(inbox, ".hidden.hl7", message("H"))
    receiver = FakeReceiver()

    await source(app, inbox, receiver).poll()

    assert [peek(c.raw.decode()).control_id for c in receiver.calls] == ["A", "B"]
    assert names(inbox) == [".hidden.hl7", "c.txt", "done"]


async def test_a_file_younger_than_min_age_is_left_alone(app: AppConfig, inbox: Path) -> None:
    path = drop(inbox, "a.hl7", SAMPLE, age=0)
    receiver = FakeReceiver()
    src = source(app, inbox, receiver, min_age=30)

    assert await src.poll() == 0
    assert receiver.calls == []
    assert path.exists()

    old = time.time() - 31
    os.utime(path, (old, old))
    assert await src.poll() == 1
    assert names(inbox / "done") == ["a.hl7"]


async def test_a_receive_that_raises_leaves_the_file_for_the_next_poll(
    app: AppConfig, inbox: Path, caplog: pytest.LogCaptureFixture
) -> None:
    drop(inbox, "a.hl7", message("A"))
    drop(inbox, "b.hl7", message("B"))
    store_up = False

    def decide(raw: bytes) -> Outcome:
        if not store_up:
            raise ConnectionError("the store is down\n[parameters: secret message bytes]")
        return Outcome(OutcomeStatus.ACCEPTED, message_id=1)

    receiver = FakeReceiver(decide)
    src = source(app, inbox, receiver)
    with caplog.at_level(logging.WARNING, logger="engine.connectors.file"):
        assert await src.poll() == 0

    assert names(inbox) == ["a.hl7", "b.hl7"]  # nothing moved, nothing lost
    assert len(receiver.calls) == 1  # b.hl7 is not tried before a.hl7: order is kept
    assert "a.hl7" in caplog.text and "the store is down" in caplog.text
    assert "secret message bytes" not in caplog.text  # only the first line of the error is logged

    store_up = True
    assert await src.poll() == 2
    assert names(inbox / "done") == ["a.hl7", "b.hl7"]


async def test_done_files_are_never_overwritten(app: AppConfig, inbox: Path) -> None:
    (inbox / "done").mkdir()
    (inbox / "done" / "a.hl7").write_text("earlier file", encoding="utf-8")
    (inbox / "done" / "a.1.hl7").write_text("another earlier file", encoding="utf-8")
    drop(inbox, "a.hl7", SAMPLE)

    await source(app, inbox, FakeReceiver()).poll()

    assert (inbox / "done" / "a.hl7").read_text(encoding="utf-8") == "earlier file"
    assert (inbox / "done" / "a.1.hl7").read_text(encoding="utf-8") == "another earlier file"
    assert (inbox / "done" / "a.2.hl7").read_bytes() == SAMPLE.encode()


async def test_relative_url_is_resolved_against_the_config_directory(app: AppConfig, tmp_path: Path) -> None:
    (tmp_path / "drop").mkdir()
    drop(tmp_path / "drop", "a.hl7", SAMPLE)
    receiver = FakeReceiver()
    src = FileSource(parse_url("file://drop"), FileSource.Options(), receiver, app, None)

    assert src.directory == tmp_path / "drop"
    assert await src.poll() == 1
    assert names(tmp_path / "drop" / "done") == ["a.hl7"]


async def test_other_content_types_are_passed_on(app: AppConfig, inbox: Path) -> None:
    drop(inbox, "a.json", '{"resourceType": "Patient"}')
    receiver = FakeReceiver()

    await source(app, inbox, receiver, pattern="*.json", content_type="json").poll()

    assert receiver.calls[0].content_type is ContentType.JSON


BATCH = (
    "FHS|^~\\&|HIS|HOSP_A\r\n"
    "BHS|^~\\&|HIS|HOSP_A\r\n"
    + message("M1").replace("\r", "\r\n")
    + message("M2").replace("\r", "\r\n")
    + message("M3").replace("\r", "\r\n")
    + "BTS|3\r\nFTS|1\r\n"
)


async def test_split_batch_gives_each_message_to_the_channel(app: AppConfig, inbox: Path) -> None:
    drop(inbox, "batch.hl7", BATCH)
    receiver = FakeReceiver()

    assert await source(app, inbox, receiver, split_batch=True).poll() == 1

    raws = [c.raw.decode() for c in receiver.calls]
    assert [peek(r).control_id for r in raws] == ["M1", "M2", "M3"]
    assert all(r.startswith("MSH|") and "PID|1||100001" in r for r in raws)
    assert not any(seg in r for r in raws for seg in ("FHS", "BHS", "BTS", "FTS"))
    assert names(inbox / "done") == ["batch.hl7"]


async def test_without_split_batch_the_file_is_one_message(app: AppConfig, inbox: Path) -> None:
    drop(inbox, "batch.hl7", BATCH)
    receiver = FakeReceiver()

    await source(app, inbox, receiver).poll()

    assert [c.raw for c in receiver.calls] == [BATCH.encode()]


async def test_split_batch_errors_are_listed_per_message(app: AppConfig, inbox: Path) -> None:
    drop(inbox, "batch.hl7", message("M1") + message("M2") + message("M3"))

    def decide(raw: bytes) -> Outcome:
        if b"|M2|" in raw:
            return Outcome(OutcomeStatus.ERRORED, message_id=12, error=MessageError("unknown ward W99"))
        return Outcome(OutcomeStatus.ACCEPTED, message_id=11)

    await source(app, inbox, FakeReceiver(decide), split_batch=True).poll()

    note = (inbox / "error" / "batch.hl7.error.txt").read_text(encoding="utf-8")
    assert "message 2 of 3" in note and "unknown ward W99" in note
    assert "2 of 3 messages were accepted" in note


async def test_split_batch_resumes_after_the_store_failed_mid_file(app: AppConfig, inbox: Path) -> None:
    drop(inbox, "batch.hl7", message("M1") + message("M2") + message("M3"))
    failures = [True]

    def decide(raw: bytes) -> Outcome:
        if b"|M2|" in raw and failures:
            failures.pop()
            raise ConnectionError("store down")
        return Outcome(OutcomeStatus.ACCEPTED, message_id=1)

    receiver = FakeReceiver(decide)
    src = source(app, inbox, receiver, split_batch=True)
    assert await src.poll() == 0
    assert names(inbox) == ["batch.hl7"]
    assert await src.poll() == 1

    ids = [peek(c.raw.decode()).control_id for c in receiver.calls]
    assert ids == ["M1", "M2", "M2", "M3"]  # M1 is not stored twice
    assert names(inbox / "done") == ["batch.hl7"]


def test_split_batch_keeps_text_before_the_first_msh_as_its_own_piece() -> None:
    pieces = split_batch(b"garbage line\r" + message("M1").encode())
    assert pieces == [b"garbage line\r", message("M1").encode()]
    assert split_batch(b"no message here") == [b"no message here"]
    # MSH in the middle of a line does not start a message
    assert split_batch(b"MSH|a\rOBX|1|ST|||MSH|x\r") == [b"MSH|a\rOBX|1|ST|||MSH|x\r"]


async def wait_for_file(path: Path, seconds: float = 3.0) -> bool:
    for _ in range(int(seconds / 0.02)):
        if await asyncio.to_thread(path.exists):
            return True
        await asyncio.sleep(0.02)
    return False


async def test_start_polls_at_once(app: AppConfig, inbox: Path) -> None:
    drop(inbox, "a.hl7", message("A"))
    src = source(app, inbox, FakeReceiver(), poll_interval=60)  # the first interval is far away

    await src.start()
    try:
        assert await wait_for_file(inbox / "done" / "a.hl7")
    finally:
        await src.stop()


async def test_polling_repeats_until_stop(app: AppConfig, inbox: Path) -> None:
    receiver = FakeReceiver()
    src = source(app, inbox, receiver, poll_interval=0.05, min_age=0)

    await src.start()
    try:
        drop(inbox, "a.hl7", message("A"))
        assert await wait_for_file(inbox / "done" / "a.hl7")
        drop(inbox, "b.hl7", message("B"))
        assert await wait_for_file(inbox / "done" / "b.hl7")
    finally:
        await src.stop()

    drop(inbox, "c.hl7", message("C"))
    await asyncio.sleep(0.3)
    assert (inbox / "c.hl7").exists()
    assert len(receiver.calls) == 2


class SlowReceiver(FakeReceiver):
    """A channel that takes its time storing, until ``release`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def receive(
        self, raw: bytes, peer: str, *, content_type: ContentType = ContentType.HL7V2
    ) -> tuple[Outcome, Message | None]:
        self.entered.set()
        await self.release.wait()
        return await super().receive(raw, peer, content_type=content_type)


async def test_stop_lets_the_file_being_handled_finish(app: AppConfig, inbox: Path) -> None:
    drop(inbox, "a.hl7", message("A"))
    drop(inbox, "b.hl7", message("B"))
    receiver = SlowReceiver()
    src = source(app, inbox, receiver, poll_interval=60)
    await src.start()
    await asyncio.wait_for(receiver.entered.wait(), 3)

    stopping = asyncio.create_task(src.stop())
    await asyncio.sleep(0.1)
    assert not stopping.done()  # stop waits for the message being stored...
    receiver.release.set()
    await asyncio.wait_for(stopping, 3)

    assert names(inbox / "done") == ["a.hl7"]  # ...then its file is moved, and no new file is started
    assert names(inbox) == ["b.hl7", "done"]
    assert len(receiver.calls) == 1


async def test_start_creates_the_watched_directory(app: AppConfig, tmp_path: Path) -> None:
    src = source(app, tmp_path / "new" / "inbox", FakeReceiver(), poll_interval=60)
    await src.start()
    await src.stop()
    assert (tmp_path / "new" / "inbox").is_dir()


def test_file_url_without_a_directory_is_a_problem() -> None:
    assert FileSource.check_url(parse_url("file://")) is not None
    assert FileDestination.check_url(parse_url("file://")) is not None
    assert FileSource.check_url(parse_url("file:///var/hie/in")) is None
    assert FileDestination.check_url(parse_url("file://out")) is None


@pytest.mark.parametrize(
    "options",
    [
        {"pattern": "sub/*.hl7"},
        {"poll_interval": 0},
        {"done_dir": "."},
        {"content_type": "pdf"},
        {"unknown": 1},
    ],
)
def test_bad_source_options_are_refused(options: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        FileSource.Options.model_validate(options)


# --------------------------------------------------------------------------------------------------
# destination


def outbound(control_id: str = "MSG00001", *, content: str | None = None, message_id: int = 7) -> Outbound:
    raw = message(control_id).encode()
    return Outbound(
        delivery_id=1,
        message_id=message_id,
        channel_id="test-channel",
        control_id=control_id,
        content_type=ContentType.HL7V2,
        charset="utf-8",
        raw=raw,
        content=content,
        attempt=1,
    )


def destination(app: AppConfig, directory: Path, **options: object) -> FileDestination:
    opts = FileDestination.Options.model_validate(options)
    return FileDestination(parse_url(f"file://{directory}"), opts, app, None, "test-channel", "to-lab")


async def test_destination_writes_the_file_named_by_the_template(app: AppConfig, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    dest = destination(app, out_dir, filename="{destination}_{control_id}_{date}_{message_id}.hl7")
    await dest.start()

    result = await dest.send(outbound("MSG00001"))

    today = datetime.now(UTC).strftime("%Y%m%d")
    assert names(out_dir) == [f"to-lab_MSG00001_{today}_7.hl7"]  # no temporary file left behind
    assert (out_dir / f"to-lab_MSG00001_{today}_7.hl7").read_bytes() == message("MSG00001").encode()
    assert result.sent == message("MSG00001").encode()


async def test_default_template_and_resend_gives_the_same_file(app: AppConfig, tmp_path: Path) -> None:
    dest = destination(app, tmp_path)
    await dest.send(outbound())
    await dest.send(outbound())  # a retried delivery replaces its own file, never adds a second
    assert [n for n in names(tmp_path) if n.endswith(".hl7")] == ["test-channel-7.hl7"]


async def test_unsafe_control_ids_are_sanitised(app: AppConfig, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    dest = destination(app, out_dir, filename="{control_id}.hl7")

    await dest.send(outbound("../../etc/pass wd:1"))

    (written,) = names(out_dir)
    assert written == "___.._etc_pass_wd_1.hl7"
    assert not written.startswith(".")
    assert set(names(tmp_path)) == {"channels", "config.yaml", "out"}  # nothing escaped the directory


async def test_transformed_content_is_encoded_in_the_output_charset(app: AppConfig, tmp_path: Path) -> None:
    text = message("MSG00002").replace("Zhang^San", "张^三")
    dest = destination(app, tmp_path, filename="{message_id}.hl7", charset="GBK")

    result = await dest.send(outbound("MSG00002", content=text))

    # re-encoded, and MSH-18 now says so (HL7 table 0211 name)
    expected = with_msh18(text, "gb18030").encode("gb18030")
    assert expected.split(b"\r")[0].endswith(b"|GB 18030-2000")
    assert (tmp_path / "7.hl7").read_bytes() == expected
    assert result.sent == expected


async def test_a_failed_write_keeps_the_old_file_whole(
    app: AppConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "test-channel-7.hl7").write_text("previous content", encoding="utf-8")
    dest = destination(app, tmp_path)

    def broken_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(DeliveryError, match="Input/output error"):
        await dest.send(outbound())

    assert (tmp_path / "test-channel-7.hl7").read_text(encoding="utf-8") == "previous content"
    assert not [n for n in names(tmp_path) if n.endswith(".tmp")]


async def test_an_unwritable_directory_is_a_delivery_error(app: AppConfig, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the directory should be", encoding="utf-8")
    dest = destination(app, blocker)

    with pytest.raises(DeliveryError, match=r"cannot write test-channel-7\.hl7"):
        await dest.send(outbound())


def test_unknown_placeholder_is_a_validation_error() -> None:
    with pytest.raises(ValidationError, match=r"unknown placeholder \{patient_id\}"):
        FileDestination.Options(filename="{patient_id}-{message_id}.hl7")


@pytest.mark.parametrize(
    "filename",
    [
        "sub/{message_id}.hl7",
        ".{message_id}.hl7",
        "fixed-name.hl7",
        "{message_id:%Y}.hl7",
        "{message_id.real}.hl7",
        "{}.hl7",
    ],
)
def test_bad_templates_are_refused(filename: str) -> None:
    with pytest.raises(ValidationError):
        FileDestination.Options(filename=filename)


def test_unknown_output_charset_is_refused() -> None:
    with pytest.raises(ValidationError, match="unknown charset"):
        FileDestination.Options(charset="klingon-8")


async def test_directory_is_synced_once_per_batch_at_flush(
    app: AppConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[Path] = []
    monkeypatch.setattr(file_module, "sync_directory", synced.append)
    dest = destination(app, tmp_path / "out", filename="{message_id}.hl7")
    await dest.start()
    for i in range(3):
        await dest.send(outbound(f"M{i}", message_id=i))
    assert synced == []  # files are fsynced, the renames wait for the batch's flush
    await dest.flush()
    await dest.flush()  # nothing new: no second sync
    assert synced == [tmp_path / "out"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["0.hl7", "1.hl7", "2.hl7"]
