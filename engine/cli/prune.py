"""``hie prune``: the retention job (``engine/retention.py``), now rather than at ``retention.prune_at``.

Prints per channel how many messages were archived and pruned and how many deleted, and the archive
files written; ``--dry-run`` only counts (nothing is written, not even an audit record, since nothing
is read but counts).
"""

from __future__ import annotations

from pathlib import Path

import click

from engine import audit, retention
from engine.cli.common import config_option, load_or_exit
from engine.cli.output import local_time
from engine.cli.store_access import cli_services, open_store
from engine.store.db import utcnow

__all__ = ["prune"]


@click.command()
@click.option("--dry-run", is_flag=True, help="count what would be pruned and deleted; change nothing")
@config_option
def prune(dry_run: bool, config_path: Path | None) -> None:
    """Archive and prune the content of messages older than retention.content_days, delete those older
    than retention.metadata_days (each channel's own retention where it has one).

    Messages whose deliveries are still queued are left alone; audit records are never deleted. A run
    is recorded in the audit trail (ATNA, DICOM 110110 Patient Record, delete) under your OS user.
    """
    app = load_or_exit(config_path)
    now = utcnow()
    with open_store(app) as db:
        if dry_run:
            result = retention.plan(db, app, now)
        else:
            with cli_services(app, db) as services:
                result = retention.prune(services, app, now, user=audit.cli_user())
    if result.locked_out:
        raise click.ClickException("another prune is running (the engine's nightly run?); try again later")
    verb = ("would archive and prune", "would delete") if dry_run else ("archived and pruned", "deleted")
    click.echo(f"retention as of {local_time(now)}{' (dry run: nothing changed)' if dry_run else ''}")
    if not result.channels:
        click.echo("  no messages in the store")
    for c in result.channels:
        held = f", {c.held} held (deliveries still queued)" if c.held else ""
        click.echo(
            f"  {c.channel} (content {c.content_days} d, metadata {c.metadata_days} d): "
            f"{verb[0]} {c.pruned}, {verb[1]} {c.deleted}{held}"
        )
        if c.archive is not None:
            click.echo(f"    archive: {c.archive}")
    click.echo(f"total: {verb[0]} {result.pruned}, {verb[1]} {result.deleted}")
