"""Conditions on a message, shared by the filter and route steps.

Header conditions (message type, sending facility/application) read MSH without a full parse;
``fields`` conditions read any field by path and trigger the full parse once.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, field_validator, model_validator

from engine.hl7v2.path import FieldPath
from engine.message import Message
from engine.steps.base import StepOptions

__all__ = ["Criteria", "FieldCondition"]


class FieldCondition(StepOptions):
    path: str = Field(description="SEG.field[.component[.subcomponent]], e.g. PID.8 or MSH.4.1")
    equals: str | None = None
    not_equals: str | None = None
    in_: list[str] | None = Field(None, alias="in")
    not_in: list[str] | None = None
    matches: str | None = Field(None, description="a regular expression the whole value must match")
    exists: bool | None = Field(None, description="true: the value is not empty; false: it is empty")

    _path: FieldPath
    _regex: re.Pattern[str] | None = None

    @field_validator("path")
    @classmethod
    def _valid_path(cls, v: str) -> str:
        FieldPath.parse(v)
        return v

    @field_validator("matches")
    @classmethod
    def _valid_regex(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(f"bad regular expression: {exc}") from None
        return v

    @model_validator(mode="after")
    def _one_test(self) -> FieldCondition:
        tests = [self.equals, self.not_equals, self.in_, self.not_in, self.matches, self.exists]
        if sum(t is not None for t in tests) != 1:
            raise ValueError("give exactly one of equals, not_equals, in, not_in, matches, exists")
        self._path = FieldPath.parse(self.path)
        self._regex = re.compile(self.matches) if self.matches is not None else None
        return self

    def holds(self, msg: Message) -> bool:
        value = self._path.get(msg.parsed)
        if self.equals is not None:
            return value == self.equals
        if self.not_equals is not None:
            return value != self.not_equals
        if self.in_ is not None:
            return value in self.in_
        if self.not_in is not None:
            return value not in self.not_in
        if self._regex is not None:
            return self._regex.fullmatch(value) is not None
        return bool(value) == self.exists


class Criteria(StepOptions):
    """All given conditions must hold. Lists mean "any of"."""

    message_type: list[str] | None = Field(
        None, description="MSH-9 as CODE^EVENT (ADT^A01), CODE (ADT) or CODE^* ; any of the list"
    )
    sending_application: list[str] | None = None
    sending_facility: list[str] | None = None
    fields: list[FieldCondition] = []

    @field_validator("message_type", "sending_application", "sending_facility", mode="before")
    @classmethod
    def _listify(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    def holds(self, msg: Message) -> bool:
        header = msg.header
        if self.message_type is not None and (
            header is None
            or not any(_type_matches(t, header.message_code, header.trigger_event) for t in self.message_type)
        ):
            return False
        if self.sending_application is not None and (
            header is None or header.sending_application not in self.sending_application
        ):
            return False
        if self.sending_facility is not None and (
            header is None or header.sending_facility not in self.sending_facility
        ):
            return False
        return all(c.holds(msg) for c in self.fields)

    def is_empty(self) -> bool:
        return (
            self.message_type is None
            and self.sending_application is None
            and self.sending_facility is None
            and not self.fields
        )


def _type_matches(pattern: str, code: str, event: str) -> bool:
    want_code, _, want_event = pattern.partition("^")
    if want_code != code:
        return False
    return want_event in ("", "*") or want_event == event
