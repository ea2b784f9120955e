"""Comparing two patient records: normalised keys, blocking keys, and a weighted agreement score.

Exact linking on a valid national ID-card number comes first (``index``); this module scores the
rest. The score is the weighted share of agreement over the fields both records have (name, birth
date, sex, phone, address), each field's agreement between 0 and 1:

* name: the same Hanzi (``张伟`` = ``张伟``), or the same pinyin either way round (``张伟`` =
  ``ZHANG WEI`` = ``Zhang Wei``: hospitals that send pinyin), else a similarity of the pinyin keys;
* birth date: equal 1.0; day and month swapped, or one digit off, 0.5 (typing errors); else 0;
* sex, phone (digits only, +86 and leading 0 removed), city: equal or not.

A score only counts when name and birth date were both compared: two records that share only a
phone number are never one person by arithmetic alone. Weights and the auto-link and review
thresholds are in ``config.yaml`` (``empi.matching``).
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from pypinyin import Style, lazy_pinyin

__all__ = ["Demographics", "name_key", "phone_key", "pinyin_key", "score"]

_SEPARATORS = re.compile(r"[\s·•.\-_,，、]+")


def name_key(name: str | None) -> str | None:
    """The name for exact comparison: NFKC (全角 -> 半角), upper case, no spaces or middle dots."""
    if not name:
        return None
    text = _SEPARATORS.sub("", unicodedata.normalize("NFKC", name)).upper()
    return text or None


@lru_cache(maxsize=65536)
def pinyin_key(name: str | None) -> str | None:
    """The name as toneless pinyin, upper case, no spaces: 张伟 -> ZHANGWEI; ZHANG WEI stays ZHANGWEI."""
    key = name_key(name)
    if key is None:
        return None
    if key.isascii():
        return key
    return "".join(lazy_pinyin(key, style=Style.NORMAL, errors="default")).upper()


def phone_key(phone: str | None) -> str | None:
    """Digits only, without the country code 86 or a trunk 0: +86-139 1234 5678 -> 13912345678."""
    if not phone:
        return None
    digits = "".join(c for c in unicodedata.normalize("NFKC", phone) if c.isdigit())
    if digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    digits = digits.lstrip("0")
    return digits[:40] or None


@dataclass(frozen=True, slots=True)
class Demographics:
    """What matching compares, already normalised (``name`` is ``name_key``)."""

    name: str | None = None
    birth_date: dt.date | None = None
    pinyin: str | None = None  # pinyin_key(name), when already known (stored with each record)
    sex: str | None = None  # GB/T 2261.1; 0 and 9 (unknown, unstated) compare as absent
    phone: str | None = None
    city: str | None = None


SIMILAR = 0.8  # the most two names that differ in pinyin agree by: their similarity times this


def _name(a: str, b: str, pa: str | None, pb: str | None) -> float | difflib.SequenceMatcher[str]:
    """The names' agreement; or, when it takes their pinyin similarity, the matcher that computes it
    (``score`` asks it for cheap upper bounds first)."""
    if a == b:
        return 1.0
    pa, pb = pa or pinyin_key(a), pb or pinyin_key(b)
    if pa == pb:
        return 0.95  # Hanzi against pinyin: homophones (张伟 / 章伟) share it, so not quite 1
    return difflib.SequenceMatcher(None, pa, pb) if pa and pb else 0.0


def _birth(a: dt.date, b: dt.date) -> float:
    if a == b:
        return 1.0
    if a.year == b.year and a.month == b.day and a.day == b.month:
        return 0.5
    da, db = a.strftime("%Y%m%d"), b.strftime("%Y%m%d")
    return 0.5 if sum(x != y for x, y in zip(da, db, strict=True)) == 1 else 0.0


def score(
    a: Demographics, b: Demographics, weights: dict[str, float], floor: float = 0.0
) -> tuple[float, dict[str, float]]:
    """The agreement of ``a`` and ``b`` (0..1) and each compared field's agreement, for the record.

    Returns 0 when name or birth date could not be compared. ``floor``: a pair whose agreement is
    below it may be given an upper bound of its agreement instead (still below ``floor``), without
    the names' similarity being computed, the costly part: a candidate that cannot reach the
    review threshold, or beat the best one so far, needs no exact score.
    """
    parts: dict[str, float] = {}
    matcher: difflib.SequenceMatcher[str] | None = None
    if a.name and b.name:
        name = _name(a.name, b.name, a.pinyin, b.pinyin)
        if isinstance(name, float):
            parts["name"] = name
        else:
            matcher, parts["name"] = name, SIMILAR
    if a.birth_date and b.birth_date:
        parts["birth_date"] = _birth(a.birth_date, b.birth_date)
    if a.sex in ("1", "2") and b.sex in ("1", "2"):
        parts["sex"] = 1.0 if a.sex == b.sex else 0.0
    if a.phone and b.phone:
        parts["phone"] = 1.0 if a.phone == b.phone else 0.0
    if a.city and b.city:
        parts["address"] = 1.0 if a.city == b.city else 0.0
    if "name" not in parts or "birth_date" not in parts:
        return 0.0, parts
    total = sum(weights.get(k, 0.0) for k in parts)
    if total <= 0:
        return 0.0, parts
    if matcher is None:
        return sum(weights.get(k, 0.0) * v for k, v in parts.items()) / total, parts
    # the names' similarity, from its cheapest upper bounds to the exact ratio; stop once the
    # score with a bound is below the floor
    for similarity in (matcher.real_quick_ratio, matcher.quick_ratio, matcher.ratio):
        parts["name"] = similarity() * SIMILAR
        value = sum(weights.get(k, 0.0) * v for k, v in parts.items()) / total
        if value < floor:
            break
    return value, parts
