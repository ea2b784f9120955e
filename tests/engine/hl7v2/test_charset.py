"""Charset detection: BOM, MSH-18 through aliases, UTF-8 sniff, the channel default."""

from __future__ import annotations

import pytest

from engine.errors import CharsetError
from engine.hl7v2.charset import codec_for, decode_message, msh18_from_bytes


def msg(charset: str, name: str = "李^秀英") -> str:
    return (
        f"MSH|^~\\&|HIS|HOSP_A|HIE|CITY|20261122||ADT^A01|C1|P|2.5|||||CHN|{charset}\rPID|1||1^^^A||{name}\r"
    )


@pytest.mark.parametrize(
    ("declared", "codec"),
    [
        ("UNICODE UTF-8", "utf-8"),
        ("UTF8", "utf-8"),
        ("GB 18030-2000", "gb18030"),
        ("GBK", "gb18030"),
        ("GB2312", "gb18030"),
        ("8859/1", "latin-1"),
        ("ISO8859_1", "latin-1"),
        ("ASCII", "ascii"),
    ],
)
def test_msh18_aliases_seen_in_hospital_feeds(declared: str, codec: str) -> None:
    assert codec_for(declared) == codec
    text = msg(declared, name="ZHANG^SAN") if codec in ("latin-1", "ascii") else msg(declared)
    decoded, used = decode_message(text.encode(codec), "utf-8")
    assert used == codec and decoded == text


def test_gbk_bytes_without_msh18_use_the_channel_default() -> None:
    text = msg("")
    decoded, used = decode_message(text.encode("gb18030"), "gb18030")
    assert (decoded, used) == (text, "gb18030")


def test_utf8_bytes_without_msh18_are_sniffed_before_the_default() -> None:
    text = msg("")
    assert decode_message(text.encode("utf-8"), "gb18030") == (text, "utf-8")


def test_byte_order_mark_wins() -> None:
    text = msg("")
    assert decode_message(b"\xef\xbb\xbf" + text.encode(), "gb18030")[0] == text


def test_unknown_charset_is_table_0211_error_at_msh18() -> None:
    with pytest.raises(CharsetError) as info:
        decode_message(msg("KLINGON").encode(), "utf-8")
    assert info.value.hl7_code == "103" and info.value.location == "MSH^1^18" and info.value.reject
    assert "KLINGON" in info.value.text


def test_declared_utf8_but_gbk_bytes_names_the_offset() -> None:
    raw = msg("UNICODE UTF-8").encode("gb18030")
    with pytest.raises(CharsetError) as info:
        decode_message(raw, "gb18030")
    assert info.value.hl7_code == "102"
    assert f"bytes {raw.index('李'.encode('gb18030'))}" in info.value.text


def test_msh18_read_from_bytes_stops_at_segment_end() -> None:
    assert msh18_from_bytes(b"MSH|^~\\&|A\rPID|1|2|3|4|5|6|7|8|9|10|11|12|13|14|15|16|UTF8") == ""
    assert msh18_from_bytes(msg("GBK~UTF8").encode()) == "GBK"


def test_reencoded_message_names_its_new_charset_in_msh18() -> None:
    from engine.hl7v2.charset import with_msh18

    assert with_msh18(msg("GB 18030-2000"), "utf-8") == msg("UNICODE UTF-8")
    short = "MSH|^~\\&|HIS|HOSP_A|HIE|CITY|20261122||ADT^A01|C1|P|2.5\rPID|1\r"
    assert with_msh18(short, "gb18030").split("\r")[0].split("|")[17] == "GB 18030-2000"
    assert with_msh18(short, "gb18030").endswith("\rPID|1\r")


def test_outbound_payload_keeps_bytes_or_reencodes_with_msh18() -> None:
    from engine.connectors.base import Outbound
    from engine.message import ContentType

    raw = msg("GB 18030-2000").encode("gb18030")
    out = Outbound(1, 1, "c", "C1", ContentType.HL7V2, "gb18030", raw, None, 1)
    assert out.payload() == raw and out.payload("GBK") == raw
    assert out.payload("utf-8") == msg("UNICODE UTF-8").encode("utf-8")
