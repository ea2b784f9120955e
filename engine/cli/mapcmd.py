"""``hie map``: run a mapping on a file and print the result, without starting the engine.

hie map hospital-a-adt tests/data/mappings/hospital-a-adt/a01-inpatient.hl7
hie map hospital-a-adt --then platform-adt-v25 INPUT        # a chain, as a channel runs it
hie map hospital-a-adt INPUT --expected INPUT.expected.json # diff; exit 1 when they differ
hie map --functions                                         # the transform functions
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from engine.cli.common import config_path
from engine.config import load_config
from engine.errors import ConfigError

__all__ = ["map_command"]


@click.command("map")
@click.argument("mapping", required=False)
@click.argument("input_file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--then", "then", multiple=True, help="further mappings applied to the result, in order")
@click.option(
    "--expected",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="compare with this file and print the differences",
)
@click.option("--functions", "list_functions", is_flag=True, help="list the transform functions and exit")
@click.option(
    "--config",
    "-c",
    "config_file",
    type=click.Path(path_type=Path),
    default=None,
    help="config.yaml (default: $HIE_CONFIG or ./config.yaml): where mappings/ is",
)
def map_command(
    mapping: str | None,
    input_file: Path | None,
    then: tuple[str, ...],
    expected: Path | None,
    list_functions: bool,
    config_file: Path | None,
) -> None:
    """Run MAPPING on INPUT_FILE and print the output (JSON or HL7 v2, one segment per line)."""
    from engine.mapping import cases, functions

    if list_functions:
        for _, spec in sorted(functions.FUNCTIONS.items()):
            click.echo(f"{spec.signature:48} {spec.doc}")
        return
    if mapping is None or input_file is None:
        raise click.UsageError("give a MAPPING and an INPUT_FILE (or --functions)")
    path = config_path(config_file)
    if not path.is_file():
        raise click.ClickException(f"{path}: configuration file not found")
    try:
        app = load_config(path, check_connectors=False)
        catalog = app.mapping_catalog(raise_on_problems=False)
    except ConfigError as exc:
        _problems(exc.problems)
        sys.exit(2)
    if app.catalog_problems:
        _problems(app.catalog_problems)
    chain = []
    for mapping_id in (mapping, *then):
        if mapping_id not in catalog:
            state = "has errors" if catalog.known(mapping_id) else "not found"
            raise click.ClickException(
                f"mapping {mapping_id}: {state} (known: {', '.join(sorted(catalog.mappings))})"
            )
        chain.append(catalog.get(mapping_id))
    data = cases.read_input(input_file, chain[0].input.kind)
    actual = cases.actual_text(chain, data)
    click.echo(actual, nl=False)
    try:
        _, _, warnings = cases.run_chain(chain, data)
    except Exception:
        warnings = []
    for w in warnings:
        click.echo(f"warning: {w}", err=True)
    if expected is not None:
        diff = cases.compare(expected, actual)
        if diff:
            click.echo("".join(diff), err=True)
            click.echo(f"differs from {expected}", err=True)
            sys.exit(1)
        click.echo(f"matches {expected}", err=True)


def _problems(problems: list) -> None:  # type: ignore[type-arg]
    for p in problems:
        click.echo(str(p), err=True)
    click.echo(f"{len(problems)} problem(s) in the mappings", err=True)
