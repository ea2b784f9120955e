"""Query parameters of the API, checked: a bad one is a 400 naming it, never a 500."""

from __future__ import annotations

from datetime import datetime

from starlette.datastructures import QueryParams

from engine.cli.output import parse_when

__all__ = ["SEARCH_FILTERS", "BadParameter", "integer", "text", "when"]

# the message search's filters: GET /messages's query parameters, POST /reprocess's "filter" keys
SEARCH_FILTERS = (
    "channel",
    "status",
    "since",
    "until",
    "control_id",
    "patient_id",
    "type",
    "facility",
    "destination",
    "text",
)

_MAX_TEXT = 200


class BadParameter(ValueError):
    pass


def text(params: QueryParams, name: str) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if len(value) > _MAX_TEXT:
        raise BadParameter(f"{name}: longer than {_MAX_TEXT} characters")
    return value


def integer(params: QueryParams, name: str, *, low: int, high: int, default: int | None = None) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise BadParameter(f"{name}: not an integer") from None
    if not low <= number <= high:
        raise BadParameter(f"{name}: must be between {low} and {high}")
    return number


def when(params: QueryParams, name: str) -> datetime | None:
    value = text(params, name)
    if value is None:
        return None
    try:
        return parse_when(value)
    except ValueError:
        raise BadParameter(
            f"{name}: expected a date (2026-11-22), a date and time (2026-11-22T08:30+08:00) "
            "or a time ago (2h, 7d)"
        ) from None
