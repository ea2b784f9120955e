"""Resident ID card numbers: check character, normalising, parsing, rejections, consistency checks."""

from __future__ import annotations

import datetime as dt

import pytest

from engine.mapping.errors import ValueRejected
from engine.mapping.gb11643 import IdCard, check_character, check_id_card, is_valid, normalise, parse

TODAY = dt.date(2026, 11, 22)


def number(first17: str) -> str:
    """A synthetic number made valid by our own check function."""
    return first17 + check_character(first17)


# Region 320102 (Nanjing, Xuanwu), synthetic sequences.
MAN = number("32010219850312001")  # born 1985-03-12, sequence 001: odd -> male
WOMAN = number("32010219900506002")  # born 1990-05-06, sequence 002: even -> female
LEAP = number("32010220000229004")  # born on 29 February of a leap year
CHECK_X = number("32010219490101003")


def rejected(raw: str) -> str:
    with pytest.raises(ValueRejected) as info:
        parse(raw, today=TODAY)
    assert info.value.hl7_code == "102"
    assert info.value.value == raw
    return info.value.message


def test_check_character_examples_of_the_reference_notes() -> None:
    assert check_character("11010519491231002") == "X"
    assert check_character("44052418800101001") == "4"


def test_check_character_of_generated_numbers() -> None:
    assert MAN == "320102198503120012"
    assert WOMAN == "320102199005060023"
    assert CHECK_X.endswith("X")


def test_check_character_needs_17_digits() -> None:
    with pytest.raises(ValueRejected, match="computed from 17 digits, not '3201021985031200'"):
        check_character("3201021985031200")
    with pytest.raises(ValueRejected, match="17 digits"):
        check_character("3201021985031200A")


def test_parse_reads_region_birth_date_and_sex() -> None:
    assert parse(MAN, today=TODAY) == IdCard(MAN, "320102", dt.date(1985, 3, 12), "1", False)
    woman = parse(WOMAN, today=TODAY)
    assert (woman.birth_date, woman.sex) == (dt.date(1990, 5, 6), "2")
    assert parse(LEAP, today=TODAY).birth_date == dt.date(2000, 2, 29)


def test_normalise_strips_spaces_full_width_and_lower_x() -> None:
    assert normalise(" 320102 19490101 003x ") == CHECK_X
    assert normalise("３２０１０２１９４９０１０１００３ｘ") == CHECK_X
    assert normalise("320102\u300019490101003X") == CHECK_X
    assert parse("３２０１０２ １９８５０３１２ ００１２", today=TODAY).number == MAN


def test_fifteen_digit_numbers_are_upgraded() -> None:
    card = parse("320102850312001", today=TODAY)
    assert card.number == MAN
    assert card.upgraded_from_15
    assert (card.birth_date, card.sex) == (dt.date(1985, 3, 12), "1")
    assert parse("320102900506002", today=TODAY).sex == "2"  # the 15th digit is the sex digit


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "ID card number is empty"),
        ("  ", "ID card number is empty"),
        ("3201021985031200", "ID card number has 16 characters; it has 18 (15 in the 1989 format)"),
        ("3201021985031200123", "ID card number has 19 characters; it has 18 (15 in the 1989 format)"),
        ("32010219850312O012", "ID card number: character 15 'O' is not a digit"),
        ("32010219850312001Y", "ID card number: check character 'Y' is not a digit or X"),
        ("32010285031200A", "ID card number: character 15 'A' is not a digit"),
        ("320102198503120015", "ID card number: check character '2' expected but '5' found"),
        ("110105194912310025", "ID card number: check character 'X' expected but '5' found"),
        (
            "320102198502300011",
            "ID card number: birth date 19850230 is not a date: day 30 is not in February 1985",
        ),
        ("320102198513010011", "ID card number: birth date 19851301 is not a date: month 13 is not 01-12"),
        ("320102202701010011", "ID card number: birth date 2027-01-01 is in the future"),
        ("990102198503120011", "ID card number: address code 990102 has no province 99 in GB/T 2260"),
        ("111111111111111111", "ID card number is a placeholder (1 repeated)"),
        ("000000000000000000", "ID card number is a placeholder (0 repeated)"),
        ("00000000000000000X", "ID card number is a placeholder (0 repeated)"),
        ("000000000000000", "ID card number is a placeholder (0 repeated)"),
        ("320102********0012", "ID card number is masked"),
        ("3201XXXXXXXXXXXXXX", "ID card number is masked"),
        ("ID0000012345", "ID card number is a placeholder (starts with 'ID')"),
    ],
)
def test_rejections_say_what_is_wrong(raw: str, message: str) -> None:
    assert rejected(raw) == message
    assert not is_valid(raw, today=TODAY)


def test_a_birth_date_of_today_is_not_future() -> None:
    born_today = number("32010220261122001")
    assert parse(born_today, today=TODAY).birth_date == TODAY
    assert not is_valid(born_today, today=TODAY - dt.timedelta(days=1))


def test_today_defaults_to_the_date_in_beijing() -> None:
    # A number cannot be born after the real today, whichever time zone the server runs in.
    tomorrow = dt.datetime.now(dt.timezone(dt.timedelta(hours=8))).date() + dt.timedelta(days=1)
    assert not is_valid(number(f"320102{tomorrow:%Y%m%d}001"))
    assert is_valid(MAN)


def test_is_valid_normalises_first() -> None:
    assert is_valid(" 320102 19490101 003x", today=TODAY)
    assert not is_valid("320102198503120013", today=TODAY)


def test_check_id_card_agreeing_values_give_nothing() -> None:
    assert check_id_card(MAN, dt.date(1985, 3, 12), "1", today=TODAY) == []
    assert check_id_card(WOMAN, dt.datetime(1990, 5, 6, 8, 30), "F", today=TODAY) == []
    assert check_id_card(MAN, None, None, today=TODAY) == []


def test_check_id_card_names_each_disagreement() -> None:
    found = check_id_card(
        MAN, dt.date(1985, 3, 21), "2", birth_date_source="PID-7", sex_source="PID-8", today=TODAY
    )
    assert found == [
        "ID card says born 1985-03-12, PID-7 says 1985-03-21",
        "ID card says male, PID-8 says female ('2')",
    ]
    assert check_id_card(WOMAN, None, "M", today=TODAY) == ["ID card says female, the sex says male ('M')"]
    assert check_id_card(WOMAN, None, "男", today=TODAY) == ["ID card says female, the sex says male ('男')"]
    assert check_id_card(MAN, dt.date(1985, 3, 13), None, today=TODAY) == [
        "ID card says born 1985-03-12, the birth date says 1985-03-13"
    ]


def test_check_id_card_unknown_sex_is_not_a_disagreement() -> None:
    for sex in ("0", "9", "U", "", "X"):
        assert check_id_card(MAN, None, sex, today=TODAY) == []


def test_check_id_card_reports_an_invalid_number() -> None:
    assert check_id_card("320102198503120015", dt.date(1985, 3, 12), "1", today=TODAY) == [
        "ID card number: check character '2' expected but '5' found"
    ]
