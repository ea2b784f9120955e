"""Shared CLI plumbing: finding and loading the configuration, logging set-up."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import click

from engine.config import AppConfig, load_config
from engine.errors import ConfigError

__all__ = ["config_option", "load_or_exit", "setup_logging"]

DEFAULT_CONFIG = "config.yaml"

config_option = click.option(
    "--config",
    "-c",
    "config_path",
    type=click.Path(path_type=Path),
    default=None,
    help="config.yaml to use (default: $HIE_CONFIG or ./config.yaml)",
)


def config_path(given: Path | None) -> Path:
    return given or Path(os.environ.get("HIE_CONFIG", DEFAULT_CONFIG))


def load_or_exit(given: Path | None) -> AppConfig:
    path = config_path(given)
    if not path.is_file():
        raise click.ClickException(f"{path}: configuration file not found")
    try:
        return load_config(path)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        click.echo(f"{len(exc.problems)} problem(s) in the configuration", err=True)
        sys.exit(2)


def setup_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # third-party chatter (every migration step, every scheduler job) is not news at INFO
    for noisy in ("alembic", "apscheduler"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, getattr(logging, level)))
