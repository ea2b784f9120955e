"""``checks:`` of a mapping: tests on the finished output, run after every rule.

The one kind today is ``id_card``: the GB 11643 number the mapping wrote must agree with the birth
date and sex it wrote (the number encodes both). Hospitals get this wrong often enough (only 5 of 64
ID values in the official WS/T 500 samples pass) that the platform's default is a warning recorded
with the message; ``severity: error`` refuses the message instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.mapping import gb11643
from engine.mapping.errors import MappingError

__all__ = ["OutputCheck", "id_card_check"]

Getter = Callable[[Any], Any]
OutputCheck = Callable[[Any, list[str]], None]  # (output being built, warnings) -> None


def id_card_check(
    mapping_id: str,
    name: str,
    *,
    number: Getter,
    number_path: str,
    birth_date: Getter | None,
    birth_source: str,
    sex: Getter | None,
    sex_source: str,
    severity: str,
) -> OutputCheck:
    """A check comparing the ID number with the birth date and sex written to the output."""

    def run(out: Any, warnings: list[str]) -> None:
        value = number(out)
        if not value:
            return
        birth = birth_date(out) if birth_date is not None else None
        code = sex(out) if sex is not None else None
        if isinstance(code, dict):  # a coded value: its code
            code = code.get("code")
        disagreements = gb11643.check_id_card(
            str(value), birth, code, birth_date_source=birth_source, sex_source=sex_source
        )
        if not disagreements:
            return
        text = "; ".join(disagreements)
        if severity == "error":
            raise MappingError(mapping_id, name, number_path, value, text, hl7_code="207")
        warnings.append(f"{name}: {text}")

    return run
