"""RFC 5424 syslog messages: what an ITI-20 sender writes is read field by field, what the engine
writes reads back, and each kind of broken header is named."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from profiles.atna.rfc5424 import BOM, SyslogFormatError, format_message, parse


def test_an_iti20_message_is_read_field_by_field() -> None:
    data = (
        b"<85>1 2026-12-05T09:30:00.123+08:00 emr.hosp-b.example EMR_B 2231 IHE+RFC-3881 - " + BOM + b"<A/>"
    )
    m = parse(data)
    assert (m.facility, m.severity, m.version) == (10, 5, 1)
    assert m.timestamp == datetime(2026, 12, 5, 1, 30, 0, 123000, tzinfo=UTC)
    assert m.timestamp.utcoffset() == timedelta(hours=8)
    assert (m.hostname, m.app_name, m.procid, m.msgid) == (
        "emr.hosp-b.example",
        "EMR_B",
        "2231",
        "IHE+RFC-3881",
    )
    assert m.structured_data == "-"
    assert m.msg == b"<A/>"  # the BOM is not part of the MSG


def test_nil_values_structured_data_with_escapes_and_no_msg() -> None:
    sd = rb'[origin ip="10.0.0.1" note="a \"quoted\\ ] value"][meta sequenceId="7"]'
    m = parse(b"<13>1 - - - - - " + sd)
    assert m.timestamp is None and m.hostname == "" and m.app_name == "" and m.msgid == ""
    assert m.structured_data == sd.decode()
    assert m.msg == b""
    assert parse(b"<13>1 - - - - - " + sd + b" hello").msg == b"hello"


def test_what_the_engine_writes_reads_back() -> None:
    when = datetime(2026, 12, 5, 9, 30, 0, 5000, tzinfo=timezone(timedelta(hours=8)))
    data = format_message(
        "<AuditMessage>患者</AuditMessage>".encode(),
        hostname="hie node 1",
        app_name="HIE",
        procid="42",
        timestamp=when,
    )
    assert data.startswith(b"<85>1 2026-12-05T01:30:00.005Z hie_node_1 HIE 42 IHE+RFC-3881 - " + BOM)
    m = parse(data)
    assert m.msg.decode("utf-8") == "<AuditMessage>患者</AuditMessage>"
    assert m.timestamp == when


@pytest.mark.parametrize(
    ("data", "named"),
    [
        (b"", "empty"),
        (b"hello", "does not start with <PRI>"),
        (b"<85>Dec  5 10:00:00 emr EMR_B: <AuditMessage/>", "RFC 3164"),
        (b"<999>1 - - - - - -", "PRI 999 is out of range"),
        (b"<85>2 - - - - - -", "VERSION 2"),
        (b"<85>1 yesterday host app 1 IHE+RFC-3881 - <A/>", "TIMESTAMP 'yesterday'"),
        (b"<85>1 2026-12-05T09:30:00 host app 1 ID - x", "TIMESTAMP"),  # no time zone
        (b"<85>1 - host app", "HEADER needs"),
        (b"<85>1 - host app 1 ID [bad", "SD-ELEMENT not closed"),
        (b'<85>1 - host app 1 ID [x a="open', "closing quote"),
        (b"<85>1 - host app 1 ID x", "STRUCTURED-DATA must be '-'"),
        (b"<85>1 - host app 1 ID -x", "followed by a space"),
    ],
)
def test_broken_messages_are_named(data: bytes, named: str) -> None:
    with pytest.raises(SyslogFormatError, match=named.replace("(", r"\(").replace("[", r"\[")):
        parse(data)
