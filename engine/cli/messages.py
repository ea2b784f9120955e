"""``hie messages``: list, search, show and reprocess the messages in the store.

``list`` and ``search`` print metadata only (never content), so they need no audit record. ``show``
(:mod:`engine.cli.show`) and ``reprocess`` (:mod:`engine.cli.reprocess`) are commands of their own modules,
registered on the group here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from engine.cli.common import config_option, load_or_exit
from engine.cli.filters import search_filters, search_from
from engine.cli.output import echo_json, format_table, local_time, truncate
from engine.cli.reprocess import reprocess
from engine.cli.show import show
from engine.cli.store_access import open_store
from engine.store.queries import search
from engine.store.textindex import unindexed

__all__ = ["messages"]

ERROR_WIDTH = 48  # characters of the error summary in listings


@click.group()
def messages() -> None:
    """Browse the message store: list, search, show, reprocess."""


# -- list / search --------------------------------------------------------------------------------------
def _summary(row: dict[str, Any]) -> str:
    if row.get("error"):
        return str(row["error"])
    for d in row["deliveries"]:
        if d["status"] == "errored" or (d["status"] == "queued" and d["last_error"]):
            return f"{d['destination']}: {d['last_error'] or d['status']}"
    return ""


def _listing(
    config_path: Path | None, limit: int, before: int | None, as_json: bool, kw: dict[str, Any]
) -> None:
    app = load_or_exit(config_path)
    s = search_from(kw, limit=limit + 1, before=before)
    with open_store(app) as db:
        rows = search(db, s)
        behind = unindexed(db) if s.text else 0
    if behind:
        click.echo(f"note: --text does not search the {behind} newest message(s), not indexed yet", err=True)
    more = len(rows) > limit
    rows = rows[:limit]
    next_before = rows[-1]["id"] if more else None
    if as_json:
        keep = (
            "id",
            "received_at",
            "channel_id",
            "message_type",
            "control_id",
            "sending_application",
            "sending_facility",
            "status",
            "content_type",
            "error",
            "reprocessed_from",
            "deliveries",
        )
        echo_json({"messages": [{k: r[k] for k in keep} for r in rows], "next_before": next_before})
        return
    if not rows:
        click.echo("no messages match", err=True)
        return
    table = format_table(
        ("ID", "RECEIVED", "CHANNEL", "TYPE", "CONTROL ID", "FACILITY", "STATUS", "DELIVERIES", "ERROR"),
        [
            (
                r["id"],
                local_time(r["received_at"]),
                r["channel_id"],
                r["message_type"],
                r["control_id"],
                r["sending_facility"],
                r["status"],
                " ".join(f"{d['destination']}:{d['status']}" for d in r["deliveries"]),
                truncate(_summary(r), ERROR_WIDTH),
            )
            for r in rows
        ],
    )
    for line in table:
        click.echo(line)
    if next_before is not None:
        click.echo(f"more: add --before {next_before}", err=True)


def _listing_command(name: str, doc: str) -> click.Command:
    @click.command(name=name, help=doc)
    @search_filters
    @click.option(
        "--limit", type=click.IntRange(1, 100_000), default=50, show_default=True, help="most messages shown"
    )
    @click.option("--before", "before", type=int, metavar="ID", help="page: messages older than this id")
    @click.option("--json", "as_json", is_flag=True, help="machine-readable output")
    @config_option
    def command(config_path: Path | None, limit: int, before: int | None, as_json: bool, **kw: Any) -> None:
        _listing(config_path, limit, before, as_json, kw)

    return command


messages.add_command(
    _listing_command(
        "list", "Newest messages first, metadata only (never content). Accepts the same filters as search."
    )
)
messages.add_command(
    _listing_command(
        "search", "Messages matching every filter given, newest first, metadata only (never content)."
    )
)

messages.add_command(show)
messages.add_command(reprocess)
