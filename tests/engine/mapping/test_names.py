"""Chinese names written as one string: family/given split (compound surnames, Latin, minority) and join."""

from __future__ import annotations

import pytest

from engine.mapping.names import COMPOUND_SURNAMES, join_name, split_name


@pytest.mark.parametrize(
    ("text", "family", "given"),
    [
        ("张三", "张", "三"),
        ("李小梅", "李", "小梅"),
        (" 王建国 ", "王", "建国"),
        ("王\u3000建国", "王", "建国"),  # the ideographic space marks the boundary
        ("欧阳娜娜", "欧阳", "娜娜"),
        ("司马一鸣", "司马", "一鸣"),
        ("诸葛明", "诸葛", "明"),
        ("上官婉儿", "上官", "婉儿"),
        ("歐陽美玲", "歐陽", "美玲"),  # traditional characters
        ("欧阳", "欧", "阳"),  # two characters: one-character surname and given name
        ("单于涛", "单", "于涛"),  # 单 is the common surname here, not the compound 单于
        ("陈李 秀英", "陈李", "秀英"),  # a space written by the sender wins over the rule
        ("Zhang San", "Zhang", "San"),
        ("ZHANG SAN", "ZHANG", "SAN"),
        ("OUYANG  NA NA", "OUYANG", "NA NA"),
        ("ZHANG, SAN", "ZHANG", "SAN"),
    ],
)
def test_split(text: str, family: str, given: str) -> None:
    assert split_name(text) == (family, given)


@pytest.mark.parametrize(
    "text",
    [
        "买买提·艾力",  # minority name: the dot is not a family/given boundary
        "阿依古丽•买买提",
        "买买提.艾力",
        "Maimaiti·Aili",
        "张",  # one character
        "ZHANG",  # one Latin word
        "",
        "   ",
        "ZHANG,",
    ],
)
def test_names_that_cannot_be_split_give_no_parts(text: str) -> None:
    assert split_name(text) == (None, None)


def test_compound_surnames_are_data() -> None:
    assert {
        "欧阳",
        "司马",
        "上官",
        "诸葛",
        "东方",
        "皇甫",
        "尉迟",
        "公孙",
        "慕容",
        "令狐",
        "长孙",
        "宇文",
        "司徒",
        "夏侯",
        "轩辕",
        "端木",
        "独孤",
        "南宫",
        "西门",
        "百里",
        "呼延",
        "钟离",
        "申屠",
        "澹台",
        "太史",
        "闻人",
    } <= COMPOUND_SURNAMES
    assert all(len(s) == 2 for s in COMPOUND_SURNAMES)


def test_join() -> None:
    assert join_name("张", "三") == "张三"
    assert join_name("欧阳", "娜娜") == "欧阳娜娜"
    assert join_name("ZHANG", "SAN") == "ZHANG SAN"
    assert join_name(" Zhang ", "San") == "Zhang San"
    assert join_name("张", None) == "张"
    assert join_name(None, "SAN") == "SAN"
    assert join_name(None, None) is None
    assert join_name("", " ") is None


def test_split_then_join_gives_the_name_back() -> None:
    for text in ("张三", "欧阳娜娜", "Zhang San"):
        family, given = split_name(text)
        assert join_name(family, given) == text
