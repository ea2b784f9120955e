"""Named transform functions of the mapping language, and the registry integrators add theirs to.

A rule's ``transform: [trim, upper, {pad: {width: 10, char: "0", side: left}}, hl7_date]`` is a
list of steps; each names a function here and may give it an argument: one value (the function's
first parameter) or a mapping of its parameters. Arguments are validated once, when the mapping is
loaded (``FunctionSpec.bind``), so a mistake is reported by ``hie check`` with the rule's file and
line; the closure ``bind`` returns is all that runs per message.

Conventions every function follows, so the compiler can rely on them:

- it is never called with None (absent values skip the transforms); it returns None when the value
  becomes absent, and an empty string is turned into None for it, so ``default:``/``required:`` apply;
- a value it cannot take raises ``ValueRejected`` (HL7 table 0357 code 102) whose message says what
  is wrong with the value, since the text is sent back to the hospital in ERR-8;
- ``accepts``/``returns`` declare types, which the compiler checks against the target field at load
  time; ``bind``'s closure also refuses a value of another type at run time (JSON input has no schema).

Integrators add a function from Python with ``@register`` in a module listed under
``engine.functions_modules`` in ``config.yaml``.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
import zoneinfo
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from engine.mapping import gb11643, hl7time, names
from engine.mapping.errors import DefinitionError, ValueRejected
from engine.mapping.types import describe

__all__ = ["FUNCTIONS", "FunctionSpec", "lookup", "register"]

F = TypeVar("F", bound=Callable[..., Any])
_NAME = re.compile(r"[a-z][a-z0-9_]*")
_RULE_KEYS = frozenset({"default", "constant", "value", "table", "required"})


@dataclass(frozen=True)
class FunctionSpec:
    """One named function: what it takes and gives, its arguments, and the code."""

    name: str
    doc: str
    accepts: tuple[type, ...]
    returns: type
    params: type[BaseModel] | None
    fn: Callable[..., Any]

    @property
    def signature(self) -> str:
        """``pad(width, char=' ', side='right')``: for listings and error messages."""
        if self.params is None:
            return self.name
        parts = [n if f.is_required() else f"{n}={f.default!r}" for n, f in self.params.model_fields.items()]
        return f"{self.name}({', '.join(parts)})"

    def bind(self, arg: object) -> Callable[[Any], Any]:
        """Validate the YAML argument now; return the one-argument step that runs per value."""
        args = self._arguments(arg)
        fn, name, kinds = self.fn, self.name, self.accepts
        check = object not in kinds
        takes = " or ".join(describe(k) for k in kinds)

        def step(value: Any) -> Any:
            if check and not isinstance(value, kinds):
                raise ValueRejected(f"{name} takes {takes}, not {describe(type(value))}", value)
            try:
                result = fn(value, args)
            except ValueRejected:
                raise
            except Exception as exc:  # an integrator's bug rejects one message; it must not stop the channel
                reason = f"{name} failed: {type(exc).__name__}: {exc}"
                raise ValueRejected(reason, value, hl7_code="207") from exc
            return None if result == "" else result

        return step

    def _arguments(self, arg: object) -> BaseModel | None:
        params, name = self.params, self.name
        if params is None:
            if arg is None:
                return None
            raise DefinitionError(f"{name} takes no argument, but was given {arg!r}")
        fields = list(params.model_fields)
        if arg is None:
            data: dict[str, object] = {}
        elif isinstance(arg, Mapping):
            data = {str(k): v for k, v in arg.items()}
        elif isinstance(arg, list | tuple | set) or not fields:
            raise DefinitionError(f"{name}: give one value or a mapping of its arguments: {self.signature}")
        else:
            data = {fields[0]: arg}
        try:
            return params.model_validate(data)
        except ValidationError as exc:
            raise DefinitionError(self._explain(exc, arg is None)) from None

    def _explain(self, exc: ValidationError, no_argument: bool) -> str:
        # An unknown key first: "widht" also makes "width" missing, and the typo is the cause.
        errors = sorted(exc.errors(include_url=False), key=lambda e: e["type"] != "extra_forbidden")
        err = errors[0]
        field = ".".join(str(p) for p in err["loc"]) or "argument"
        if err["type"] == "missing":
            if no_argument and self.params is not None:
                required = [n for n, f in self.params.model_fields.items() if f.is_required()]
                return f"{self.name} needs an argument: {', '.join(required)} (it takes {self.signature})"
            return f"{self.name}: missing argument {field} (it takes {self.signature})"
        if err["type"] == "extra_forbidden":
            close = difflib.get_close_matches(field, self.params.model_fields if self.params else (), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            return f"{self.name}: unknown argument {field!r}{hint} (it takes {self.signature})"
        msg = str(err["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
        if not err["loc"]:
            return f"{self.name}: {msg}"
        return f"{self.name}: bad argument {field}={err['input']!r}: {msg}"


FUNCTIONS: dict[str, FunctionSpec] = {}


def register(
    name: str,
    *,
    accepts: tuple[type, ...] = (str,),
    returns: type = str,
    params: type[BaseModel] | None = None,
    doc: str,
) -> Callable[[F], F]:
    """Decorator adding ``fn(value, args)`` to the registry under ``name``.

    ``params`` is a pydantic model of the arguments (its first field is the one a bare value sets);
    ``args`` is an instance of it, or None without ``params``. Registering a name twice is an error,
    except when the same module is imported again (``importlib.reload``).
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise DefinitionError(f"a function name is snake_case (letters, digits, _), not {name!r}")
    if name in _RULE_KEYS:
        raise DefinitionError(f"{name!r} is a rule key, not a function name")
    if not doc.strip() or "\n" in doc.strip():
        raise DefinitionError(f"function {name!r}: doc is one line, shown by `hie map --functions`")
    if params is not None and not (isinstance(params, type) and issubclass(params, BaseModel)):
        raise DefinitionError(f"function {name!r}: params is a pydantic model class, not {params!r}")

    def decorate(fn: F) -> F:
        old = FUNCTIONS.get(name)
        origin = f"{fn.__module__}.{fn.__qualname__}"
        if old is not None and f"{old.fn.__module__}.{old.fn.__qualname__}" != origin:
            raise DefinitionError(
                f"function {name!r} is already registered by {old.fn.__module__}.{old.fn.__qualname__}; "
                f"{origin} needs another name"
            )
        FUNCTIONS[name] = FunctionSpec(name, doc.strip(), tuple(accepts), returns, params, fn)
        return fn

    return decorate


def lookup(name: str) -> FunctionSpec:
    """The function called ``name``; DefinitionError with a suggestion and the known names otherwise."""
    spec = FUNCTIONS.get(name) if isinstance(name, str) else None
    if spec is not None:
        return spec
    known = ", ".join(sorted(FUNCTIONS))
    if name in _RULE_KEYS:
        raise DefinitionError(f"{name} is a key of the rule ({name}: ...), not a transform; known: {known}")
    close = difflib.get_close_matches(str(name), FUNCTIONS, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise DefinitionError(f"unknown function {name!r}{hint}; known: {known}")


class _Args(BaseModel):
    # YAML reads `char: 0` as a number: accept it as the text the integrator meant.
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


def _compile(value: object) -> object:
    if not isinstance(value, str):
        return value
    try:
        return re.compile(value)
    except re.error as exc:
        raise ValueError(f"not a regular expression: {exc}") from None


# -- text --------------------------------------------------------------------------------------------
@register("trim", doc="remove white space (incl. the ideographic space U+3000) at both ends")
def _trim(value: str, _: None) -> str:
    return value.strip()


@register("upper", doc="upper-case")
def _upper(value: str, _: None) -> str:
    return value.upper()


@register("lower", doc="lower-case")
def _lower(value: str, _: None) -> str:
    return value.lower()


class PadArgs(_Args):
    width: int = Field(ge=1)
    char: str = Field(" ", min_length=1, max_length=1)
    side: Literal["left", "right"] = "right"


@register("pad", params=PadArgs, doc="pad to width with char on side (left|right); longer text is kept whole")
def _pad(value: str, a: PadArgs) -> str:
    return value.rjust(a.width, a.char) if a.side == "left" else value.ljust(a.width, a.char)


class TruncateArgs(_Args):
    length: int = Field(ge=1)


@register("truncate", params=TruncateArgs, doc="keep the first length characters")
def _truncate(value: str, a: TruncateArgs) -> str:
    return value[: a.length]


class ReplaceArgs(_Args):
    old: str = Field(min_length=1)
    new: str = ""


@register("replace", params=ReplaceArgs, doc="replace every occurrence of old by new (default: remove it)")
def _replace(value: str, a: ReplaceArgs) -> str:
    return value.replace(a.old, a.new)


class RegexExtractArgs(_Args):
    pattern: re.Pattern[str]
    group: int | str = 1
    required: bool = True

    @field_validator("pattern", mode="before")
    @classmethod
    def _compiled(cls, v: object) -> object:
        return _compile(v)

    @model_validator(mode="after")
    def _group_exists(self) -> RegexExtractArgs:
        g, p = self.group, self.pattern
        if isinstance(g, int) and not 0 <= g <= p.groups:
            raise ValueError(
                f"group {g}: the pattern {p.pattern!r} has {p.groups} group(s); "
                "use group: 0 for the whole match"
            )
        if isinstance(g, str) and g not in p.groupindex:
            raise ValueError(f"the pattern {p.pattern!r} has no group named {g!r}")
        return self


@register(
    "regex_extract",
    params=RegexExtractArgs,
    doc="group (1) of the first match of pattern; no match rejects the value unless required: false",
)
def _regex_extract(value: str, a: RegexExtractArgs) -> str | None:
    m = a.pattern.search(value)
    found = m.group(a.group) if m is not None else None
    if found is None and a.required:
        raise ValueRejected(f"{value!r} does not match {a.pattern.pattern!r}", value)
    return found


class RegexReplaceArgs(_Args):
    pattern: re.Pattern[str]
    replacement: str = ""

    @field_validator("pattern", mode="before")
    @classmethod
    def _compiled(cls, v: object) -> object:
        return _compile(v)

    @model_validator(mode="after")
    def _template_ok(self) -> RegexReplaceArgs:
        try:  # re checks the template's group references against the pattern before matching
            self.pattern.sub(self.replacement, "")
        except (re.error, IndexError) as exc:
            raise ValueError(f"replacement {self.replacement!r}: {exc}") from None
        return self


@register(
    "regex_replace",
    params=RegexReplaceArgs,
    doc="replace every match of pattern by replacement (\\1 refers to a group)",
)
def _regex_replace(value: str, a: RegexReplaceArgs) -> str:
    return a.pattern.sub(a.replacement, value)


# Full-width (全角) digits and Latin letters, and the ideographic space, typed with a Chinese IME.
_HALF_WIDTH = {0xFF10 + i: 0x30 + i for i in range(10)}
_HALF_WIDTH.update({0xFF21 + i: 0x41 + i for i in range(26)})
_HALF_WIDTH.update({0xFF41 + i: 0x61 + i for i in range(26)})
_HALF_WIDTH[0x3000] = 0x20


@register("fullwidth_to_ascii", doc="full-width (全角) digits, letters and space to ASCII (半角)")
def _fullwidth_to_ascii(value: str, _: None) -> str:
    return value.translate(_HALF_WIDTH)


# str.split() already splits on U+3000 and U+00A0; zero-width characters are not white space to it.
_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))


@register("strip_spaces", doc="remove all white space, inside too (incl. U+3000 and zero-width spaces)")
def _strip_spaces(value: str, _: None) -> str:
    return "".join(value.split()).translate(_ZERO_WIDTH)


class SplitArgs(_Args):
    separator: str = Field(min_length=1)
    index: int = 1

    @field_validator("index")
    @classmethod
    def _not_zero(cls, v: int) -> int:
        if v == 0:
            raise ValueError("pieces count from 1 (-1 is the last)")
        return v


@register("split", params=SplitArgs, doc="the index-th piece (from 1; -1 is the last) between separators")
def _split(value: str, a: SplitArgs) -> str | None:
    pieces = value.split(a.separator)
    i = a.index - 1 if a.index > 0 else a.index
    return pieces[i] if -len(pieces) <= i < len(pieces) else None


_NOT_DIGIT = re.compile(r"[^0-9]")


@register("digits_only", doc="keep the digits 0-9 (full-width digits converted), drop everything else")
def _digits_only(value: str, _: None) -> str:
    return _NOT_DIGIT.sub("", value.translate(_HALF_WIDTH))


# -- numbers and booleans ------------------------------------------------------------------------------
_INT = re.compile(r"[+-]?[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_NUMBERS = (str, int, float, Decimal)


@register("to_int", accepts=_NUMBERS, returns=int, doc="a whole number ('42', ' +7 ', 42.0)")
def _to_int(value: str | int | float | Decimal, _: None) -> int:
    if isinstance(value, str):
        s = value.strip()
        if _INT.fullmatch(s):
            return int(s)
    elif (
        isinstance(value, int)
        or (isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value())
        or (isinstance(value, float) and value.is_integer())
    ):
        return int(value)
    raise ValueRejected(f"{value!r} is not a whole number", value)


@register("to_decimal", accepts=_NUMBERS, returns=Decimal, doc="a decimal number ('36.5', '-1.2e3'), exact")
def _to_decimal(value: str | int | float | Decimal, _: None) -> Decimal:
    if isinstance(value, str):
        s = value.strip()
        if _DECIMAL.fullmatch(s):
            return Decimal(s)
        hint = " (the decimal separator is '.')" if "," in s else ""
        raise ValueRejected(f"{value!r} is not a decimal number{hint}", value)
    try:
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    except InvalidOperation:
        raise ValueRejected(f"{value!r} is not a decimal number", value) from None
    if not number.is_finite():
        raise ValueRejected(f"{value!r} is not a decimal number", value)
    return number


_BOOLS = {
    "Y": True,
    "YES": True,
    "T": True,
    "TRUE": True,
    "1": True,
    "是": True,
    "N": False,
    "NO": False,
    "F": False,
    "FALSE": False,
    "0": False,
    "否": False,
}


@register(
    "to_bool", accepts=(str, int, bool), returns=bool, doc="true/false from Y/N, T/F, 1/0, 是/否, true/false"
)
def _to_bool(value: str | int | bool, _: None) -> bool:
    if isinstance(value, bool):
        return value
    found = _BOOLS.get(value.strip().upper() if isinstance(value, str) else str(value))
    if found is None:
        raise ValueRejected(f"{value!r} is not a yes/no value (Y/N, T/F, 1/0, 是/否, true/false)", value)
    return found


# -- dates and times ---------------------------------------------------------------------------------
def _tz(value: object) -> object:
    if value is None or isinstance(value, dt.tzinfo):
        return value
    if isinstance(value, int):  # YAML reads an unquoted +0700 as an octal number
        raise ValueError('write the zone as quoted text, e.g. "+0800" (YAML reads +0700 as a number)')
    text = str(value).strip()
    if text[:1] in ("+", "-"):
        try:
            return hl7time.parse_zone(text)
        except ValueRejected as exc:
            raise ValueError(exc.message) from None
    try:
        return zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(f'{text!r} is not an offset like "+0800" nor a zone like Asia/Shanghai') from None


class ZoneArgs(_Args):
    model_config = ConfigDict(arbitrary_types_allowed=True)
    assume_zone: dt.tzinfo | None = None

    @field_validator("assume_zone", mode="before")
    @classmethod
    def _zone(cls, v: object) -> object:
        return _tz(v)


class ToZoneArgs(_Args):
    model_config = ConfigDict(arbitrary_types_allowed=True)
    zone: dt.tzinfo | None = None

    @field_validator("zone", mode="before")
    @classmethod
    def _zone(cls, v: object) -> object:
        return _tz(v)


@register(
    "hl7_datetime",
    returns=dt.datetime,
    params=ZoneArgs,
    doc="HL7 DTM/TS -> date and time; aware when it has a zone, else in assume_zone (else naive)",
)
def _hl7_datetime(value: str, a: ZoneArgs) -> dt.datetime:
    return hl7time.parse_datetime(value, a.assume_zone)


@register("hl7_date", returns=dt.date, doc="HL7 DT, or the date part of a DTM/TS, -> date")
def _hl7_date(value: str, _: None) -> dt.date:
    return hl7time.parse_date(value)


@register("iso_date", returns=dt.date, doc="ISO 8601 date (2026-02-03) -> date")
def _iso_date(value: str, _: None) -> dt.date:
    return hl7time.parse_iso_date(value)


@register(
    "iso_datetime",
    returns=dt.datetime,
    params=ZoneArgs,
    doc="ISO 8601 date and time (2026-02-03T10:05:00+08:00) -> date and time; assume_zone if naive",
)
def _iso_datetime(value: str, a: ZoneArgs) -> dt.datetime:
    return hl7time.parse_iso_datetime(value, a.assume_zone)


class FormatArgs(_Args):
    format: str

    @field_validator("format")
    @classmethod
    def _usable(cls, v: str) -> str:
        if v in ("hl7_dtm", "hl7_dt"):
            return v
        if "%" not in v:
            raise ValueError("a strftime format has % directives (%Y%m%d), or is hl7_dtm / hl7_dt")
        try:
            dt.datetime(2026, 2, 3, 10, 5).strftime(v)
        except ValueError as exc:
            raise ValueError(f"not a strftime format: {exc}") from None
        return v


@register(
    "format_date",
    accepts=(dt.date, dt.datetime),
    params=FormatArgs,
    doc="date or date and time -> text with a strftime format, or hl7_dtm / hl7_dt",
)
def _format_date(value: dt.date, a: FormatArgs) -> str:
    if a.format == "hl7_dtm":
        return hl7time.format_datetime(value)
    if a.format == "hl7_dt":
        return hl7time.format_date(value)
    return value.strftime(a.format)


@register(
    "to_hl7_datetime",
    accepts=(dt.datetime, dt.date),
    params=ToZoneArgs,
    doc="date and time -> HL7 DTM to the second, with its zone if aware (converted to zone if given)",
)
def _to_hl7_datetime(value: dt.date, a: ToZoneArgs) -> str:
    if a.zone is not None and isinstance(value, dt.datetime) and value.tzinfo is not None:
        value = value.astimezone(a.zone)
    return hl7time.format_datetime(value)


@register("to_hl7_date", accepts=(dt.date, dt.datetime), doc="date -> HL7 DT (YYYYMMDD)")
def _to_hl7_date(value: dt.date, _: None) -> str:
    return hl7time.format_date(value)


# -- names -------------------------------------------------------------------------------------------
@register("family_name", doc="family name of a name written as one string (复姓 aware; none for 买买提·艾力)")
def _family_name(value: str, _: None) -> str | None:
    return names.split_name(value)[0]


@register("given_name", doc="given name of a name written as one string (none when it cannot be split)")
def _given_name(value: str, _: None) -> str | None:
    return names.split_name(value)[1]


def _part(name: object, key: str) -> object:
    part = name.get(key) if isinstance(name, Mapping) else getattr(name, key, None)
    if isinstance(part, list | tuple):  # FHIR HumanName.given is a list
        return " ".join(str(p) for p in part if p) or None
    return part


@register(
    "join_name",
    accepts=(object,),
    doc="family + given of a name (mapping/model/pair): no space between Han characters, one for Latin",
)
def _join_name(value: object, _: None) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple) and len(value) == 2:
        family, given = value
    else:
        family, given = _part(value, "family"), _part(value, "given")
    if not (family is None or isinstance(family, str)) or not (given is None or isinstance(given, str)):
        raise ValueRejected(f"join_name takes a name with family and given text, not {value!r}", value)
    return names.join_name(family, given)


# -- resident ID card numbers (GB 11643-1999) --------------------------------------------------------
@register("id_card", doc="resident ID card number, normalised and checked (15 digits upgraded to 18)")
def _id_card(value: str, _: None) -> str:
    return gb11643.parse(value).number


@register("id_card_lenient", doc="resident ID card number normalised (spaces, 全角, x -> X), never rejected")
def _id_card_lenient(value: str, _: None) -> str:
    return gb11643.normalise(value)


@register("id_card_birth_date", returns=dt.date, doc="birth date written in a (checked) ID card number")
def _id_card_birth_date(value: str, _: None) -> dt.date:
    return gb11643.parse(value).birth_date


@register("id_card_sex", doc="sex in a (checked) ID card number, GB/T 2261.1: 1 male, 2 female")
def _id_card_sex(value: str, _: None) -> str:
    return gb11643.parse(value).sex
