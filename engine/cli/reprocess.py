"""``hie messages reprocess``: run stored messages through their channel again, as new messages.

``reprocess`` never touches the original: it runs the received bytes through the channel's pipeline
again as a new message (``reprocessed_from`` = the original) whose queue entries have no owner, so the
running engine's recovery pass (every 10 s), or its next start, delivers them.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from sqlalchemy import Engine

from engine import audit
from engine.cli.common import config_option, load_or_exit
from engine.cli.filters import search_filters, search_from
from engine.cli.store_access import cli_services, open_store, write_all
from engine.config import AppConfig, ChannelConfig
from engine.reprocess import Reprocessed, prepare_reprocess
from engine.store.queries import matching_ids, originals

if TYPE_CHECKING:
    pass

__all__ = ["reprocess"]

CHUNK = 200  # messages loaded, prepared and written together when reprocessing


def _check_targets(
    app: AppConfig, found: dict[int, dict[str, Any]], targets: tuple[str, ...]
) -> dict[str, ChannelConfig]:
    """The channels of the messages, each in the configuration and enabled, knowing every --to name."""
    configs = {c.id: c for c in app.channels}
    chosen: dict[str, ChannelConfig] = {}
    problems: list[str] = []
    for cid in sorted({o["channel_id"] for o in found.values()}):
        cfg = configs.get(cid)
        if cfg is None:
            problems.append(f"channel {cid} is not in the configuration ({app.path})")
            continue
        if not cfg.enabled:
            problems.append(f"channel {cid} is disabled: no engine would deliver its messages")
            continue
        known = [d.id for d in cfg.destinations]
        unknown = [t for t in targets if t not in known]
        if unknown:
            problems.append(
                f"channel {cid} has no destination {', '.join(unknown)}; "
                f"its destinations: {', '.join(known) or 'none'}"
            )
        chosen[cid] = cfg
    if problems:
        raise click.ClickException("\n".join(problems))
    return chosen


@click.command()
@click.argument("ids", metavar="ID...", nargs=-1, type=int)
@click.option(
    "--to",
    "targets",
    multiple=True,
    metavar="DEST",
    help="queue only for this destination (repeatable); default: each one the routes choose",
)
@click.option("--all-matching", is_flag=True, help="reprocess every message matching the filters below")
@search_filters
@click.option("--yes", "-y", is_flag=True, help="do not ask for confirmation")
@config_option
def reprocess(
    ids: tuple[int, ...],
    targets: tuple[str, ...],
    all_matching: bool,
    yes: bool,
    config_path: Path | None,
    **kw: Any,
) -> None:
    """Run stored messages through their channel again, as new messages; the originals stay as they are.

    The new messages (reprocessed_from = the original) are queued without an owner: a running engine
    takes them over within about 10 s, a stopped one when it starts. Give IDs, or --all-matching with
    search filters (a count is shown and confirmation asked unless --yes).
    """
    app = load_or_exit(config_path)
    user = audit.cli_user()
    s = search_from(kw, limit=None, before=None)
    if all_matching and ids:
        raise click.UsageError("give message IDs or --all-matching with filters, not both")
    if not all_matching and not ids:
        raise click.UsageError("give message IDs, or --all-matching with search filters")
    if not all_matching and not s.is_empty():
        raise click.UsageError("search filters need --all-matching")
    if all_matching and s.is_empty():
        raise click.UsageError("--all-matching needs at least one filter (e.g. --since 30d)")
    with open_store(app) as db:
        wanted = matching_ids(db, s) if all_matching else sorted(set(ids))
        if not wanted:
            click.echo("no messages match")
            return
        found = originals(db, wanted, with_raw=False)
        missing = [i for i in wanted if i not in found]
        if missing:  # only possible with explicit ids
            raise click.ClickException(f"no message with id {', '.join(map(str, missing))}")
        pruned = [i for i in wanted if not found[i]["has_raw"]]
        if pruned and not all_matching:
            raise click.ClickException(
                f"the raw bytes were pruned by retention: {', '.join(map(str, pruned))}"
            )
        channels = _check_targets(app, found, targets)
        todo = [i for i in wanted if found[i]["has_raw"]]
        if all_matching:
            click.echo(
                f"{len(wanted)} message(s) match"
                + (f"; {len(pruned)} pruned by retention are skipped" if pruned else "")
            )
            if not todo:
                return
            if not yes:
                click.confirm(f"reprocess {len(todo)} message(s)?", abort=True)
        del found
        results = _run_reprocess(app, db, channels, todo, set(targets) or None, user)
    _report(results)


def _run_reprocess(
    app: AppConfig,
    db: Engine,
    channels: dict[str, ChannelConfig],
    todo: list[int],
    only: set[str] | None,
    user: str,
) -> list[Reprocessed]:
    from engine.channel import Channel  # pulls in every connector; only reprocess needs it

    results: list[Reprocessed] = []
    with cli_services(app, db) as services:
        built = {cid: Channel(cfg, services) for cid, cfg in channels.items()}
        chunks = [todo[i : i + CHUNK] for i in range(0, len(todo), CHUNK)]
        with click.progressbar(
            length=len(todo), label="reprocessing", file=sys.stderr, hidden=len(todo) < 50
        ) as bar:
            for chunk in chunks:
                found = originals(db, chunk)
                prepared = [
                    prepare_reprocess(
                        built[found[i]["channel_id"]], found[i], only, user, services, application="hie-cli"
                    )
                    for i in chunk
                    if i in found and found[i]["raw"] is not None
                ]
                for (_, result), exc in zip(
                    prepared, write_all(services.writer, [b for b, _ in prepared]), strict=True
                ):
                    if exc is not None:
                        result.new_id, result.error, result.status = None, f"not stored: {exc}", "failed"
                    results.append(result)
                bar.update(len(chunk))
    return results


def _report(results: list[Reprocessed]) -> None:
    from engine.runtime import HEARTBEAT_SECONDS  # how often a running engine takes over orphaned entries

    stored = [r for r in results if r.new_id is not None]
    for r in results:
        if r.new_id is None:
            click.echo(f"{r.original}: {r.error}", err=True)
            continue
        if r.queued:
            what = f"queued for {', '.join(r.queued)}"
        elif r.status == "received":
            what = "no destination chosen"
        else:
            what = r.status + (f": {r.error}" if r.error else "")
        click.echo(f"{r.original} -> {r.new_id} {what}")
        if r.not_routed:
            click.echo(
                f"  not queued for {', '.join(r.not_routed)}: the channel's routes do not send it there",
                err=True,
            )
    queued = sum(1 for r in stored if r.queued)
    click.echo(
        f"{len(stored)} new message(s), {queued} with queued deliveries: a running engine picks "
        f"them up within ~{HEARTBEAT_SECONDS:g} s, a stopped one when it starts"
    )
    if len(stored) < len(results):
        raise click.ClickException(f"{len(results) - len(stored)} message(s) could not be reprocessed")
