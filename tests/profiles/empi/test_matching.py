"""Matching scores: what counts as agreement, and what is never enough."""

from __future__ import annotations

import datetime as dt
import random

from profiles.empi.matching import Demographics, name_key, phone_key, pinyin_key, score

WEIGHTS = {"name": 0.35, "birth_date": 0.25, "sex": 0.1, "phone": 0.2, "address": 0.1}
BORN = dt.date(1970, 1, 1)


def test_keys_normalise_what_hospitals_write_differently() -> None:
    assert name_key(" 欧阳 明轩 ") == "欧阳明轩" and name_key("Ｚｈａｎｇ Wei") == "ZHANGWEI"
    assert pinyin_key("张伟") == "ZHANGWEI" == pinyin_key("zhang wei")
    assert phone_key("+86 139-1234-5678") == "13912345678" == phone_key("13912345678")
    assert phone_key("025-8400 1234") == "2584001234"


def test_hanzi_against_pinyin_agrees_almost_fully() -> None:
    a = Demographics(name="张伟", birth_date=BORN, sex="1")
    b = Demographics(name="ZHANGWEI", birth_date=BORN, sex="1")
    value, parts = score(a, b, WEIGHTS)
    assert parts["name"] == 0.95 and 0.95 < value < 1.0


def test_a_swapped_day_and_month_is_half_an_agreement() -> None:
    a = Demographics(name="张伟", birth_date=dt.date(1970, 3, 4))
    b = Demographics(name="张伟", birth_date=dt.date(1970, 4, 3))
    assert score(a, b, WEIGHTS)[1]["birth_date"] == 0.5


def test_without_name_and_birth_date_there_is_no_score() -> None:
    a = Demographics(name="张伟", phone="13900000001", sex="1")
    b = Demographics(name="张伟", phone="13900000001", sex="1")
    assert score(a, b, WEIGHTS)[0] == 0.0


def test_disagreeing_fields_pull_the_score_down() -> None:
    a = Demographics(name="张伟", birth_date=BORN, sex="1", phone="13900000001")
    b = Demographics(name="张伟", birth_date=BORN, sex="2", phone="13900000002")
    value, _ = score(a, b, WEIGHTS)
    assert value < 0.7


def test_a_floor_changes_no_score_that_reaches_it() -> None:
    # candidates as the blocking query finds them: same birth date and sex, names near and far
    rng = random.Random(7)
    syllables = ["ZHANG", "WANG", "LI", "ZHAO", "WEI", "MING", "XIAO", "HUA", "JUN", "FANG", "LIN"]
    mine = Demographics("ZHANGXIAOMING", dt.date(1985, 3, 12), sex="1", phone="13912345678", city="SH")
    checked = pruned = 0
    for _ in range(2000):
        name = "".join(rng.choice(syllables) for _ in range(rng.randint(2, 4)))
        theirs = Demographics(
            name,
            dt.date(1985, 3, rng.choice((12, 13))),
            sex="1",
            phone=rng.choice(("13912345678", "13800000000", None)),
            city=rng.choice(("SH", "BJ")),
        )
        exact, _ = score(mine, theirs, WEIGHTS)
        for floor in (0.7, 0.8, 0.9):
            value, _ = score(mine, theirs, WEIGHTS, floor)
            if exact >= floor:
                assert value == exact  # the exact score, to the last bit
                checked += 1
            else:
                assert value < floor  # a bound, still below the floor
                pruned += value != exact
    assert checked > 100 and pruned > 100  # both kinds were met
