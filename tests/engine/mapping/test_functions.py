"""The transform registry (lookup, bind, register) and every built-in function."""

from __future__ import annotations

import datetime as dt
import importlib
import sys
import textwrap
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from engine.mapping.errors import DefinitionError, ValueRejected
from engine.mapping.functions import FUNCTIONS, FunctionSpec, lookup, register

CST = dt.timezone(dt.timedelta(hours=8))


def run(name: str, arg: object, value: Any) -> Any:
    return lookup(name).bind(arg)(value)


def rejects(name: str, arg: object, value: Any) -> str:
    step = lookup(name).bind(arg)
    with pytest.raises(ValueRejected) as info:
        step(value)
    return info.value.message


def refused(name: str, arg: object) -> str:
    with pytest.raises(DefinitionError) as info:
        lookup(name).bind(arg)
    return info.value.message


@pytest.fixture
def scratch() -> Iterator[list[str]]:
    """Names registered by a test, removed afterwards so the registry stays as shipped."""
    added: list[str] = []
    yield added
    for name in added:
        FUNCTIONS.pop(name, None)


# -- registry ------------------------------------------------------------------------------------------
def test_unknown_function_suggests_the_closest_name() -> None:
    with pytest.raises(DefinitionError) as info:
        lookup("trm")
    message = info.value.message
    assert message.startswith("unknown function 'trm' (did you mean 'trim'?); known: digits_only, ")
    assert "id_card, " in message


def test_unknown_function_without_a_close_name() -> None:
    with pytest.raises(DefinitionError, match=r"^unknown function 'xyzzy'; known: digits_only, "):
        lookup("xyzzy")


def test_rule_keys_are_not_functions() -> None:
    assert "default" not in FUNCTIONS and "constant" not in FUNCTIONS
    with pytest.raises(DefinitionError, match=r"^default is a key of the rule \(default: ...\), not a"):
        lookup("default")


def test_every_builtin_has_a_one_line_doc() -> None:
    expected = {
        "trim",
        "upper",
        "lower",
        "pad",
        "truncate",
        "replace",
        "regex_extract",
        "regex_replace",
        "fullwidth_to_ascii",
        "strip_spaces",
        "split",
        "digits_only",
        "to_int",
        "to_decimal",
        "to_bool",
        "hl7_datetime",
        "hl7_date",
        "iso_date",
        "iso_datetime",
        "format_date",
        "to_hl7_datetime",
        "to_hl7_date",
        "family_name",
        "given_name",
        "join_name",
        "id_card",
        "id_card_lenient",
        "id_card_birth_date",
        "id_card_sex",
    }
    assert expected <= set(FUNCTIONS)
    for spec in FUNCTIONS.values():
        assert spec.doc and "\n" not in spec.doc


def test_declared_types_for_load_time_checks() -> None:
    assert lookup("hl7_datetime").returns is dt.datetime
    assert lookup("hl7_date").returns is dt.date
    assert lookup("id_card_birth_date").returns is dt.date
    assert lookup("to_int").returns is int
    assert lookup("to_decimal").returns is Decimal
    assert lookup("to_bool").returns is bool
    assert lookup("to_hl7_datetime").accepts == (dt.datetime, dt.date)
    assert lookup("trim").accepts == (str,)


def test_signature_lists_arguments_and_defaults() -> None:
    assert lookup("pad").signature == "pad(width, char=' ', side='right')"
    assert lookup("trim").signature == "trim"


def test_a_function_needing_arguments_refuses_none() -> None:
    assert refused("pad", None) == (
        "pad needs an argument: width (it takes pad(width, char=' ', side='right'))"
    )
    assert refused("split", None) == "split needs an argument: separator (it takes split(separator, index=1))"


def test_bad_arguments_are_named() -> None:
    assert refused("pad", {"width": "ten"}) == (
        "pad: bad argument width='ten': Input should be a valid integer, unable to parse string as an integer"
    )
    assert refused("pad", {"widht": 3}) == (
        "pad: unknown argument 'widht'; did you mean 'width'? (it takes pad(width, char=' ', side='right'))"
    )
    assert refused("pad", {"width": 3, "side": "centre"}) == (
        "pad: bad argument side='centre': Input should be 'left' or 'right'"
    )
    assert refused("pad", {"char": "0"}) == (
        "pad: missing argument width (it takes pad(width, char=' ', side='right'))"
    )
    assert refused("trim", 5) == "trim takes no argument, but was given 5"
    assert refused("pad", [10, "0"]) == (
        "pad: give one value or a mapping of its arguments: pad(width, char=' ', side='right')"
    )


def test_a_scalar_argument_is_the_first_parameter() -> None:
    assert run("pad", 5, "ab") == "ab   "
    assert run("truncate", 2, "abc") == "ab"


def test_duplicate_registration_is_an_error() -> None:
    with pytest.raises(DefinitionError) as info:

        @register("trim", doc="my own trim")
        def trim(value: str, _: None) -> str:
            return value

    assert info.value.message == (
        "function 'trim' is already registered by engine.mapping.functions._trim; "
        f"{__name__}.test_duplicate_registration_is_an_error.<locals>.trim needs another name"
    )
    assert lookup("trim").fn.__module__ == "engine.mapping.functions"


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("Bad-Name", {}, "a function name is snake_case (letters, digits, _), not 'Bad-Name'"),
        ("default", {}, "'default' is a rule key, not a function name"),
        (
            "two_lines",
            {"doc": "one\ntwo"},
            "function 'two_lines': doc is one line, shown by `hie map --functions`",
        ),
        (
            "bad_params",
            {"params": dict},
            "function 'bad_params': params is a pydantic model class, not <class 'dict'>",
        ),
    ],
)
def test_register_checks_its_arguments(name: str, kwargs: dict[str, Any], message: str) -> None:
    kwargs.setdefault("doc", "a doc")
    with pytest.raises(DefinitionError) as info:
        register(name, **kwargs)
    assert info.value.message == message


class Prefix(BaseModel):
    prefix: str
    separator: str = "-"


def test_user_function_works_through_lookup_and_bind(scratch: list[str]) -> None:
    @register("add_prefix", params=Prefix, doc="prefix the value")
    def add_prefix(value: str, args: Prefix) -> str:
        return f"{args.prefix}{args.separator}{value}"

    scratch.append("add_prefix")
    spec = lookup("add_prefix")
    assert isinstance(spec, FunctionSpec)
    assert spec.bind("HOSP_A")("100001") == "HOSP_A-100001"
    assert spec.bind({"prefix": "B", "separator": "/"})("7") == "B/7"
    with pytest.raises(DefinitionError, match="add_prefix needs an argument: prefix"):
        spec.bind(None)


def test_user_module_registers_on_import_and_may_be_reloaded(tmp_path: Path, scratch: list[str]) -> None:
    (tmp_path / "hosp_functions.py").write_text(
        textwrap.dedent("""
        from engine.mapping.functions import register

        @register("hosp_mrn", doc="medical record number without the hospital prefix")
        def hosp_mrn(value, _):
            return value.removeprefix("MRN")
    """)
    )
    sys.path.insert(0, str(tmp_path))
    try:
        module = importlib.import_module("hosp_functions")
        scratch.append("hosp_mrn")
        assert run("hosp_mrn", None, "MRN100001") == "100001"
        importlib.reload(module)  # the same function registering again is not a duplicate
        assert run("hosp_mrn", None, "MRN7") == "7"
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("hosp_functions", None)


def test_a_failing_user_function_rejects_the_value(scratch: list[str]) -> None:
    @register("broken", doc="divides by zero")
    def broken(value: str, _: None) -> str:
        raise ZeroDivisionError("division by zero")

    scratch.append("broken")
    with pytest.raises(ValueRejected) as info:
        run("broken", None, "x")
    assert info.value.message == "broken failed: ZeroDivisionError: division by zero"
    assert info.value.hl7_code == "207"


def test_a_value_of_the_wrong_type_is_rejected_at_run_time() -> None:
    assert rejects("trim", None, 42) == "trim takes text, not an integer"
    assert rejects("to_hl7_date", None, "19850312") == "to_hl7_date takes a date or a date and time, not text"


def test_an_empty_result_becomes_absent() -> None:
    assert run("trim", None, "   ") is None
    assert run("strip_spaces", None, "\u3000 ") is None
    assert run("digits_only", None, "N/A") is None
    assert run("replace", "-", "--") is None


# -- text ----------------------------------------------------------------------------------------------
def test_case_and_trim() -> None:
    assert run("trim", None, "\u3000 张三 \t") == "张三"
    assert run("upper", None, "hosp_a") == "HOSP_A"
    assert run("lower", None, "HOSP_A") == "hosp_a"


def test_pad() -> None:
    assert run("pad", {"width": 10, "char": "0", "side": "left"}, "12345") == "0000012345"
    assert run("pad", {"width": 10, "char": 0, "side": "left"}, "7") == "0000000007"  # YAML: char: 0
    assert run("pad", {"width": 4, "char": "*"}, "ab") == "ab**"
    assert run("pad", {"width": 2}, "abcdef") == "abcdef"
    assert refused("pad", {"width": 3, "char": "00"}) == (
        "pad: bad argument char='00': String should have at most 1 character"
    )
    assert refused("pad", {"width": 0}) == (
        "pad: bad argument width=0: Input should be greater than or equal to 1"
    )


def test_truncate() -> None:
    assert run("truncate", {"length": 3}, "欧阳娜娜") == "欧阳娜"
    assert run("truncate", 10, "short") == "short"


def test_replace() -> None:
    assert run("replace", {"old": "-", "new": "/"}, "2026-02-03") == "2026/02/03"
    assert run("replace", "-", "320-102") == "320102"
    assert refused("replace", {"old": ""}) == (
        "replace: bad argument old='': String should have at least 1 character"
    )


def test_regex_extract() -> None:
    assert run("regex_extract", r"MRN(\d+)", "MRN100001^^^HOSP_A") == "100001"
    assert run("regex_extract", {"pattern": r"(?P<bed>\d+)床", "group": "bed"}, "内科3病区12床") == "12"
    assert run("regex_extract", {"pattern": r"\d+", "group": 0}, "ward 7") == "7"
    assert rejects("regex_extract", r"MRN(\d+)", "100001") == r"'100001' does not match 'MRN(\\d+)'"
    assert run("regex_extract", {"pattern": r"MRN(\d+)", "required": False}, "100001") is None


def test_regex_extract_arguments_are_checked_at_load_time() -> None:
    assert refused("regex_extract", "(") == (
        "regex_extract: bad argument pattern='(': not a regular expression: "
        "missing ), unterminated subpattern at position 0"
    )
    assert refused("regex_extract", r"\d+") == (
        r"regex_extract: group 1: the pattern '\\d+' has 0 group(s); use group: 0 for the whole match"
    )
    assert refused("regex_extract", {"pattern": r"(\d+)", "group": "bed"}) == (
        r"regex_extract: the pattern '(\\d+)' has no group named 'bed'"
    )


def test_regex_replace() -> None:
    joined = {"pattern": r"(\d{4})-(\d{2})", "replacement": r"\1\2"}
    assert run("regex_replace", joined, "2026-02") == "202602"
    assert run("regex_replace", r"\s+", "a  b\tc") == "abc"
    assert refused("regex_replace", {"pattern": "a", "replacement": r"\1"}) == (
        r"regex_replace: replacement '\\1': invalid group reference 1 at position 1"
    )


def test_fullwidth_to_ascii() -> None:
    assert run("fullwidth_to_ascii", None, "ＡＢｃ１２３\u3000号") == "ABc123 号"
    assert run("fullwidth_to_ascii", None, "（床）") == "（床）"  # punctuation is left as written


def test_strip_spaces() -> None:
    assert run("strip_spaces", None, " 3201 02\u300019850312\u200b0012 ") == "320102198503120012"


def test_split() -> None:
    assert run("split", "^", "ZHANG^SAN") == "ZHANG"
    assert run("split", {"separator": "^", "index": 2}, "ZHANG^SAN") == "SAN"
    assert run("split", {"separator": "^", "index": -1}, "A^B^C") == "C"
    assert run("split", {"separator": "^", "index": 3}, "ZHANG^SAN") is None
    assert refused("split", {"separator": "^", "index": 0}) == (
        "split: bad argument index=0: pieces count from 1 (-1 is the last)"
    )


def test_digits_only() -> None:
    assert run("digits_only", None, "Tel: 025-8888 ６６６６") == "02588886666"


# -- numbers and booleans --------------------------------------------------------------------------------
def test_to_int() -> None:
    assert run("to_int", None, " +42 ") == 42
    assert run("to_int", None, "-7") == -7
    assert run("to_int", None, 3.0) == 3
    assert run("to_int", None, Decimal("12")) == 12
    assert rejects("to_int", None, "4.5") == "'4.5' is not a whole number"
    assert rejects("to_int", None, "1_000") == "'1_000' is not a whole number"
    assert rejects("to_int", None, 4.5) == "4.5 is not a whole number"


def test_to_decimal() -> None:
    assert run("to_decimal", None, "36.5") == Decimal("36.5")
    assert run("to_decimal", None, " -1.2e3 ") == Decimal("-1.2e3")
    assert run("to_decimal", None, 0.1) == Decimal("0.1")  # not 0.1000000000000000055...
    assert run("to_decimal", None, 7) == Decimal(7)
    assert rejects("to_decimal", None, "36,5") == (
        "'36,5' is not a decimal number (the decimal separator is '.')"
    )
    assert rejects("to_decimal", None, "NaN") == "'NaN' is not a decimal number"
    assert rejects("to_decimal", None, float("inf")) == "inf is not a decimal number"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Y", True),
        ("n", False),
        ("T", True),
        ("F", False),
        ("1", True),
        ("0", False),
        ("是", True),
        ("否", False),
        ("true", True),
        ("FALSE", False),
        ("yes", True),
        (" N ", False),
        (1, True),
        (False, False),
    ],
)
def test_to_bool(text: Any, expected: bool) -> None:
    assert run("to_bool", None, text) is expected


def test_to_bool_rejects_anything_else() -> None:
    assert rejects("to_bool", None, "maybe") == (
        "'maybe' is not a yes/no value (Y/N, T/F, 1/0, 是/否, true/false)"
    )
    assert rejects("to_bool", None, 2) == "2 is not a yes/no value (Y/N, T/F, 1/0, 是/否, true/false)"


# -- dates --------------------------------------------------------------------------------------------------
def test_hl7_datetime() -> None:
    assert run("hl7_datetime", None, "20260203100500") == dt.datetime(2026, 2, 3, 10, 5)
    assert run("hl7_datetime", None, "20260203100500+0800") == dt.datetime(2026, 2, 3, 10, 5, tzinfo=CST)
    assumed = run("hl7_datetime", {"assume_zone": "+0800"}, "20260203100500")
    assert assumed == dt.datetime(2026, 2, 3, 10, 5, tzinfo=CST)
    shanghai = run("hl7_datetime", {"assume_zone": "Asia/Shanghai"}, "20260203100500")
    assert shanghai.utcoffset() == dt.timedelta(hours=8)
    assert rejects("hl7_datetime", None, "20260230") == "'20260230': day 30 is not in February 2026"
    assert rejects("hl7_datetime", None, "202602") == (
        "'202602': a date and time needs at least year, month and day; "
        "this value gives only the year and month"
    )


def test_assume_zone_is_checked_at_load_time() -> None:
    assert refused("hl7_datetime", {"assume_zone": "+08:00"}) == (
        "hl7_datetime: bad argument assume_zone='+08:00': zone '+08:00' is not +/-HHMM"
    )
    assert refused("hl7_datetime", {"assume_zone": 448}) == (
        'hl7_datetime: bad argument assume_zone=448: write the zone as quoted text, e.g. "+0800" '
        "(YAML reads +0700 as a number)"
    )
    assert refused("hl7_datetime", {"assume_zone": "Mars/Olympus"}) == (
        "hl7_datetime: bad argument assume_zone='Mars/Olympus': "
        "'Mars/Olympus' is not an offset like \"+0800\" nor a zone like Asia/Shanghai"
    )


def test_hl7_date() -> None:
    assert run("hl7_date", None, "19850312") == dt.date(1985, 3, 12)
    assert run("hl7_date", None, "198503120830+0800") == dt.date(1985, 3, 12)
    assert rejects("hl7_date", None, "19851301") == "'19851301': month 13 is not 01-12"


def test_iso_date_and_datetime() -> None:
    assert run("iso_date", None, "1985-03-12") == dt.date(1985, 3, 12)
    expected = dt.datetime(2026, 2, 3, 10, 5, tzinfo=CST)
    assert run("iso_datetime", None, "2026-02-03T10:05:00+08:00") == expected
    assert run("iso_datetime", {"assume_zone": "+0800"}, "2026-02-03T10:05:00").tzinfo == CST
    assert rejects("iso_date", None, "2026-02-30") == "'2026-02-30': day 30 is not in February 2026"


def test_format_date() -> None:
    moment = dt.datetime(2026, 2, 3, 10, 5, 9, tzinfo=CST)
    assert run("format_date", "%Y-%m-%d", moment) == "2026-02-03"
    assert run("format_date", {"format": "%Y年%m月%d日"}, dt.date(1985, 3, 12)) == "1985年03月12日"
    assert run("format_date", "hl7_dtm", moment) == "20260203100509+0800"
    assert run("format_date", "hl7_dt", moment) == "20260203"
    assert refused("format_date", "YYYYMMDD") == (
        "format_date: bad argument format='YYYYMMDD': a strftime format has % directives (%Y%m%d), "
        "or is hl7_dtm / hl7_dt"
    )


def test_to_hl7_datetime_and_date() -> None:
    assert run("to_hl7_datetime", None, dt.datetime(2026, 2, 3, 10, 5, 9, 500)) == "20260203100509"
    assert run("to_hl7_datetime", None, dt.datetime(2026, 2, 3, 10, 5, tzinfo=CST)) == "20260203100500+0800"
    utc = dt.datetime(2026, 2, 3, 2, 5, tzinfo=dt.UTC)
    assert run("to_hl7_datetime", {"zone": "+0800"}, utc) == "20260203100500+0800"
    assert run("to_hl7_datetime", None, dt.date(2026, 2, 3)) == "20260203"
    assert run("to_hl7_date", None, dt.date(1985, 3, 12)) == "19850312"
    assert run("to_hl7_date", None, dt.datetime(1985, 3, 12, 23, 59)) == "19850312"


# -- names ---------------------------------------------------------------------------------------------------
def test_family_and_given_name() -> None:
    assert run("family_name", None, "欧阳娜娜") == "欧阳"
    assert run("given_name", None, "欧阳娜娜") == "娜娜"
    assert run("family_name", None, "ZHANG SAN") == "ZHANG"
    assert run("given_name", None, "Zhang San") == "San"
    assert run("family_name", None, "买买提·艾力") is None
    assert run("given_name", None, "买买提·艾力") is None


class HumanName(BaseModel):
    family: str | None = None
    given: list[str] = []


def test_join_name() -> None:
    assert run("join_name", None, {"family": "张", "given": "三"}) == "张三"
    assert run("join_name", None, ("ZHANG", "SAN")) == "ZHANG SAN"
    assert run("join_name", None, HumanName(family="Zhang", given=["San"])) == "Zhang San"
    assert run("join_name", None, HumanName(given=["娜娜"])) == "娜娜"
    assert run("join_name", None, "买买提·艾力") == "买买提·艾力"
    assert rejects("join_name", None, {"family": 1}) == (
        "join_name takes a name with family and given text, not {'family': 1}"
    )


# -- resident ID card numbers -------------------------------------------------------------------------
def test_id_card() -> None:
    assert run("id_card", None, " 320102 19850312 0012") == "320102198503120012"
    assert run("id_card", None, "32010219490101003x") == "32010219490101003X"
    assert run("id_card", None, "320102850312001") == "320102198503120012"  # 15 digits upgraded
    assert rejects("id_card", None, "320102198503120015") == (
        "ID card number: check character '2' expected but '5' found"
    )
    assert rejects("id_card", None, "111111111111111111") == "ID card number is a placeholder (1 repeated)"


def test_id_card_lenient_never_rejects() -> None:
    assert run("id_card_lenient", None, "３２０１０２１９４９０１０１００３ｘ") == "32010219490101003X"
    assert run("id_card_lenient", None, "320102198503120015") == "320102198503120015"
    assert run("id_card_lenient", None, "unknown") == "UNKNOWN"
    assert run("id_card_lenient", None, "\u3000") is None


def test_id_card_birth_date_and_sex() -> None:
    assert run("id_card_birth_date", None, "320102198503120012") == dt.date(1985, 3, 12)
    assert run("id_card_sex", None, "320102198503120012") == "1"
    assert run("id_card_sex", None, "320102199005060023") == "2"
    assert rejects("id_card_birth_date", None, "3201021985031200") == (
        "ID card number has 16 characters; it has 18 (15 in the 1989 format)"
    )
