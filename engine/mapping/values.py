"""Small pieces of a rule's value path: code-table lookups on the hot path, and fix-it hints.

``table_lookup`` turns a code table into one call per value (a dict lookup) that writes a coded
value (code, system OID, display) or a plain code, and passes the table's warnings on.
``type_hint`` says how to fix a type mismatch found at load time ("add transform hl7_date").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from engine.mapping.codetables import CodeTable
from engine.mapping.types import is_coded

__all__ = ["table_lookup", "type_hint"]


def table_lookup(table: CodeTable, coded: bool) -> Callable[[Any, list[str]], Any]:
    """A code table on the hot path: one dict lookup, a warning when the table says to pass with one."""
    lookup = table.lookup

    def run(value: Any, warnings: list[str]) -> Any:
        code = value.code if hasattr(value, "code") else str(value)
        outcome = lookup(code)
        if outcome.warning:
            warnings.append(outcome.warning)
        if outcome.code is None:
            return None
        if not coded:
            return outcome.code
        item = {"code": outcome.code}
        if outcome.system:
            item["system"] = outcome.system
        if outcome.display:
            item["display"] = outcome.display
        return item

    return run


def type_hint(target: Any, produced: Any) -> str:
    if target is dt.date and produced is str:
        return ": add transform hl7_date (or iso_date)"
    if target is dt.datetime and produced is str:
        return ": add transform hl7_datetime (or iso_datetime)"
    if target is dt.date and produced is dt.datetime:
        return ": use hl7_date to keep only the date"
    if target is dt.datetime and produced is dt.date:
        return ": use hl7_datetime to keep the time"
    if target is str and produced in (dt.date, dt.datetime):
        return ": add transform to_hl7_date / to_hl7_datetime or format_date"
    if target is str and is_coded(produced):
        return ": read its .code, or map it through a table"
    return ""
