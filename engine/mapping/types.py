"""Load-time type checking: what a rule produces against what its target takes.

Every input path yields text (HL7 v2, XML) or a known type (a field of an input model); every
transform declares what it accepts and returns; every output field has a type. Checking the chain
when a mapping is loaded means ``hie check`` reports "patient.birth_date is a date but PID.7 gives
text: add transform hl7_date" instead of a message failing at three in the morning.
"""

from __future__ import annotations

import datetime as dt
import types
import typing
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

__all__ = ["accepts", "describe", "is_coded", "model_field_type", "unwrap"]

_NAMES: dict[Any, str] = {
    str: "text",
    int: "an integer",
    float: "a number",
    Decimal: "a decimal",
    bool: "true/false",
    dt.date: "a date",
    dt.datetime: "a date and time",
    object: "any value",
}


def describe(t: Any) -> str:
    if isinstance(t, type) and issubclass(t, BaseModel):
        return "a coded value" if is_coded(t) else f"a {t.__name__}"
    origin = typing.get_origin(t)
    if origin is list:
        (item,) = typing.get_args(t) or (object,)
        return f"a list of {describe(item).removeprefix('a ').removeprefix('an ')}"
    return _NAMES.get(t, getattr(t, "__name__", str(t)))


def unwrap(t: Any) -> Any:
    """``X | None`` -> X; ``Annotated[X, ...]`` -> X."""
    while True:
        origin = typing.get_origin(t)
        if origin is typing.Annotated:
            t = typing.get_args(t)[0]
            continue
        if origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(t) if a is not type(None)]
            if len(args) == 1:
                t = args[0]
                continue
            return object  # a real union: accept anything, pydantic decides
        return t


def is_coded(t: Any) -> bool:
    """A coded value is a model with ``code`` and ``system`` fields (e.g. the platform's Coded)."""
    return isinstance(t, type) and issubclass(t, BaseModel) and {"code", "system"} <= set(t.model_fields)


def list_item(t: Any) -> Any | None:
    t = unwrap(t)
    if typing.get_origin(t) is list:
        args = typing.get_args(t)
        return unwrap(args[0]) if args else object
    return None


def model_field_type(model: type[BaseModel], name: str) -> Any:
    """The (unwrapped) type of one field; KeyError when the model has no such field."""
    field = model.model_fields.get(name)
    if field is None:
        for fname, f in model.model_fields.items():  # also accept the alias
            if f.alias == name:
                field = model.model_fields[fname]
                break
    if field is None:
        raise KeyError(name)
    return unwrap(field.annotation)


def accepts(target: Any, produced: Any) -> bool:
    """Can a value of type ``produced`` be written where ``target`` is expected?"""
    target, produced = unwrap(target), unwrap(produced)
    if target is object or produced is object or target is Any or produced is Any:
        return True
    if target is produced:
        return True
    if target is dt.date:
        return produced is dt.date  # a datetime would lose its time silently: say so instead
    if target is Decimal or target is float:
        return produced in (int, float, Decimal)
    if isinstance(target, type) and isinstance(produced, type):
        try:
            return issubclass(produced, target)
        except TypeError:
            return False
    return False
