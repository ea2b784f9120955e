"""What the CLI prints and parses: times, aligned tables, message text for a terminal, JSON.

Times given on the command line are local time unless they carry an offset; tables show local time,
``--json`` gives ISO 8601 in UTC.
"""

from __future__ import annotations

import base64
import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

import click
from sqlalchemy.engine import make_url

from engine.hl7v2.charset import codec_for
from engine.hl7v2.peek import segments
from engine.message import ContentType

__all__ = [
    "WHEN",
    "cell",
    "decode",
    "echo_json",
    "format_table",
    "lines",
    "local_time",
    "parse_when",
    "printable",
    "redact",
    "truncate",
]


# -- times ----------------------------------------------------------------------------------------------
_RELATIVE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_when(text: str, *, now: datetime | None = None) -> datetime:
    """``2026-11-22`` (local midnight), ``2026-11-22T08:30[:00][+08:00|Z]`` or ``30m``/``2h``/``7d`` ago.

    Returns an aware UTC datetime. A date or time without an offset is local time.
    """
    now = now or datetime.now(UTC)
    m = _RELATIVE.match(text)
    if m:
        return now - timedelta(**{_UNITS[m.group(2).lower()]: int(m.group(1))})
    value = text.strip()
    if value.lower() == "now":
        return now
    if len(value) == 10:
        day = date.fromisoformat(value)  # ValueError on a bad date
        return datetime.combine(day, time()).astimezone().astimezone(UTC)
    parsed = datetime.fromisoformat(value)
    return parsed.astimezone(UTC)  # naive: astimezone() takes it as local time


if TYPE_CHECKING:
    _ParamType = click.ParamType[datetime]
else:  # click < 8.5 has no generic ParamType
    _ParamType = click.ParamType


class _When(_ParamType):
    name = "TIME"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            return parse_when(str(value))
        except ValueError:
            self.fail(
                f"{value!r}: expected a date (2026-11-22), a date and time (2026-11-22T08:30, "
                "an offset such as +08:00 is allowed) or a time ago (30m, 2h, 7d)",
                param,
                ctx,
            )


WHEN = _When()


def local_time(value: datetime | None) -> str:
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S") if value else ""


# -- output helpers -------------------------------------------------------------------------------------
def _width(text: str) -> int:
    """Terminal columns: CJK names (common in facility fields) take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1 for ch in text)


def _pad(text: str, width: int, right: bool) -> str:
    fill = " " * max(0, width - _width(text))
    return fill + text if right else text + fill


_CONTROL = {i: f"\\x{i:02x}" for i in (*range(0x20), 0x7F, *range(0x80, 0xA0)) if i != 0x09}


def printable(text: str) -> str:
    """Control characters from a sender (ESC sequences...) are shown, not sent to the terminal."""
    return text.translate(_CONTROL)


def cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return printable(text.replace("\r", " ").replace("\n", " ").replace("\t", " "))


def format_table(
    headers: Sequence[str], rows: Iterable[Sequence[Any]], *, right: Iterable[int] = ()
) -> list[str]:
    """Aligned columns separated by two spaces; ``right``: indexes of right-aligned (numeric) columns."""
    cells = [[cell(v) for v in row] for row in rows]
    widths = [_width(h) for h in headers]
    for row in cells:
        for i, value in enumerate(row):
            widths[i] = max(widths[i], _width(value))
    align = set(right)
    out = []
    for row in [list(headers), *cells]:
        line = "  ".join(_pad(v, widths[i], i in align) for i, v in enumerate(row))
        out.append(line.rstrip())
    return out


def truncate(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def decode(data: bytes, charset: str) -> str:
    """Bytes for display: the stored charset, else UTF-8, else the charset with escapes."""
    codec = codec_for(charset) if charset else None
    for candidate in (codec, "utf-8"):
        if candidate:
            try:
                return data.decode(candidate)
            except (UnicodeDecodeError, LookupError):
                continue
    return data.decode(codec or "utf-8", "backslashreplace")


def lines(text: str, content_type: str) -> list[str]:
    """HL7 v2: one segment per line; anything else: its own lines."""
    hl7 = content_type in (ContentType.HL7V2.value, ContentType.BYTES.value)
    parts = segments(text) if hl7 else text.splitlines()
    return [printable(p) for p in parts]


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def echo_json(value: Any) -> None:
    click.echo(json.dumps(_jsonable(value), ensure_ascii=False, indent=2))


def redact(url: str) -> str:
    """A store URL fit for an error message: the password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<store url>"
