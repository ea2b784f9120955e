"""Chinese person names written as one string, split into family and given name, and joined back.

Most HIS vendors put the whole name in XPN-1 (``张三``) and leave XPN-2 empty, while the platform's
model (and WS/T 500 CDA ``<family>``/``<given>``) wants the parts. A Han name is written family name
first with no separator; the family name is one character except for the compound surnames (复姓)
of the list below, which are two. Names in Latin letters (``ZHANG SAN``, ``Zhang San``) are split
on the space, family first, as in passports. When the name cannot be split with confidence, both
parts are None and only the full text is kept (the mapping writes it to ``name.text``):

- names of ethnic minorities written with a separator dot (``买买提·艾力``): in Uyghur naming, for
  one, the dot separates a person's own name from the father's, and there is no family name;
- a single character or a single Latin word.

Known limit: a married woman's double family name (``陈李秀英``) is read as family ``陈``. A sender
that knows better writes a space (``陈李 秀英``) or fills XPN-2; a space is honoured.
"""

from __future__ import annotations

import re

__all__ = ["COMPOUND_SURNAMES", "join_name", "split_name"]

# Compound surnames (复姓) of the Hundred Family Surnames still in use, in simplified and
# traditional writing. Left out on purpose: pairs whose first character is itself a common
# surname and whose second is a common given-name character (单于, 乐正, 梁丘, 左丘, 谷梁, 段干,
# 宗政), where "surname + given name" is the likelier reading.
_COMPOUND = """
    欧阳 司马 上官 诸葛 东方 皇甫 尉迟 公孙 慕容 令狐 长孙 宇文 司徒 夏侯 轩辕 端木 独孤 南宫 西门 百里
    呼延 钟离 申屠 澹台 太史 闻人 万俟 赫连 公羊 公冶 濮阳 淳于 太叔 仲孙 鲜于 闾丘 司空 亓官 司寇
    子车 颛孙 巫马 公西 漆雕 壤驷 公良 拓跋 夹谷 宰父 东郭 南门 羊舌 微生 东门 第五
    歐陽 司馬 諸葛 東方 尉遲 公孫 長孫 軒轅 鍾離 鐘離 澹臺 聞人 萬俟 赫連 濮陽 鮮于 閭丘 顓孫 巫馬
    漆彫 壤駟 東郭 東門 西門 南門
"""
COMPOUND_SURNAMES: frozenset[str] = frozenset(_COMPOUND.split())
# CJK Unified Ideographs, Extension A, compatibility ideographs, Extensions B-F (U+20000-U+2FFFF).
_HAN = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]")
# Separator dots written in minority names: middle dot, bullet, katakana middle dot, full-width
# full stop, hyphenation point; in a Han name an ASCII full stop too (it cannot be an initial there).
_DOTS = ("·", "•", "・", "．", "‧")


def split_name(text: str) -> tuple[str | None, str | None]:
    """``(family, given)`` of a name written as one string; ``(None, None)`` when it cannot be split."""
    name = text.strip()
    if not name:
        return None, None
    if _HAN.search(name) is None:
        # Latin letters: "ZHANG, SAN" or "ZHANG SAN", family name first.
        if "," in name:
            family, _, given = name.partition(",")
            family, given = family.strip(), " ".join(given.split())
            return (family, given) if family and given else (None, None)
        words = name.split()
        if len(words) < 2 or any(d in name for d in _DOTS):
            return None, None
        return words[0], " ".join(words[1:])
    if any(d in name for d in _DOTS) or "." in name:
        return None, None
    words = name.split()  # str.split() also splits on the ideographic space U+3000
    if len(words) == 2:  # the sender marked the boundary itself
        return words[0], words[1]
    name = "".join(words)
    if len(name) < 2:
        return None, None
    if len(name) >= 3 and name[:2] in COMPOUND_SURNAMES:
        return name[:2], name[2:]
    return name[0], name[1:]


def join_name(family: str | None, given: str | None) -> str | None:
    """Family then given: no space between Han characters, one space between Latin words."""
    family = family.strip() if family else ""
    given = given.strip() if given else ""
    if not family or not given:
        return family or given or None
    if _HAN.search(family) or _HAN.search(given):
        return family + given
    return f"{family} {given}"
