"""Building the validator the configuration describes: the shipped rules and the platform's own,
the value sets of the code tables, the severities changed in ``cda:``. Built once per process."""

from __future__ import annotations

import weakref
from pathlib import Path

from engine.config import AppConfig
from engine.errors import ConfigError, ConfigProblem
from engine.mapping.codetables import CodeTables
from profiles.cda.config import CdaConfig
from profiles.cda.report import Severity
from profiles.cda.rules import SHIPPED, load_rules
from profiles.cda.validator import BUILT_IN_RULES, CdaValidator, value_sets_by_system

__all__ = ["validator_for", "validator_problems"]

_BUILT: weakref.WeakKeyDictionary[AppConfig, CdaValidator] = weakref.WeakKeyDictionary()


def _severities(config: CdaConfig) -> dict[str, Severity | None]:
    return {rule: None if level == "off" else level for rule, level in config.severities.items()}


def _build(app: AppConfig | None) -> tuple[CdaValidator, list[ConfigProblem]]:
    config = app.section("cda", CdaConfig) if app is not None else CdaConfig()
    folders = [SHIPPED]
    if config.rules_dir is not None:
        folders.append(app.resolve(config.rules_dir) if app is not None else config.rules_dir)
    rules, problems = load_rules(*folders)
    if app is not None:
        tables = app.mapping_catalog(raise_on_problems=False).tables
    else:
        tables, table_problems = CodeTables.load(Path("mappings") / "code_tables")
        problems += table_problems
    known = (
        set(BUILT_IN_RULES)
        | {r.id for r in rules.common}
        | {r.id for rs in rules.by_document.values() for r in rs}
    )
    for rule in config.severities:
        if rule not in known:
            where = str(app.path) if app is not None else "cda"
            problems.append(
                ConfigProblem(where, None, f"cda.severities.{rule}", f"no rule has the id {rule!r}")
            )
    validator = CdaValidator(
        rules,
        value_sets_by_system(tables),
        _severities(config),
        max_bytes=config.max_document_bytes,
        roots=tuple(config.oid_roots),
        institutions=frozenset(i.code for i in config.institutions),
    )
    return validator, problems


def validator_problems(app: AppConfig) -> list[ConfigProblem]:
    """What ``hie check`` reports of the ``cda:`` section and the rule files."""
    return _build(app)[1]


def validator_for(app: AppConfig | None) -> CdaValidator:
    """The validator of ``app`` (built on first use); ConfigError when its rules have problems."""
    found = _BUILT.get(app) if app is not None else None
    if found is None:
        found, problems = _build(app)
        if problems:
            raise ConfigError(problems)
        if app is not None:
            _BUILT[app] = found
    return found
