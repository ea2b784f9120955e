"""Resident ID card numbers (公民身份号码), GB 11643-1999, as written by hospital systems.

The number is the city platform's strongest identity key, so a number that is wrong must never
pass as right: it is checked (length, digits, province of the address code, birth date, ISO 7064
MOD 11-2 check character) and every rejection says precisely what is wrong, because the text goes
back to the sender in ERR-8. Layout (GB 11643-1999 §4): 6-digit address code (GB/T 2260),
8-digit birth date ``YYYYMMDD``, 3-digit sequence whose last digit is odd for men and even for
women, and the check character. Legacy 15-digit numbers (GB 11643-1989) have a 2-digit year and
no check character; they are upgraded the way the issuing authority did: insert ``19`` and
compute the check character.

``check_id_card`` compares the number with the birth date and sex the same message states
elsewhere (PID-7, PID-8): a disagreement usually means the number belongs to someone else
(a parent's card used for a newborn), which the platform wants flagged rather than linked.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from operator import mul

from engine.mapping.errors import ValueRejected
from engine.mapping.hl7time import calendar_problem

__all__ = ["IdCard", "check_character", "check_id_card", "is_valid", "normalise", "parse"]

# ISO 7064 MOD 11-2 weights 2^(18-i) mod 11 for positions 1..17 (GB 11643-1999 §7.2).
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_OFFSET = 48 * sum(_WEIGHTS)
_CHECK = "10X98765432"  # indexed by the weighted sum mod 11
_DIGITS = frozenset("0123456789")
# Province-level prefixes of GB/T 2260 (and 81/82/83 of the Hong Kong, Macao and Taiwan
# residence permits, which use the same number format).
_PROVINCES = frozenset(
    str(n)
    for n in (
        11,
        12,
        13,
        14,
        15,
        21,
        22,
        23,
        31,
        32,
        33,
        34,
        35,
        36,
        37,
        41,
        42,
        43,
        44,
        45,
        46,
        50,
        51,
        52,
        53,
        54,
        61,
        62,
        63,
        64,
        65,
        71,
        81,
        82,
        83,
    )
)
# Full-width digits and letters -> ASCII (hospital forms are often typed with a Chinese IME),
# and a lower-case x -> X (GB 11643-1999 §7.2 writes the check value 10 as a capital X).
_NORMAL = {0xFF10 + i: 0x30 + i for i in range(10)}
_NORMAL.update({0xFF21 + i: 0x41 + i for i in range(26)})
_NORMAL.update({0xFF41 + i: 0x41 + i for i in range(26)})
_NORMAL.update({ord(c): ord(c.upper()) for c in "abcdefghijklmnopqrstuvwxyz"})
_BEIJING = dt.timezone(dt.timedelta(hours=8))  # whose "today" decides that a birth date is future
_SEXES = {"1": "male", "2": "female"}
# How other code systems write sex, for check_id_card: GB/T 2261.1, HL7 table 0001, Chinese.
_SEX_CODES = {"1": "1", "2": "2", "M": "1", "F": "2", "男": "1", "女": "2"}


@dataclass(frozen=True, slots=True)
class IdCard:
    """A checked resident ID card number and what it says."""

    number: str  # 18 characters, normalised (upgraded when it arrived with 15)
    region: str  # GB/T 2260 address code of the first registration
    birth_date: dt.date
    sex: str  # GB/T 2261.1: "1" male, "2" female
    upgraded_from_15: bool


def normalise(raw: str) -> str:
    """Remove all white space (U+3000 included), full-width -> ASCII, letters upper-case (``x`` -> ``X``)."""
    text = "".join(raw.split())
    if text.isascii():  # the usual case: skip the slower translation
        return text.upper()
    return text.translate(_NORMAL)


def _sum_check(first17: str) -> str:
    # The bytes of ASCII digits are 48 + digit: subtract 48 x (sum of the weights) once.
    return _CHECK[(sum(map(mul, first17.encode("ascii"), _WEIGHTS)) - _OFFSET) % 11]


def check_character(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character ('0'-'9' or 'X') of the first 17 digits."""
    if len(first17) != 17 or not _DIGITS.issuperset(first17):
        raise ValueRejected(f"a check character is computed from 17 digits, not {first17!r}", first17)
    return _sum_check(first17)


def _placeholder(number: str) -> str | None:
    if "*" in number or number.count("X") > 1:
        return "ID card number is masked"
    if number.startswith("ID"):
        return "ID card number is a placeholder (starts with 'ID')"
    if len(number) > 2 and number[:-1] == number[0] * (len(number) - 1):
        return f"ID card number is a placeholder ({number[0]} repeated)"
    return None


def _examine(number: str, today: dt.date | None) -> IdCard | str:
    """The card, or the reason it is not one; ``number`` is already normalised."""
    if not number:
        return "ID card number is empty"
    problem = _placeholder(number)
    if problem is not None:
        return problem
    size = len(number)
    upgraded = size == 15
    if size not in (15, 18):
        return f"ID card number has {size} characters; it has 18 (15 in the 1989 format)"
    digits = number if upgraded else number[:17]
    if not (digits.isascii() and digits.isdigit()):
        i, c = next((i, c) for i, c in enumerate(digits, 1) if c not in _DIGITS)
        return f"ID card number: character {i} {c!r} is not a digit"
    if not upgraded and number[17] not in _DIGITS and number[17] != "X":
        return f"ID card number: check character {number[17]!r} is not a digit or X"
    if number[:2] not in _PROVINCES:
        return f"ID card number: address code {number[:6]} has no province {number[:2]} in GB/T 2260"
    if upgraded:
        number = number[:6] + "19" + number[6:]  # GB 11643-1989 numbers are all of the 1900s
    year, month, day = int(number[6:10]), int(number[10:12]), int(number[12:14])
    problem = calendar_problem(year, month, day)
    if problem is not None:
        return f"ID card number: birth date {number[6:14]} is not a date: {problem}"
    born = dt.date(year, month, day)
    if born > (today or dt.datetime.now(_BEIJING).date()):
        return f"ID card number: birth date {born.isoformat()} is in the future"
    expected = _sum_check(number[:17])
    if upgraded:
        number += expected
    elif number[17] != expected:
        return f"ID card number: check character {expected!r} expected but {number[17]!r} found"
    return IdCard(number, number[:6], born, "1" if (ord(number[16]) - 48) % 2 else "2", upgraded)


def parse(raw: str, *, today: dt.date | None = None) -> IdCard:
    """Normalise, check and read an ID card number; ValueRejected (HL7 code 102) says what is wrong.

    ``today`` (Beijing's date by default) is the limit for the birth date.
    """
    result = _examine(normalise(raw), today)
    if isinstance(result, str):
        raise ValueRejected(result, raw)
    return result


def is_valid(number: str, *, today: dt.date | None = None) -> bool:
    """True when ``parse`` would accept the number (after normalising it)."""
    return not isinstance(_examine(normalise(number), today), str)


def _as_date(value: object) -> dt.date | None:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return None


def check_id_card(
    number: str,
    birth_date: dt.date | None,
    sex: str | None,
    *,
    birth_date_source: str = "the birth date",
    sex_source: str = "the sex",
    today: dt.date | None = None,
) -> list[str]:
    """What the ID card number says that the rest of the message contradicts, one sentence each.

    An invalid number is itself reported (it cannot be compared). ``sex`` is compared when it is a
    known code for male or female (GB/T 2261.1 ``1``/``2``, HL7 ``M``/``F``, ``男``/``女``); unknown
    or unstated sex (``0``, ``9``, ``U``) is not a disagreement. ``*_source`` name the fields in the
    sentences: ``birth_date_source="PID-7"`` gives "ID card says born 1985-03-12, PID-7 says 1985-03-21".
    """
    card = _examine(normalise(number), today)
    if isinstance(card, str):
        return [card]
    found: list[str] = []
    born = _as_date(birth_date)
    if born is not None and born != card.birth_date:
        found.append(
            f"ID card says born {card.birth_date.isoformat()}, {birth_date_source} says {born.isoformat()}"
        )
    if isinstance(sex, str):
        code = _SEX_CODES.get(sex.strip().upper())
        if code is not None and code != card.sex:
            found.append(
                f"ID card says {_SEXES[card.sex]}, {sex_source} says {_SEXES[code]} ({sex.strip()!r})"
            )
    return found
