"""HL7 v2 dates and times (DT, DTM, TS) read into Python dates and written back.

HL7 v2.5 §2A.3.22 DTM is ``YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]``: the precision is
whatever the sender wrote, and the zone is optional. TS (§2A.3.75) is a DTM plus a deprecated
"degree of precision" component that the path already leaves out; DT (§2A.3.21) is ``YYYY[MM[DD]]``.
A Python ``date`` or ``datetime`` cannot hold a year alone, so a value less precise than a day is
rejected with a message saying so rather than silently becoming the first of January.

Everything a sender can get wrong is named in the rejection ("day 30 is not in February 2026"),
because that text goes back to the hospital in ERR-8. The parsers run once per field per message:
one pre-compiled regular expression, integer checks, no exception unless the value is rejected.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re

from engine.mapping.errors import ValueRejected

__all__ = [
    "calendar_problem",
    "format_date",
    "format_datetime",
    "parse_date",
    "parse_datetime",
    "parse_iso_date",
    "parse_iso_datetime",
    "parse_zone",
]

# re.ASCII: \d would otherwise also match full-width and other Unicode digits.
_DTM = re.compile(
    r"(\d{4})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:\.(\d{1,4}))?)?)?)?)?)?([+-]\d{4})?",
    re.ASCII,
)
_ISO_DAY = re.compile(r"(\d{4})-?(\d{2})-?(\d{2})", re.ASCII)
_SHAPE = "YYYYMMDD[HHMM[SS[.SSSS]]][+/-ZZZZ]"
_PRECISION = {1: "the year", 2: "the year and month"}
_ZONES: dict[str, dt.timezone] = {}  # at most a few dozen distinct offsets ever arrive


def calendar_problem(year: int, month: int, day: int) -> str | None:
    """Why year/month/day is not a date ("day 30 is not in February 2026"), or None when it is one."""
    if not 1 <= month <= 12:
        return f"month {month:02d} is not 01-12"
    if 1 <= day <= 28:  # every month has these; most values stop here
        return None
    last = calendar.monthrange(year, month)[1]
    if not 1 <= day <= last:
        return f"day {day:02d} is not in {calendar.month_name[month]} {year}"
    return None


def _time_problem(hour: int, minute: int, second: int) -> str | None:
    # DTM hours are 00-23 (§2A.3.22): midnight at the end of a day is not "24".
    if hour > 23:
        return f"hour {hour:02d} is not 00-23"
    if minute > 59:
        return f"minute {minute:02d} is not 00-59"
    if second > 59:
        return f"second {second:02d} is not 00-59"
    return None


def _zone(text: str) -> dt.timezone | str:
    """``+0800`` -> a fixed offset, or the reason it is not one."""
    zone = _ZONES.get(text)
    if zone is not None:
        return zone
    if len(text) != 5 or text[0] not in "+-" or not text[1:].isascii() or not text[1:].isdigit():
        return f"zone {text!r} is not +/-HHMM"
    hours, minutes = int(text[1:3]), int(text[3:5])
    if minutes > 59:
        return f"zone {text}: minute {minutes:02d} is not 00-59"
    offset = dt.timedelta(hours=hours, minutes=minutes)
    # Real UTC offsets run from -12:00 to +14:00; anything else is a typing error, not a place.
    if offset > dt.timedelta(hours=14) or (text[0] == "-" and offset > dt.timedelta(hours=12)):
        return f"zone {text} is not a UTC offset (-1200 to +1400)"
    zone = dt.timezone(-offset if text[0] == "-" else offset)
    _ZONES[text] = zone
    return zone


def parse_zone(text: str) -> dt.timezone:
    """``+0800`` / ``-0500`` -> a fixed-offset ``timezone``; ValueRejected when it is not one."""
    zone = _zone(text.strip())
    if isinstance(zone, str):
        raise ValueRejected(zone, text)
    return zone


def _fields(text: str, what: str) -> tuple[str, re.Match[str]]:
    s = text.strip()
    m = _DTM.fullmatch(s)
    if m is None:
        hint = "; it looks like ISO 8601: use iso_date / iso_datetime" if ("-" in s[:8] or ":" in s) else ""
        raise ValueRejected(f"{s!r}: not an HL7 {what} ({_SHAPE}){hint}", text)
    if m.group(3) is None:
        got = _PRECISION[1 if m.group(2) is None else 2]
        raise ValueRejected(
            f"{s!r}: a {'date and time' if what == 'DTM' else 'date'} needs at least "
            f"year, month and day; this value gives only {got}",
            text,
        )
    return s, m


def parse_datetime(text: str, assume_zone: dt.tzinfo | None = None) -> dt.datetime:
    """An HL7 DTM/TS -> ``datetime``: aware when the value has a zone, else in ``assume_zone`` (or naive).

    Missing hours, minutes and seconds are zero; fractions of a second (up to 4 digits) become
    microseconds. A value with a zone keeps that zone: it is not converted to ``assume_zone``.
    """
    s, m = _fields(text, "DTM")
    y, mo, d, h, mi, se, fraction, zone_text = m.groups()
    year, month, day = int(y), int(mo), int(d)
    hour = int(h) if h else 0
    minute = int(mi) if mi else 0
    second = int(se) if se else 0
    if not (1 <= month <= 12 and 1 <= day <= 28 and hour < 24 and minute < 60 and second < 60):
        problem = calendar_problem(year, month, day) or _time_problem(hour, minute, second)
        if problem is not None:
            raise ValueRejected(f"{s!r}: {problem}", text)
    micro = int(fraction.ljust(6, "0")) if fraction else 0
    tz: dt.tzinfo | None = assume_zone
    if zone_text is not None:
        zone = _zone(zone_text)
        if isinstance(zone, str):
            raise ValueRejected(f"{s!r}: {zone}", text)
        tz = zone
    return dt.datetime(year, month, day, hour, minute, second, micro, tzinfo=tz)


def parse_date(text: str) -> dt.date:
    """An HL7 DT, or the date part of a DTM/TS, as written (a zone does not shift the day)."""
    s, m = _fields(text, "DT")
    y, mo, d, h, mi, se, _, zone_text = m.groups()
    year, month, day = int(y), int(mo), int(d)
    problem = calendar_problem(year, month, day)
    if problem is None and h is not None:
        # The time is dropped, but a date/time that is itself impossible is still a sender's error.
        problem = _time_problem(int(h), int(mi) if mi else 0, int(se) if se else 0)
        if problem is None and zone_text is not None:
            zone = _zone(zone_text)
            problem = zone if isinstance(zone, str) else None
    if problem is not None:
        raise ValueRejected(f"{s!r}: {problem}", text)
    return dt.date(year, month, day)


def _iso_problem(s: str, kind: str) -> ValueRejected:
    """Explain why ``fromisoformat`` refused a string: a calendar mistake if we can see one."""
    m = _ISO_DAY.match(s)
    if m is not None:
        problem = calendar_problem(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        if problem is not None:
            return ValueRejected(f"{s!r}: {problem}", s)
    shape = "YYYY-MM-DD" if kind == "date" else "YYYY-MM-DDTHH:MM[:SS[.ffffff]][+HH:MM|Z]"
    return ValueRejected(f"{s!r}: not an ISO 8601 {kind} ({shape})", s)


def parse_iso_date(text: str) -> dt.date:
    """ISO 8601 date (``2026-02-03``; a date-time gives its date part as written)."""
    s = text.strip()
    try:
        if len(s) > 10 and s[10] in "T ":
            return dt.datetime.fromisoformat(s).date()
        return dt.date.fromisoformat(s)
    except ValueError:
        raise _iso_problem(s, "date") from None


def parse_iso_datetime(text: str, assume_zone: dt.tzinfo | None = None) -> dt.datetime:
    """ISO 8601 date-time (``2026-02-03T10:05:00+08:00``, ``...Z``); naive values get ``assume_zone``."""
    s = text.strip()
    try:
        value = dt.datetime.fromisoformat(s)
    except ValueError:
        raise _iso_problem(s, "date and time") from None
    if value.tzinfo is None and assume_zone is not None:
        value = value.replace(tzinfo=assume_zone)
    return value


def format_datetime(value: dt.date) -> str:
    """DTM to the second (``20260203100500+0800``); the zone only when the datetime is aware.

    A ``date`` is written to the day (``20260203``), which DTM allows. Fractions of a second are
    dropped: receivers in the region expect 14 digits.
    """
    if not isinstance(value, dt.datetime):
        return f"{value.year:04d}{value.month:02d}{value.day:02d}"
    text = (
        f"{value.year:04d}{value.month:02d}{value.day:02d}"
        f"{value.hour:02d}{value.minute:02d}{value.second:02d}"
    )
    offset = value.utcoffset()
    if offset is None:
        return text
    minutes = int(offset.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    hours, minutes = divmod(abs(minutes), 60)
    return f"{text}{sign}{hours:02d}{minutes:02d}"


def format_date(value: dt.date) -> str:
    """DT (``20260203``); a datetime gives its own date, in its own zone."""
    return f"{value.year:04d}{value.month:02d}{value.day:02d}"
