"""RFC 5425 octet counting: frames come out whole however the bytes are cut, and a stream that
cannot be framed says why and keeps the bytes of the broken frame."""

from __future__ import annotations

from profiles.atna.rfc5425 import Deframer, frame


def test_frames_split_anywhere_come_out_whole() -> None:
    messages = [b"<85>1 - - - - - - one", b"<85>1 - - - - - - " + "二".encode() * 50, b"x"]
    stream = b"".join(frame(m) for m in messages)
    for size in (1, 2, 7, len(stream)):
        deframer = Deframer(8192)
        out: list[bytes] = []
        for start in range(0, len(stream), size):
            out += deframer.feed(stream[start : start + size])
        assert out == messages
        assert deframer.pending == 0 and deframer.fault is None


def test_a_length_that_is_not_a_number_breaks_the_stream() -> None:
    deframer = Deframer(8192)
    # a sender using RFC 6587 non-transparent framing (LF after each message)
    out = deframer.feed(frame(b"good") + b"<85>1 - - - - - - bad\n")
    assert out == [b"good"]
    assert deframer.fault is not None
    assert "MSG-LEN must be a number" in deframer.fault.reason
    assert deframer.fault.kept == b"<85>1 - - - - - - bad\n"
    assert deframer.feed(frame(b"after")) == []  # nothing is framed after the fault


def test_leading_zero_and_too_many_digits_are_faults() -> None:
    assert "without leading zeros" in _fault(b"012 abc")
    assert "longer than 10 digits" in _fault(b"12345678901")


def test_a_length_over_the_limit_is_a_fault() -> None:
    deframer = Deframer(8192)
    deframer.feed(b"9000 <85>1")
    assert deframer.fault is not None
    assert deframer.fault.reason == "MSG-LEN 9000 exceeds the limit of 8192 bytes (max_message_bytes)"


def _fault(data: bytes) -> str:
    deframer = Deframer(8192)
    deframer.feed(data)
    assert deframer.fault is not None
    return deframer.fault.reason
