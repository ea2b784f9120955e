"""Mapping test cases as data: an input file, and beside it what the mapping must make of it.

``tests/data/mappings/<mapping-id>/<case>.<ext>`` is the input (``.hl7``, ``.xml`` or ``.json``);
``<case>.expected.json`` (or ``.expected.hl7``) is the expected output. A case whose mapping must
fail expects ``{"error": "<text the MappingError gives>"}``. The parametrised test and ``hie map``
share this module, so what an integrator sees on the command line is what the test checks.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.hl7v2.charset import decode_message
from engine.hl7v2.peek import segments
from engine.mapping.compiler import CompiledMapping
from engine.mapping.errors import MappingError

__all__ = ["Case", "compare", "discover", "read_input", "run_chain"]

_INPUT_SUFFIXES = (".hl7", ".xml", ".json")


@dataclass(frozen=True)
class Case:
    mapping_id: str
    name: str
    input: Path
    expected: Path


def discover(root: Path) -> list[Case]:
    """Every case under ``root`` (one folder per mapping id; a folder may name a chain ``a+b``)."""
    cases = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and p.name != "code_tables"):
        for file in sorted(folder.iterdir()):
            if file.suffix not in _INPUT_SUFFIXES or ".expected" in file.suffixes:
                continue
            stem = file.name[: -len(file.suffix)]
            expected = [folder / f"{stem}.expected{ext}" for ext in (".json", ".hl7")]
            found = [e for e in expected if e.is_file()]
            if found:
                cases.append(Case(folder.name, stem, file, found[0]))
    return cases


def read_input(path: Path, kind: str) -> Any:
    """The file as the channel would hand it to the mapping: HL7 decoded (MSH-18), segments on CR."""
    raw = path.read_bytes()
    if kind == "hl7v2":
        text, _ = decode_message(raw, "gb18030")
        return "\r".join(segments(text))
    if kind == "xml":
        return raw
    return raw.decode("utf-8")


def run_chain(mappings: list[CompiledMapping], data: Any) -> tuple[str, str, list[str]]:
    """Run mappings in turn (each reads the previous one's output). Returns (content, kind, warnings)."""
    warnings: list[str] = []
    result = None
    for mapping in mappings:
        result = mapping.run(data if result is None else result.output)
        warnings += result.warnings
    assert result is not None
    content, kind = mappings[-1].render(result)
    return content, kind, warnings


def pretty(content: str, kind: str) -> str:
    if kind == "json":
        return json.dumps(json.loads(content), ensure_ascii=False, indent=2, sort_keys=True) + "\n"
    return "\n".join(segments(content)) + "\n"


def actual_text(mappings: list[CompiledMapping], data: Any) -> str:
    """What a case compares: the pretty output, or ``{"error": ...}`` when the mapping refuses."""
    try:
        content, kind, _ = run_chain(mappings, data)
    except MappingError as exc:
        return pretty(json.dumps({"error": exc.text}), "json")
    return pretty(content, kind)


def compare(expected: Path, actual: str) -> list[str]:
    """Unified diff lines between the expected file (normalised the same way) and ``actual``."""
    raw = expected.read_text("utf-8")
    want = pretty(raw, "json") if expected.suffix == ".json" else pretty(raw.replace("\r\n", "\n"), "hl7")
    if want == actual:
        return []
    return list(
        difflib.unified_diff(
            want.splitlines(keepends=True), actual.splitlines(keepends=True), str(expected), "actual"
        )
    )
