"""HL7 v2 DT/DTM parsing and formatting, ISO 8601 parsing, and the messages of rejected values."""

from __future__ import annotations

import datetime as dt

import pytest

from engine.mapping.errors import ValueRejected
from engine.mapping.hl7time import (
    calendar_problem,
    format_date,
    format_datetime,
    parse_date,
    parse_datetime,
    parse_iso_date,
    parse_iso_datetime,
    parse_zone,
)

CST = dt.timezone(dt.timedelta(hours=8))


def reason(fn: object, text: str) -> str:
    assert callable(fn)
    with pytest.raises(ValueRejected) as info:
        fn(text)
    assert info.value.hl7_code == "102"
    assert info.value.value == text
    return info.value.message


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("20260203", dt.datetime(2026, 2, 3)),
        ("2026020310", dt.datetime(2026, 2, 3, 10)),
        ("202602031005", dt.datetime(2026, 2, 3, 10, 5)),
        ("20260203100559", dt.datetime(2026, 2, 3, 10, 5, 59)),
        ("20260203100559.1", dt.datetime(2026, 2, 3, 10, 5, 59, 100000)),
        ("20260203100559.1234", dt.datetime(2026, 2, 3, 10, 5, 59, 123400)),
        (" 20260203100559 ", dt.datetime(2026, 2, 3, 10, 5, 59)),
        ("20240229", dt.datetime(2024, 2, 29)),
    ],
)
def test_dtm_without_zone_is_naive(text: str, expected: dt.datetime) -> None:
    value = parse_datetime(text)
    assert value == expected
    assert value.tzinfo is None


def test_dtm_with_zone_is_aware_in_that_zone() -> None:
    value = parse_datetime("20260203100500+0800")
    assert value.utcoffset() == dt.timedelta(hours=8)
    assert value == dt.datetime(2026, 2, 3, 2, 5, tzinfo=dt.UTC)
    west = parse_datetime("202602031005-0330")
    assert west.utcoffset() == -dt.timedelta(hours=3, minutes=30)
    assert parse_datetime("20260203100500.12+0000").microsecond == 120000


def test_assume_zone_applies_only_to_values_without_one() -> None:
    assert parse_datetime("20260203100500", CST) == dt.datetime(2026, 2, 3, 10, 5, tzinfo=CST)
    assert parse_datetime("20260203100500+0000", CST).utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("20260230", "'20260230': day 30 is not in February 2026"),
        ("20250229", "'20250229': day 29 is not in February 2025"),
        ("20261301", "'20261301': month 13 is not 01-12"),
        ("20260001", "'20260001': month 00 is not 01-12"),
        ("20260100", "'20260100': day 00 is not in January 2026"),
        ("2026020324", "'2026020324': hour 24 is not 00-23"),
        ("202602031060", "'202602031060': minute 60 is not 00-59"),
        ("20260203100560", "'20260203100560': second 60 is not 00-59"),
        ("20260203100500+0875", "'20260203100500+0875': zone +0875: minute 75 is not 00-59"),
        ("20260203100500+1500", "'20260203100500+1500': zone +1500 is not a UTC offset (-1200 to +1400)"),
        (
            "2026",
            "'2026': a date and time needs at least year, month and day; this value gives only the year",
        ),
        (
            "202602",
            "'202602': a date and time needs at least year, month and day; "
            "this value gives only the year and month",
        ),
        ("202602031", "'202602031': not an HL7 DTM (YYYYMMDD[HHMM[SS[.SSSS]]][+/-ZZZZ])"),
        (
            "2026-02-03T10:05",
            "'2026-02-03T10:05': not an HL7 DTM (YYYYMMDD[HHMM[SS[.SSSS]]][+/-ZZZZ]); "
            "it looks like ISO 8601: use iso_date / iso_datetime",
        ),
        ("２０２６０２０３", "'２０２６０２０３': not an HL7 DTM (YYYYMMDD[HHMM[SS[.SSSS]]][+/-ZZZZ])"),
        (
            "20260203100500.12345",
            "'20260203100500.12345': not an HL7 DTM (YYYYMMDD[HHMM[SS[.SSSS]]][+/-ZZZZ])",
        ),
        ("20260203+08", "'20260203+08': not an HL7 DTM (YYYYMMDD[HHMM[SS[.SSSS]]][+/-ZZZZ])"),
    ],
)
def test_datetime_rejections_name_the_problem(text: str, message: str) -> None:
    assert reason(parse_datetime, text) == message


def test_dt_and_the_date_part_of_dtm() -> None:
    assert parse_date("19850312") == dt.date(1985, 3, 12)
    assert parse_date("198503120830") == dt.date(1985, 3, 12)
    # the day as the sender wrote it: a zone does not move it
    assert parse_date("19850312233000-1000") == dt.date(1985, 3, 12)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("19850230", "'19850230': day 30 is not in February 1985"),
        (
            "198503",
            "'198503': a date needs at least year, month and day; this value gives only the year and month",
        ),
        ("1985", "'1985': a date needs at least year, month and day; this value gives only the year"),
        ("1985031224", "'1985031224': hour 24 is not 00-23"),
        ("198503120830+2500", "'198503120830+2500': zone +2500 is not a UTC offset (-1200 to +1400)"),
        (
            "1985-03-12",
            "'1985-03-12': not an HL7 DT (YYYYMMDD[HHMM[SS[.SSSS]]][+/-ZZZZ]); "
            "it looks like ISO 8601: use iso_date / iso_datetime",
        ),
    ],
)
def test_date_rejections_name_the_problem(text: str, message: str) -> None:
    assert reason(parse_date, text) == message


def test_parse_zone() -> None:
    assert parse_zone("+0800") == CST
    assert parse_zone("-0500") == dt.timezone(-dt.timedelta(hours=5))
    assert reason(parse_zone, "+08:00") == "zone '+08:00' is not +/-HHMM"
    assert reason(parse_zone, "0800") == "zone '0800' is not +/-HHMM"


def test_calendar_problem() -> None:
    assert calendar_problem(2024, 2, 29) is None
    assert calendar_problem(1900, 2, 29) == "day 29 is not in February 1900"
    assert calendar_problem(2026, 4, 31) == "day 31 is not in April 2026"


def test_format_datetime() -> None:
    assert format_datetime(dt.datetime(2026, 2, 3, 10, 5, 9, 999999)) == "20260203100509"
    assert format_datetime(dt.datetime(2026, 2, 3, 10, 5, tzinfo=CST)) == "20260203100500+0800"
    minus = dt.timezone(-dt.timedelta(hours=3, minutes=30))
    assert format_datetime(dt.datetime(2026, 2, 3, 10, 5, tzinfo=minus)) == "20260203100500-0330"
    assert format_datetime(dt.datetime(2026, 2, 3, tzinfo=dt.UTC)) == "20260203000000+0000"
    assert format_datetime(dt.date(2026, 2, 3)) == "20260203"
    assert format_datetime(dt.datetime(987, 6, 5)) == "09870605000000"


def test_format_round_trips() -> None:
    for text in ("20260203100500+0800", "20260203100500-0330", "19491231235959"):
        assert format_datetime(parse_datetime(text)) == text


def test_format_date() -> None:
    assert format_date(dt.date(1985, 3, 12)) == "19850312"
    assert format_date(dt.datetime(1985, 3, 12, 23, 59, tzinfo=CST)) == "19850312"


def test_iso_dates() -> None:
    assert parse_iso_date("1985-03-12") == dt.date(1985, 3, 12)
    assert parse_iso_date("1985-03-12T08:30:00+08:00") == dt.date(1985, 3, 12)
    assert reason(parse_iso_date, "1985-02-30") == "'1985-02-30': day 30 is not in February 1985"
    assert reason(parse_iso_date, "12/03/1985") == "'12/03/1985': not an ISO 8601 date (YYYY-MM-DD)"


def test_iso_datetimes() -> None:
    assert parse_iso_datetime("2026-02-03T10:05:00+08:00") == dt.datetime(2026, 2, 3, 10, 5, tzinfo=CST)
    assert parse_iso_datetime("2026-02-03T02:05:00Z") == dt.datetime(2026, 2, 3, 10, 5, tzinfo=CST)
    assert parse_iso_datetime("2026-02-03T10:05:00").tzinfo is None
    assert parse_iso_datetime("2026-02-03T10:05:00", CST).tzinfo is CST
    assert parse_iso_datetime("2026-02-03T10:05:00-05:00", CST).utcoffset() == -dt.timedelta(hours=5)
    assert reason(parse_iso_datetime, "2026-13-03T10:05") == "'2026-13-03T10:05': month 13 is not 01-12"
    assert reason(parse_iso_datetime, "yesterday") == (
        "'yesterday': not an ISO 8601 date and time (YYYY-MM-DDTHH:MM[:SS[.ffffff]][+HH:MM|Z])"
    )
