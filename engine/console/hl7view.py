"""The segment view of an HL7 v2 stage for the console's message page: each segment's non-empty
fields with their position (``PID-3``), their HL7 v2.5 name (``Patient Identifier List``) and their
raw text.

Values come from splitting the text on the message's own separators (MSH-1; segments end at CR, LF
or CR LF), so what is shown is exactly what was received or sent, escapes and components included.
Names come from hl7apy's v2.5 reference, looked up the first time a segment name is seen and
cached. Only the API's read of one message calls this: hl7apy is imported there, never on the path
that receives and delivers messages.
"""

from __future__ import annotations

import functools
import re
from typing import Any

__all__ = ["field_names", "is_hl7", "segments"]

_LINES = re.compile(r"\r\n|\r|\n")
_SEGMENT = re.compile(r"^[A-Z][A-Z0-9]{2}$")
# segments whose first field is the field separator itself: MSH-1, and the batch/file headers
_HEADERS = frozenset({"MSH", "BHS", "FHS"})
_LEADING = "\ufeff\x0b\x1c \t\r\n"  # a byte-order mark, stray MLLP framing, blank lines
_SMALL_WORDS = frozenset({"OF", "OR", "AND", "THE", "TO", "FOR", "IN", "ON", "BY", "AT", "AN", "A"})
_ACRONYMS = frozenset({"ID", "SSN", "NK1", "OID", "URL", "DNR", "ICD", "CPT"})


def is_hl7(text: str) -> bool:
    """Does the text look like an HL7 v2 message (ER7, starting with an MSH segment)?"""
    body = text.lstrip(_LEADING)
    return body.startswith("MSH") and len(body) > 8


def _title(long_name: str, segment: str) -> str:
    """``PATIENT_IDENTIFIER_LIST`` -> ``Patient Identifier List``; ``MOTHER_S_MAIDEN_NAME`` ->
    ``Mother's Maiden Name``; ``SET_ID_PID`` -> ``Set ID PID``."""
    words: list[str] = []
    for word in long_name.split("_"):
        if not word:
            continue
        if word == "S" and words:
            words[-1] += "'s"
        elif word in _ACRONYMS or word == segment:
            words.append(word)
        elif word in _SMALL_WORDS and words:
            words.append(word.lower())
        else:
            words.append(word.capitalize())
    return " ".join(words)


@functools.lru_cache(maxsize=512)
def field_names(segment: str) -> dict[int, str]:
    """Field position -> its v2.5 long name, for a standard segment; empty for a Z-segment or a name
    the v2.5 reference does not know. Loaded once per segment name (lazily: hl7apy is only imported
    the first time a console user opens a message)."""
    if not _SEGMENT.match(segment) or segment.startswith("Z"):
        return {}
    from hl7apy import load_reference  # not on the message hot path: only when a message is read

    try:
        reference = load_reference(segment, "Segment", "2.5")
    except Exception:  # hl7apy's ChildNotFound for a name outside v2.5, or anything unexpected
        return {}
    out: dict[int, str] = {}
    try:
        children = reference[1]
        for child in children:
            ident, definition = child[0], child[1]
            prefix, _, position = str(ident).rpartition("_")
            if prefix != segment or not position.isdigit():
                continue
            long_name = definition[3]
            if isinstance(long_name, str) and long_name:
                out[int(position)] = _title(long_name, segment)
    except (IndexError, TypeError):  # a reference shaped differently than hl7apy 1.3 makes them
        return {}
    return out


def _fields(name: str, parts: list[str], sep: str) -> list[tuple[int, str]]:
    """(position, raw text) of each field of one segment split on its field separator."""
    if name in _HEADERS:
        # MSH-1 is the separator itself (not between the name and MSH-2); MSH-2 the encoding characters
        return [(1, sep), *((i + 1, value) for i, value in enumerate(parts) if i >= 1)]
    return [(i, value) for i, value in enumerate(parts) if i >= 1]


def segments(text: str) -> list[dict[str, Any]] | None:
    """The segments of an HL7 v2 text, each ``{"name", "index", "fields": [{"position", "name",
    "value"}]}``; ``index`` is the segment's 1-based place in the message. Empty fields are left
    out. None when the text is not HL7 v2."""
    if not is_hl7(text):
        return None
    body = text.lstrip(_LEADING)
    sep = body[3]
    out: list[dict[str, Any]] = []
    index = 0
    for line in _LINES.split(body):
        if not line.strip(_LEADING):
            continue
        index += 1
        name = line[:3]
        if name in _HEADERS and len(line) > 3:
            sep = line[3]  # a header names the separator of what follows it (a batch may change it)
        parts = line.split(sep)
        name = parts[0]
        names = field_names(name)
        fields = [
            {"position": f"{name}-{position}", "name": names.get(position, ""), "value": value}
            for position, value in _fields(name, parts, sep)
            if value != ""
        ]
        out.append({"name": name, "index": index, "fields": fields})
    return out
