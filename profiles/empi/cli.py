"""``hie empi``: the data steward's commands (review queue, show, link, unlink, restore).

    hie empi review                      # open reviews: the record, the candidate person, the score
    hie empi review 123 --link           # they are one person
    hie empi review 123 --reject         # they are not
    hie empi show hospital-a A1001       # the person, every record, the history (audited)
    hie empi link hospital-b B2 --to hospital-a A1001
    hie empi merge hospital-b B2 --into hospital-a A1001   # the whole person of B2 joins A1001's
    hie empi unlink hospital-b B2        # a person of its own again
    hie empi restore hospital-b B1       # undo an A40 for that identifier

Every change is one transaction with its history, its ITI-10 notifications and an audit record;
a person that loses its last record is merged into the other, and the XDS registry's documents and
the DICOM archive's studies follow it (as they follow an ITI-8 A40).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from engine import audit
from engine.cli.common import config_option, load_or_exit
from engine.cli.store_access import cli_services, open_store
from profiles.empi.admin import AdminError, EmpiAdmin
from profiles.empi.config import EmpiConfig
from profiles.empi.domains import Domains

__all__ = ["empi"]


@contextmanager
def _admin(config_path: Path | None) -> Iterator[EmpiAdmin]:
    app = load_or_exit(config_path)
    notify = [c.id for c in app.channels if c.source.url.startswith("pix-iti10:")]
    from profiles.plugin import MERGE_FOLLOWERS  # the plugin imports this module: import it late

    with open_store(app) as db, cli_services(app, db) as services:
        domains = Domains(app.section("empi", EmpiConfig))
        try:
            yield EmpiAdmin(
                db,
                domains,
                services.ids,
                user=audit.cli_user(),
                notify_channels=notify,
                merge_listeners=MERGE_FOLLOWERS,
            )
        except AdminError as exc:
            raise click.ClickException(str(exc)) from None


@click.group()
def empi() -> None:
    """The master patient index: review uncertain matches, show, link, unlink, restore."""


@empi.command()
@click.argument("review_id", required=False, type=int)
@click.option("--link", "decision", flag_value="link", help="the record and the candidate are one person")
@click.option("--reject", "decision", flag_value="reject", help="they are different people")
@config_option
def review(review_id: int | None, decision: str | None, config_path: Path | None) -> None:
    """List the open reviews, or decide one (REVIEW_ID with --link or --reject)."""
    with _admin(config_path) as admin:
        if review_id is None:
            items = admin.open_reviews()
            if not items:
                click.echo("no open reviews")
            for item in items:
                click.echo(
                    f"review {item['id']}  score {item['score']:.2f}  "
                    f"{item['domain']} {item['value']}: {item['name'] or '?'}, {item['birth_date'] or '?'}, "
                    f"sex {item['sex'] or '?'}"
                )
                for c in item["candidate"]:
                    click.echo(
                        f"    candidate {c['domain']} {c['value']}: {c['name'] or '?'}, "
                        f"{c['birth_date'] or '?'}, sex {c['sex'] or '?'}"
                    )
            return
        if decision is None:
            raise click.UsageError("say --link or --reject")
        admin.resolve_review(review_id, link=decision == "link")
        click.echo(f"review {review_id}: {'linked' if decision == 'link' else 'rejected'}")


@empi.command()
@click.argument("domain")
@click.argument("value")
@config_option
def show(domain: str, value: str, config_path: Path | None) -> None:
    """The person of a record: national ID, every linked record, and the history."""
    with _admin(config_path) as admin:
        view = admin.show(domain, value)
    p = view.person
    click.echo(f"person {p['id']} ({p['status']})  national ID {p['national_id'] or '-'}")
    for r in view.records:
        click.echo(
            f"  {r['domain']} {r['value']} [{r['status']}]: {r['name'] or '?'}, {r['birth_date'] or '?'}, "
            f"sex {r['sex'] or '?'}, phone {r['phone'] or '-'}"
        )
    for e in view.history:
        score = f" score {e['score']:.2f}" if e["score"] is not None else ""
        click.echo(
            f"  {e['at']:%Y-%m-%d %H:%M:%S} {e['kind']} record {e['record_id']} by {e['actor']}{score}"
        )


@empi.command()
@click.argument("domain")
@click.argument("value")
@click.option("--to", "target", nargs=2, required=True, metavar="DOMAIN VALUE", help="the record to join")
@config_option
def link(domain: str, value: str, target: tuple[str, str], config_path: Path | None) -> None:
    """Link a record to the person of another record."""
    with _admin(config_path) as admin:
        admin.link(domain, value, *target)
    click.echo(f"{domain} {value} linked to the person of {target[0]} {target[1]}")


@empi.command()
@click.argument("domain")
@click.argument("value")
@click.option(
    "--into", "target", nargs=2, required=True, metavar="DOMAIN VALUE", help="a record of the survivor"
)
@config_option
def merge(domain: str, value: str, target: tuple[str, str], config_path: Path | None) -> None:
    """Merge the whole person of a record into the person of another record."""
    with _admin(config_path) as admin:
        done = admin.merge(domain, value, *target)
    click.echo(
        f"person {done['merged_person_id']} merged into person {done['person_id']}: "
        f"{len(done['moved'])} record(s) moved"
    )


@empi.command()
@click.argument("domain")
@click.argument("value")
@config_option
def unlink(domain: str, value: str, config_path: Path | None) -> None:
    """Give a record a person of its own."""
    with _admin(config_path) as admin:
        person = admin.unlink(domain, value)
    click.echo(f"{domain} {value} is now person {person}")


@empi.command()
@click.argument("domain")
@click.argument("value")
@config_option
def restore(domain: str, value: str, config_path: Path | None) -> None:
    """Undo an A40 merge for one identifier: it is active again, as a person of its own."""
    with _admin(config_path) as admin:
        person = admin.restore(domain, value)
    click.echo(f"{domain} {value} restored as person {person}")


@empi.command()
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--batch", default=5000, show_default=True, help="rows per transaction")
@config_option
def load(csv_file: Path, batch: int, config_path: Path | None) -> None:
    """Bulk-load identities from a CSV.

    Columns: domain,value,national_id,name,family,given,birth_date,sex,phone,city.
    """
    from profiles.empi.load import load_csv

    app = load_or_exit(config_path)
    with open_store(app) as db, cli_services(app, db) as services:
        domains = Domains(app.section("empi", EmpiConfig))
        with csv_file.open("rb") as handle:
            lines = max(sum(1 for _ in handle) - 1, 0)
        with click.progressbar(length=lines, label="loading", file=sys.stderr) as bar:

            def advance(n: int) -> None:
                bar.update(n)

            try:
                report = load_csv(db, domains, csv_file, services.ids.next, batch=batch, progress=advance)
            except ValueError as exc:
                raise click.ClickException(str(exc)) from None
    for problem in report.problems:
        click.echo(f"{csv_file}:{problem.removeprefix('line ')}", err=True)
    click.echo(
        f"{report.records} record(s) of {report.persons} new person(s) loaded; {report.skipped} skipped"
    )
