"""Character sets of HL7 v2 messages (HL7 v2.5 §2.15.9.18, table 0211) and their aliases.

MLLP framing is done on bytes first (GBK/GB18030 trail bytes are never 0x0B, 0x1C or 0x0D), then the
message is decoded here. Order, as hospital feeds need it (reference/china-hie.md §9):

1. a byte-order mark;
2. MSH-18, through the alias table (senders write ``GBK``, ``UTF8``, ``ISO8859_1`` that are not in 0211);
3. when MSH-18 is empty: strict UTF-8 if the bytes are valid UTF-8, else the channel's default.

A declared charset is never second-guessed: bytes that do not decode in it are an error the sender must
fix, told with the byte offset.
"""

from __future__ import annotations

import codecs

from engine.errors import CharsetError

__all__ = ["ALIASES", "codec_for", "decode_message", "encode_text", "msh18_from_bytes", "with_msh18"]

# Keys are normalised by ``_norm`` (upper case, spaces, dashes and underscores removed).
ALIASES: dict[str, str] = {
    "ASCII": "ascii",
    "USASCII": "ascii",
    "UNICODEUTF8": "utf-8",
    "UTF8": "utf-8",
    "UNICODE": "utf-8",
    "GB180302000": "gb18030",
    "GB18030": "gb18030",
    "GBK": "gb18030",
    "GB2312": "gb18030",
    "CP936": "gb18030",
    "88591": "latin-1",
    "ISO88591": "latin-1",
    "LATIN1": "latin-1",
    "UNICODEUTF16": "utf-16",
    "UTF16": "utf-16",
}


def _norm(name: str) -> str:
    return "".join(ch for ch in name.upper() if ch not in " -_/")


def codec_for(name: str) -> str | None:
    """The Python codec for an MSH-18 value or a configured charset name, or None if unknown."""
    if not name.strip():
        return None
    found = ALIASES.get(_norm(name))
    if found:
        return found
    try:  # a plain Python codec name in config (e.g. "big5") is accepted as is
        return codecs.lookup(name.strip()).name
    except LookupError:
        return None


def msh18_from_bytes(raw: bytes) -> str:
    """MSH-18 (first repetition) read from the raw bytes, without decoding the message.

    MSH is ASCII in every charset we accept, so splitting its bytes on the field separator is safe.
    """
    if not raw.startswith(b"MSH") or len(raw) < 8:
        return ""
    sep = raw[3:4]
    end = len(raw)
    for terminator in (b"\r", b"\n"):
        pos = raw.find(terminator)
        if pos != -1:
            end = min(end, pos)
    fields = raw[:end].split(sep)
    # fields[0] is "MSH", fields[1] is MSH-2; MSH-n is fields[n - 1] (MSH-1 is the separator itself).
    if len(fields) < 18:
        return ""
    rep_sep = fields[1][1:2] or b"~"
    return fields[17].split(rep_sep)[0].decode("ascii", "replace").strip()


def decode_message(raw: bytes, default: str) -> tuple[str, str]:
    """Decode a framed HL7 v2 message; returns (text, codec used). Raises CharsetError."""
    if raw.startswith(codecs.BOM_UTF8):
        return _decode(raw[3:], "utf-8", "a UTF-8 byte-order mark")
    declared = msh18_from_bytes(raw)
    if declared:
        codec = codec_for(declared)
        if codec is None:
            raise CharsetError(
                f"unknown character set {declared!r} in MSH-18 (HL7 table 0211)",
                hl7_code="103",
                location="MSH^1^18",
                reject=True,
            )
        return _decode(raw, codec, f"MSH-18 {declared!r}")
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    return _decode(raw, default, f"the channel's default charset {default!r}")


def _decode(raw: bytes, codec: str, why: str) -> tuple[str, str]:
    try:
        return raw.decode(codec), codec
    except UnicodeDecodeError as exc:
        raise CharsetError(
            f"bytes {exc.start}-{exc.end - 1} are not valid {codec} (charset from {why})",
            hl7_code="102",
            location="MSH^1^18",
        ) from None


def encode_text(text: str, codec: str) -> bytes:
    """Encode an answer in the sender's charset; unencodable characters become '?', never an error."""
    return text.encode(codec, "replace")


# How we name a codec in MSH-18 when we re-encode a message (HL7 table 0211 where it has a name).
_TABLE_0211 = {"utf-8": "UNICODE UTF-8", "gb18030": "GB 18030-2000", "latin-1": "8859/1", "ascii": "ASCII"}


def with_msh18(text: str, codec: str) -> str:
    """The message with MSH-18 naming ``codec``, so a re-encoded message does not lie about its bytes."""
    if not text.startswith("MSH") or len(text) < 8:
        return text
    end = len(text)
    for terminator in ("\r", "\n"):
        pos = text.find(terminator)
        if pos != -1:
            end = min(end, pos)
    fs = text[3]
    fields = text[:end].split(fs)
    name = _TABLE_0211.get(codecs.lookup(codec).name, codec.upper())
    if codec == "ascii" and len(fields) < 18:
        return text  # ASCII is the default when MSH-18 is empty
    fields += [""] * (18 - len(fields))
    fields[17] = name
    return fs.join(fields) + text[end:]
