"""The search filters shared by ``hie messages list``, ``search`` and ``reprocess --all-matching``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from engine.cli.output import WHEN
from engine.store.queries import SEARCH_STATUSES, Search
from engine.store.textindex import MIN_CHARS, TextSearchError, check

__all__ = ["search_filters", "search_from"]

F = TypeVar("F", bound=Callable[..., Any])


def search_filters(func: F) -> F:
    """The filters shared by ``list``, ``search`` and ``reprocess --all-matching``."""
    options = [
        click.option("--channel", help="channel id"),
        click.option(
            "--status",
            type=click.Choice(SEARCH_STATUSES),
            help="received/filtered/errored: the message; errored also matches a dead-lettered "
            "delivery; queued/pending/sent: one of its deliveries (--destination's, if given)",
        ),
        click.option("--since", type=WHEN, help="received at or after: 2026-11-22, 2026-11-22T08:30, 2h, 7d"),
        click.option("--until", type=WHEN, help="received before (same forms as --since)"),
        click.option("--control-id", help="MSH-10"),
        click.option("--patient-id", help="a patient identifier (PID-3, PID-2, PID-4, PID-19, MRG-1)"),
        click.option("--type", "message_type", help="ADT^A01 exactly, ADT for every ADT event, or ADT^A0*"),
        click.option("--facility", help="sending facility (MSH-4)"),
        click.option("--destination", help="has a delivery to this destination"),
        click.option(
            "--text",
            help=f"holds this text (any case; at least {MIN_CHARS} characters) in its raw or transformed "
            "content; a message is searchable a few seconds after it arrived",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def search_from(kw: dict[str, Any], *, limit: int | None, before: int | None) -> Search:
    wanted = kw.get("text")
    if wanted:
        try:
            check(wanted)
        except TextSearchError as exc:
            raise click.BadParameter(str(exc), param_hint="'--text'") from None
    return Search(
        channel=kw.get("channel"),
        status=kw.get("status"),
        since=kw.get("since"),
        until=kw.get("until"),
        control_id=kw.get("control_id"),
        patient_id=kw.get("patient_id"),
        message_type=kw.get("message_type"),
        sending_facility=kw.get("facility"),
        destination=kw.get("destination"),
        text=wanted or None,
        before_id=before,
        limit=limit,
    )
