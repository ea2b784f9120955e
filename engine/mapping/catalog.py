"""Every mapping of ``mappings/`` and every code table of ``mappings/code_tables/``, loaded once.

``load_catalog`` compiles them all at start-up (and for ``hie check``), whether or not a channel
uses them yet, and returns every problem with its file and line: no mapping error surfaces for the
first time on a message. Integrators' own transform functions come from the Python modules named
in ``config.yaml`` (``engine.functions_modules``), imported before anything is compiled.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ValidationError

from engine.errors import ConfigProblem
from engine.mapping.codetables import CodeTables
from engine.mapping.compiler import CompiledMapping, compile_mapping
from engine.mapping.spec import MappingSpec
from engine.yamlloc import load_yaml, problems_from_validation

__all__ = ["Catalog", "load_catalog", "platform_models"]

_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
DEFAULT_MODELS_MODULE = "profiles.canonical"


def platform_models(module: str = DEFAULT_MODELS_MODULE) -> dict[str, type[BaseModel]]:
    """The models a mapping may read or write (``model:<Name>``): the ``MODELS`` of ``module``.

    The engine names the module instead of importing it, so that ``engine`` never imports
    ``profiles`` (layers import one way: profiles -> ihe -> engine); ``config.yaml`` may name
    another module (``engine.models_module``).
    """
    found = getattr(importlib.import_module(module), "MODELS", None)
    if not isinstance(found, dict):
        raise TypeError(f"{module} has no MODELS dict of pydantic models")
    return dict(found)


@dataclass
class Catalog:
    folder: Path
    mappings: dict[str, CompiledMapping] = field(default_factory=dict)
    tables: CodeTables | None = None
    files: dict[str, Path] = field(default_factory=dict)

    def get(self, mapping_id: str) -> CompiledMapping:
        return self.mappings[mapping_id]

    def __contains__(self, mapping_id: str) -> bool:
        return mapping_id in self.mappings

    def known(self, mapping_id: str) -> bool:
        """A file exists for this id (it may have failed to compile)."""
        return mapping_id in self.files


def _import_functions(modules: Iterable[str]) -> list[ConfigProblem]:
    problems = []
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:  # any import failure is a configuration problem, not a crash
            problems.append(
                ConfigProblem(
                    "config.yaml",
                    None,
                    "engine.functions_modules",
                    f"cannot import {name}: {type(exc).__name__}: {exc}",
                )
            )
    return problems


def load_catalog(
    folder: Path,
    *,
    functions_modules: Iterable[str] = (),
    models: Mapping[str, type[BaseModel]] | None = None,
    models_module: str = DEFAULT_MODELS_MODULE,
) -> tuple[Catalog, list[ConfigProblem]]:
    problems = _import_functions(functions_modules)
    if models is None:
        try:
            models = platform_models(models_module)
        except Exception as exc:  # a bad module name is a configuration problem, not a crash
            problems.append(
                ConfigProblem(
                    "config.yaml", None, "engine.models_module", f"cannot load {models_module}: {exc}"
                )
            )
            models = {}
    catalog = Catalog(folder)
    tables_dir = folder / "code_tables"
    tables, table_problems = CodeTables.load(tables_dir)
    catalog.tables = tables
    problems += table_problems
    if not folder.is_dir():
        return catalog, problems
    files = sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml"))
    for file in files:
        mapping_id = file.stem
        catalog.files[mapping_id] = file
        loc = load_yaml(file, strings=True)
        problems += loc.problems
        if loc.problems:
            continue
        if not _ID.match(mapping_id):
            problems.append(
                ConfigProblem(str(file), 1, "", f"mapping file names are kebab-case ids, not {mapping_id!r}")
            )
            continue
        if not isinstance(loc.data, dict):
            problems.append(
                ConfigProblem(str(file), 1, "", "a mapping file is a YAML mapping (input, output, rules)")
            )
            continue
        try:
            spec = MappingSpec.model_validate(loc.data)
        except ValidationError as exc:
            problems += problems_from_validation(loc, exc)
            continue
        if spec.id is not None and spec.id != mapping_id:
            problems.append(
                loc.problem(("id",), f"mapping id {spec.id!r} differs from file name {mapping_id!r}")
            )
            continue
        compiled, errors = compile_mapping(mapping_id, spec, tables, models, loc.line_of)
        for err in errors:
            problems.append(loc.problem(err.where, err.message))
        if compiled is not None:
            catalog.mappings[mapping_id] = compiled
    return catalog, problems
