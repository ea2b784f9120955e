"""``hie stats``: per channel, how many messages were received and filtered, deliveries queued and sent,
and what errored, read from the store (works whether or not the engine is running).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import click

from engine.cli.common import config_option, load_or_exit
from engine.cli.output import WHEN, format_table, local_time
from engine.cli.store_access import open_store
from engine.store import queries
from engine.store.queries import STAT_COLUMNS

__all__ = ["stats"]


@click.command()
@click.option("--channel", help="only this channel")
@click.option("--since", type=WHEN, help="messages received since: 2026-11-22, 2026-11-22T08:30, 2h, 7d")
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@config_option
def stats(channel: str | None, since: datetime | None, as_json: bool, config_path: Path | None) -> None:
    """Per channel: received and filtered messages, queued and sent deliveries, errored (both), and a total.

    received counts every message stored; errored is messages stored as errored plus dead-lettered
    deliveries (--json gives the two apart).
    """
    app = load_or_exit(config_path)
    with open_store(app) as db:
        counts = queries.stats(db, channel=channel, since=since)
    # configured channels appear even before their first message
    keys = [*STAT_COLUMNS, "errored_messages", "errored_deliveries"]
    for cfg in app.channels:
        if channel in (None, cfg.id) and cfg.id not in counts:
            counts[cfg.id] = dict.fromkeys(keys, 0)
    names = sorted(counts)
    total = {k: sum(counts[n][k] for n in names) for k in keys}
    if as_json:
        click.echo(
            json.dumps(
                {
                    "since": since.astimezone(UTC).isoformat() if since else None,
                    "channels": {n: counts[n] for n in names},
                    "total": total,
                },
                indent=2,
            )
        )
        return
    if since is not None:
        click.echo(f"since {local_time(since)}")
    right = range(1, len(STAT_COLUMNS) + 1)
    lines = format_table(
        ("CHANNEL", *(c.upper() for c in STAT_COLUMNS)),
        [
            *([n, *(counts[n][c] for c in STAT_COLUMNS)] for n in names),
            ["total", *(total[c] for c in STAT_COLUMNS)],
        ],
        right=right,
    )
    for line in lines[:-1]:
        click.echo(line)
    click.echo("-" * max(len(x) for x in lines))
    click.echo(lines[-1])
