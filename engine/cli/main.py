"""``hie``: run the engine, check configuration, send messages, browse the message store."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from engine.cli.common import config_option, load_or_exit, setup_logging
from engine.cli.mapcmd import map_command
from engine.cli.messages import messages
from engine.cli.prune import prune
from engine.cli.send import send
from engine.cli.stats import stats
from engine.cli.users import users

__all__ = ["main"]


@click.group()
@click.version_option(package_name="hie")
def main() -> None:
    """hie: an HL7 v2 / IHE interoperability engine."""


@main.command()
@config_option
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    envvar="HIE_WORKERS",
    show_default=True,
    help="Engine processes sharing the listeners' ports and the PostgreSQL store (one per core).",
)
@click.option("--worker", "worker_of", hidden=True, help="index/count/supervisor pid (set by --workers)")
def run(config_path: Path | None, workers: int, worker_of: str | None) -> None:
    """Start every enabled channel and serve until Ctrl-C / SIGTERM."""
    app = load_or_exit(config_path)
    setup_logging(app.engine.log_level)
    from engine.runtime import Runtime, Worker

    if workers > 1 and worker_of is None:
        from engine.workers import WorkersRefused, supervise

        try:
            raise SystemExit(supervise(app, workers))
        except WorkersRefused as exc:
            raise click.UsageError(str(exc)) from None
    worker = Worker()
    if worker_of is not None:
        index, count, parent = (int(x) for x in worker_of.split("/"))
        worker = Worker(index, count, parent)
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency, but the engine works without it
        asyncio.run(Runtime(app, worker, keep_heap=True).run_forever())
    else:
        uvloop.run(Runtime(app, worker, keep_heap=True).run_forever())


@main.command()
@click.argument("config_file", required=False, type=click.Path(path_type=Path))
def check(config_file: Path | None) -> None:
    """Load config.yaml and every channel; print each problem with file, line and field."""
    app = load_or_exit(config_file)
    click.echo(f"{app.path}: ok, {len(app.channels)} channel(s)")
    for ch in app.channels:
        state = "" if ch.enabled else " (disabled)"
        click.echo(
            f"  {ch.id}: {ch.source.url} -> {', '.join(d.id for d in ch.destinations) or 'no destinations'}"
            f"{state}"
        )


main.add_command(send)
main.add_command(messages)
main.add_command(stats)
main.add_command(map_command)
main.add_command(prune)
main.add_command(users)


def _plugin_commands() -> None:
    """The commands of the default plugins (``engine.plugins``); a broken plugin is left to ``hie check``."""
    from engine.config import EngineSettings
    from engine.plugins import load_plugins

    plugins, _ = load_plugins(EngineSettings().plugins, "config.yaml")
    for plugin in plugins:
        for command in plugin.commands:
            main.add_command(command)


_plugin_commands()


if __name__ == "__main__":  # python -m engine.cli.main: how hie run --workers starts its workers
    main()
