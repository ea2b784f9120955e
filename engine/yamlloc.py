"""YAML loading that remembers where every value came from, and ``${VAR}`` interpolation.

``hie check`` must name the file, line and field of every problem; pydantic reports a field by its
path (``("destinations", 1, "url")``), so this loader records the line of every path.
Secrets stay out of files: ``${NAME}`` takes an environment variable, ``${NAME:-default}`` a default,
and ``$${`` writes a literal ``${``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from engine.errors import ConfigProblem

__all__ = ["Located", "Path_", "load_yaml", "problems_from_validation"]

Path_ = tuple[str | int, ...]

_VAR = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


@dataclass
class Located:
    """A loaded YAML document: the plain data, and the line (1-based) of every path in it."""

    file: str
    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)
    problems: list[ConfigProblem] = field(default_factory=list)

    def line_of(self, path: Path_) -> int | None:
        """Line of ``path`` or, failing that, of its nearest parent (a missing key is on its parent)."""
        p = tuple(path)
        while True:
            if p in self.lines:
                return self.lines[p]
            if not p:
                return None
            p = p[:-1]

    def problem(self, path: Path_, message: str) -> ConfigProblem:
        return ConfigProblem(self.file, self.line_of(path), _dotted(path), message)


def _dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load_yaml(path: Path, env: Mapping[str, str] | None = None, *, strings: bool = False) -> Located:
    """Load one YAML file; syntax errors and unknown variables become problems, never exceptions.

    ``strings=True`` keeps every plain scalar as the text written (``01`` stays ``"01"``, ``N`` and
    ``no`` stay text instead of YAML 1.1's False); only ``~``, ``null`` and empty values are None.
    Mapping files and code tables use it: codes are text, and pydantic turns ``true`` or ``5`` into
    a bool or an int where the field says so.
    """
    env = os.environ if env is None else env
    loc = Located(str(path), None)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        loc.problems.append(ConfigProblem(str(path), None, "", f"cannot read: {exc}"))
        return loc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        loc.problems.append(ConfigProblem(str(path), line, "", f"YAML syntax error: {exc}"))
        return loc
    if node is None:
        loc.data = {}
        return loc
    loc.data = _build(node, (), loc, env, strings)
    return loc


_NULLS = frozenset(("", "~", "null", "Null", "NULL"))


def _build(node: yaml.Node, path: Path_, loc: Located, env: Mapping[str, str], strings: bool = False) -> Any:
    loc.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else str(_scalar(key_node))
            if key in out:
                loc.problems.append(
                    ConfigProblem(
                        loc.file, key_node.start_mark.line + 1, _dotted((*path, key)), "duplicate key"
                    )
                )
            loc.lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = _build(value_node, (*path, key), loc, env, strings)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), loc, env, strings) for i, item in enumerate(node.value)]
    if strings and isinstance(node, yaml.ScalarNode):
        plain = node.style is None and node.tag == "tag:yaml.org,2002:null"
        value = None if plain and node.value in _NULLS else str(node.value)
    else:
        value = _scalar(node)  # resolved scalar: int, bool, str, None...
    if isinstance(value, str) and "$" in value:
        value = _interpolate(value, path, loc, env)
    return value


def _scalar(node: yaml.Node) -> Any:
    return yaml.SafeLoader("").construct_object(node, deep=True)


def _interpolate(value: str, path: Path_, loc: Located, env: Mapping[str, str]) -> str:
    def repl(m: re.Match[str]) -> str:
        if m.group(0) == "$${":
            return "${"
        name, default = m.group(1), m.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        loc.problems.append(
            loc.problem(path, f"environment variable {name} is not set (write ${{{name}:-default}})")
        )
        return ""

    return _VAR.sub(repl, value)


def problems_from_validation(loc: Located, exc: Any, prefix: Path_ = ()) -> list[ConfigProblem]:
    """Turn a pydantic ValidationError into located problems."""
    out = []
    for err in exc.errors():
        path = (*prefix, *(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-"))))
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        out.append(loc.problem(path, msg))
    return out
