"""``hie messages reprocess``: run stored messages through their channel again, as new messages.

``reprocess`` never touches the original: it runs the received bytes through the channel's pipeline
again as a new message (``reprocessed_from`` = the original) whose queue entries have no owner, so the
running engine's recovery pass (every 10 s), or its next start, delivers them.
"""

from __future__ import annotations

import dataclasses
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from sqlalchemy import Engine

from engine import audit
from engine.cli.common import config_option, load_or_exit
from engine.cli.filters import search_filters, search_from
from engine.cli.store_access import cli_services, open_store, write_all
from engine.config import AppConfig, ChannelConfig
from engine.message import ContentType, OutcomeStatus
from engine.services import Services
from engine.store.queries import matching_ids, originals
from engine.store.schema import audit_events, deliveries
from engine.store.writer import Batch

if TYPE_CHECKING:
    from engine.channel import Channel

__all__ = ["reprocess"]

CHUNK = 200  # messages loaded, prepared and written together when reprocessing


def _reprocess_event(
    orig: dict[str, Any], new_id: int, outcome: str, user: str, now: datetime
) -> audit.AuditEvent:
    """The user's act, on the original message's patients.

    DICOM 110106 "Export" with action E: reprocessing sends a stored patient's data out of the engine
    again, on a person's command, which is what Export covers (data leaving the system's custody). PS3.15
    gives Export the action R; we use E (execute) so that this record of a person's command, which by
    itself sends nothing, is told apart from the engine's own Export/R record of each actual send (written
    by the destination queue with the engine as requestor). Neither 110110 Patient Record (C/R/U/D on a
    record, the new copy's creation is already audited by the channel as 110107 Import) nor 110100
    Application Activity (start/stop of an application) fits a person re-sending patient data.
    """
    read = audit.message_read_event(
        user=user,
        message_id=orig["id"],
        channel_id=orig["channel_id"],
        control_id=orig["control_id"],
        message_type=orig["message_type"],
        event_time=now,
        application="hie-cli",
        patients=[(i["value"], i["authority"]) for i in orig["identifiers"]],
        description=f"reprocessed as message {new_id}: {outcome}",
    )
    objects = [
        *read.objects,
        {
            "type": 2,
            "role": 3,
            "id_type": "message_id",
            "id": str(new_id),
            "detail": {"message_id": str(new_id), "reprocessed_from": str(orig["id"])},
        },
    ]
    return dataclasses.replace(
        read, event_id=audit.EXPORT, action="E", event_type=f"reprocess^{orig['channel_id']}", objects=objects
    )


@dataclasses.dataclass
class _Result:
    original: int
    new_id: int | None = None
    status: str = ""  # the new message's stored status (received, filtered, errored) or "failed"
    queued: list[str] = dataclasses.field(default_factory=list)
    not_routed: list[str] = dataclasses.field(default_factory=list)
    error: str | None = None


def _prepare(
    channel: Channel, orig: dict[str, Any], only: set[str] | None, user: str, services: Services
) -> tuple[Batch, _Result]:
    msg, outcome, batch, _ = channel.prepare(
        orig["raw"],
        f"reprocess:{user}",
        ContentType(orig["content_type"]),
        reprocessed_from=orig["id"],
        only=only,
    )
    stored = {OutcomeStatus.ACCEPTED: "received", OutcomeStatus.FILTERED: "filtered"}.get(
        outcome.status, "errored"
    )
    result = _Result(orig["id"], msg.id, stored)
    for row in batch.inserts.get(deliveries.name, []):
        # No owner: the running engine's recovery pass takes the entry over (or the next start does).
        row["owner_node"] = None
        if row["status"] == "pending":
            # after_delivery: nobody waits for this answer; the entry is delivered from the queue
            row["status"] = "queued"
        if row["status"] == "queued":
            result.queued.append(row["destination"])
        elif only is not None and row["destination"] in only:
            result.not_routed.append(row["destination"])
    if outcome.error is not None:
        result.error = outcome.error.text
    elif outcome.status is OutcomeStatus.FILTERED:
        result.error = str(msg.variables.get("filtered_by", ""))
    event = _reprocess_event(orig, msg.id, stored, user, msg.received_at)
    batch.insert(audit_events, event.row(services.ids.next()))
    return batch, result


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
) -> list[_Result]:
    from engine.channel import Channel  # pulls in every connector; only reprocess needs it

    results: list[_Result] = []
    with cli_services(app, db) as services:
        built = {cid: Channel(cfg, services) for cid, cfg in channels.items()}
        chunks = [todo[i : i + CHUNK] for i in range(0, len(todo), CHUNK)]
        with click.progressbar(
            length=len(todo), label="reprocessing", file=sys.stderr, hidden=len(todo) < 50
        ) as bar:
            for chunk in chunks:
                found = originals(db, chunk)
                prepared = [
                    _prepare(built[found[i]["channel_id"]], found[i], only, user, services)
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


def _report(results: list[_Result]) -> None:
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
