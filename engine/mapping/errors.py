"""Errors of the mapping engine: one kind found while loading a mapping, one while running it.

``DefinitionError`` is raised at load time (``hie check``, start-up) and carries the key path inside
the YAML document so the loader can name the file and line. ``ValueRejected`` is raised by a
transform or a code table when one value cannot be mapped; the compiled mapping catches it and
re-raises it as ``MappingError`` with the mapping id, the rule and the path, which is what is
recorded on the message and told to the sender (never a stack trace).
"""

from __future__ import annotations

from engine.errors import MessageError

__all__ = ["DefinitionError", "MappingError", "ValueRejected"]


class DefinitionError(ValueError):
    """A mapping or code table file is wrong. ``where`` is the key path inside the YAML document."""

    def __init__(self, message: str, where: tuple[str | int, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.where = where


class ValueRejected(ValueError):
    """One value cannot be transformed (bad date, wrong check digit, unmapped code...).

    ``hl7_code`` is the HL7 table 0357 code the sender is told: 102 data type error, 103 table value
    not found, 101 required field missing.
    """

    def __init__(self, message: str, value: object = None, *, hl7_code: str = "102") -> None:
        super().__init__(message)
        self.message = message
        self.value = value
        self.hl7_code = hl7_code


class MappingError(MessageError):
    """A message cannot be mapped: which mapping, which rule, which path, which value, and why."""

    def __init__(
        self,
        mapping: str,
        rule: str,
        path: str,
        value: object,
        reason: str,
        *,
        hl7_code: str = "207",
        location: str = "",
    ) -> None:
        shown = (
            "" if value is None or repr(value) in reason or f"'{value}'" in reason else f" (value {value!r})"
        )
        super().__init__(
            f"mapping {mapping}, rule {rule}, {path}: {reason}{shown}",
            hl7_code=hl7_code,
            location=location,
        )
        self.mapping = mapping
        self.rule = rule
        self.path = path
        self.value = value
        self.reason = reason
