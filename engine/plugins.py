"""Plugins: what a package outside ``engine/`` adds to the engine, named in ``config.yaml``.

The engine knows nothing of IHE (layers import one way: ``profiles`` -> ``ihe`` -> ``engine``), yet
the IHE actors need a section of ``config.yaml`` (the EMPI's identity domains), destinations that
channels can name (``pix-iti8:``) and tables of their own. A plugin module says so in one object::

    PLUGIN = Plugin(
        name="empi",
        sections={"empi": EmpiConfig},          # config.yaml top-level section -> its pydantic model
        destinations=[PixFeedDestination],      # connector classes, found by their ``scheme``
        sources=[PixNotificationSource],
        steps=[CdaValidateStep],                # pipeline steps, found by their ``kind``
        migrations=Path(__file__).parent / "migrations",   # an Alembic branch of the plugin's tables
        console=[EMPI_SECTION],                 # web console pages + API (engine.console.sections)
    )

``engine.plugins`` in ``config.yaml`` lists the modules (default: ``profiles.plugin``, which
registers every shipped actor). A plugin that cannot be imported is a configuration problem that
``hie check`` reports, not a crash.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from pydantic import BaseModel

from engine.errors import ConfigProblem

if TYPE_CHECKING:
    from engine.config import AppConfig
    from engine.connectors.base import Destination, Source
    from engine.console.sections import ConsoleSection
    from engine.services import Services
    from engine.steps.base import Step

__all__ = ["Job", "Plugin", "load_plugins"]


@dataclass(frozen=True)
class Job:
    """Work a plugin has the engine do on a schedule (APScheduler), in the first worker only:
    ``run(services, app)`` is blocking and runs on a thread; ``schedule(app)`` returns an APScheduler
    trigger and its arguments (``"cron", {"hour": 0, "minute": 30}``), so the configuration may set
    the time."""

    name: str
    run: Callable[[Services, AppConfig], object]
    schedule: Callable[[AppConfig], tuple[str, dict[str, Any]]]


@dataclass(frozen=True)
class Plugin:
    name: str
    sections: Mapping[str, type[BaseModel]] = field(default_factory=dict)
    destinations: Sequence[type[Destination]] = ()
    sources: Sequence[type[Source]] = ()
    steps: Sequence[type[Step]] = ()  # pipeline steps channels can name (``cda-validate``)
    # checks ``hie check`` and start-up run once the channels are known (a plugin's own files)
    checks: Sequence[Callable[[AppConfig], list[ConfigProblem]]] = ()
    jobs: Sequence[Job] = ()  # scheduled work (a daily roll-up)
    commands: Sequence[click.Command] = ()  # more ``hie`` commands (``hie empi ...``)
    migrations: Path | None = None  # a folder of Alembic revisions: one branch, depending on the engine's
    # pages and API routes of the web console (engine.console.sections)
    console: Sequence[ConsoleSection] = ()


def load_plugins(modules: Iterable[str], config_file: str) -> tuple[list[Plugin], list[ConfigProblem]]:
    """Import each module and take its ``PLUGIN`` (a module may also list several in ``PLUGINS``)."""
    plugins: list[Plugin] = []
    problems: list[ConfigProblem] = []
    for name in modules:
        try:
            module = importlib.import_module(name)
        except Exception as exc:  # any import failure is a configuration problem, not a crash
            problems.append(
                ConfigProblem(
                    config_file, None, "engine.plugins", f"cannot import {name}: {type(exc).__name__}: {exc}"
                )
            )
            continue
        found = getattr(module, "PLUGINS", None) or [getattr(module, "PLUGIN", None)]
        for plugin in found:
            if not isinstance(plugin, Plugin):
                problems.append(
                    ConfigProblem(
                        config_file, None, "engine.plugins", f"{name} defines no PLUGIN = Plugin(...)"
                    )
                )
                continue
            plugins.append(plugin)
    return plugins, problems
