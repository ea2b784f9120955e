"""``hie dicom``: try the archive by hand, as a hospital PACS would, and look after its patients.

    hie dicom echo                                     # C-ECHO the configured dicom:// channel
    hie dicom store study/ ct1.dcm --aet HOSP_A_PACS   # C-STORE files and folders (prints each status)
    hie dicom find --level STUDY -k PatientID=A1001 -k StudyDate=20261101-
    hie dicom unreconciled                             # studies whose patient the EMPI does not know
    hie dicom reconcile                                # look them up again now

The archive is the channel of ``config.yaml`` whose source is ``dicom://`` (``--host``/``--port`` to
name another SCP). Each network command exits 1 when the SCP refuses or fails.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pynetdicom import AE, evt
from sqlalchemy import select

from engine import audit
from engine.cli.common import config_option, load_or_exit
from engine.cli.store_access import cli_services, open_store
from engine.store.schema import audit_events
from engine.store.writer import Batch
from profiles.dicom.config import DicomConfig
from profiles.dicom.jobs import reconcile_now
from profiles.dicom.schema import studies
from profiles.dicom.sop_classes import TRANSFER_SYNTAXES

__all__ = ["dicom"]

VERIFICATION = "1.2.840.10008.1.1"
FIND_MODELS = {"study": "1.2.840.10008.5.1.4.1.2.2.1", "patient": "1.2.840.10008.5.1.4.1.2.1.1"}


def _target(
    config_path: Path | None, host: str | None, port: int | None, aec: str | None
) -> tuple[str, int, str]:
    if host and port and aec:
        return host, port, aec
    app = load_or_exit(config_path)
    config = app.section("dicom", DicomConfig)
    for channel in app.channels:
        url = channel.source.url
        if url.startswith("dicom://"):
            where = url.removeprefix("dicom://").rstrip("/")
            h, _, p = where.rpartition(":")
            return host or h, port or int(p), aec or config.ae_title
    raise click.ClickException(
        "no channel of the configuration has a dicom:// source (give --host and --port)"
    )


def _nodelay(event: Any) -> None:
    # small objects stall on Nagle's algorithm without it (xds.md §8)
    event.assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _associate(ae: AE, host: str, port: int, aec: str) -> Any:
    assoc = ae.associate(host, port, ae_title=aec, evt_handlers=[(evt.EVT_CONN_OPEN, _nodelay)])
    if not assoc.is_established:
        raise click.ClickException(f"{aec} at {host}:{port} did not accept the association")
    return assoc


def _network_options(f: Any) -> Any:
    f = click.option("--host", help="the SCP's address (default: the configured dicom:// channel)")(f)
    f = click.option("--port", type=int, help="the SCP's port")(f)
    f = click.option("--aec", help="the called AE title (default: dicom.ae_title)")(f)
    f = click.option("--aet", default="HIE_CLI", show_default=True, help="our (calling) AE title")(f)
    return config_option(f)


@click.group()
def dicom() -> None:
    """The regional image archive: echo, store, find; patients the EMPI did not know."""


@dicom.command()
@_network_options
def echo(host: str | None, port: int | None, aec: str | None, aet: str, config_path: Path | None) -> None:
    """C-ECHO: is the archive there and does it accept us?"""
    host, port, aec = _target(config_path, host, port, aec)
    ae = AE(ae_title=aet)
    ae.add_requested_context(VERIFICATION)
    assoc = _associate(ae, host, port, aec)
    status = assoc.send_c_echo()
    assoc.release()
    code = int(status.Status) if "Status" in status else -1
    click.echo(f"C-ECHO {aec} at {host}:{port}: status 0x{code:04X}")
    if code != 0:
        sys.exit(1)


def _files(paths: tuple[Path, ...]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file())
        else:
            yield path


@dicom.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@_network_options
def store(
    paths: tuple[Path, ...],
    host: str | None,
    port: int | None,
    aec: str | None,
    aet: str,
    config_path: Path | None,
) -> None:
    """C-STORE DICOM files (folders are walked); each file's status is printed."""
    host, port, aec = _target(config_path, host, port, aec)
    datasets: list[tuple[Path, Dataset]] = []
    for file in _files(paths):
        try:
            datasets.append((file, dcmread(file)))
        except (InvalidDicomError, OSError, ValueError) as exc:
            click.echo(f"{file}: not a DICOM file: {exc}", err=True)
    if not datasets:
        raise click.ClickException("no DICOM files to send")
    ae = AE(ae_title=aet)
    for sop_class in sorted({str(ds.SOPClassUID) for _, ds in datasets}):
        ae.add_requested_context(sop_class, TRANSFER_SYNTAXES[:2])
    for ds_ts in sorted({str(ds.file_meta.TransferSyntaxUID) for _, ds in datasets}):
        if ds_ts not in TRANSFER_SYNTAXES[:2]:
            for sop_class in sorted({str(ds.SOPClassUID) for _, ds in datasets}):
                ae.add_requested_context(sop_class, ds_ts)
    assoc = _associate(ae, host, port, aec)
    failed = 0
    with click.progressbar(datasets, label="C-STORE", file=sys.stderr) as bar:
        for file, ds in bar:
            status = assoc.send_c_store(ds)
            code = int(status.Status) if "Status" in status else -1
            comment = f" {status.ErrorComment}" if "ErrorComment" in status else ""
            if code != 0:
                failed += 1
            click.echo(f"{file}: 0x{code:04X}{comment}")
    assoc.release()
    click.echo(f"{len(datasets) - failed} stored, {failed} failed")
    if failed:
        sys.exit(1)


@dicom.command()
@click.option("--level", type=click.Choice(["PATIENT", "STUDY", "SERIES", "IMAGE"]), default="STUDY")
@click.option("--model", type=click.Choice(["study", "patient"]), default="study", help="the root")
@click.option("-k", "keys", multiple=True, metavar="KEYWORD=VALUE", help="a matching or return key")
@_network_options
def find(
    level: str,
    model: str,
    keys: tuple[str, ...],
    host: str | None,
    port: int | None,
    aec: str | None,
    aet: str,
    config_path: Path | None,
) -> None:
    """C-FIND: the matches, one line each, with the keys asked for."""
    host, port, aec = _target(config_path, host, port, aec)
    query = Dataset()
    query.QueryRetrieveLevel = level
    for keyword in ("PatientID", "PatientName", "StudyInstanceUID", "StudyDate", "ModalitiesInStudy"):
        setattr(query, keyword, "")
    for key in keys:
        keyword, _, value = key.partition("=")
        try:
            setattr(query, keyword, value)
        except (ValueError, TypeError) as exc:
            raise click.BadParameter(f"{key}: {exc}", param_hint="-k") from None
    ae = AE(ae_title=aet)
    ae.add_requested_context(FIND_MODELS[model])
    assoc = _associate(ae, host, port, aec)
    matches, final = 0, -1
    for status, identifier in assoc.send_c_find(query, FIND_MODELS[model]):
        if "Status" not in status:
            break
        final = int(status.Status)
        if final in (0xFF00, 0xFF01) and identifier is not None:
            matches += 1
            shown = [f"{e.keyword}={e.value}" for e in identifier if e.keyword and e.value not in ("", None)]
            click.echo("  ".join(shown))
        elif final != 0:
            comment = f": {status.ErrorComment}" if "ErrorComment" in status else ""
            click.echo(f"C-FIND failed with 0x{final:04X}{comment}", err=True)
    assoc.release()
    click.echo(f"{matches} matches")
    if final != 0:
        sys.exit(1)


@dicom.command()
@config_option
def unreconciled(config_path: Path | None) -> None:
    """Studies whose patient the EMPI does not know yet (the reconciliation review list)."""
    app = load_or_exit(config_path)
    with open_store(app) as db, cli_services(app, db) as services:
        with db.connect() as conn:
            rows = conn.execute(
                select(studies)
                .where(studies.c.patient_status == "unknown")
                .order_by(studies.c.first_received_at)
            ).all()
        if not rows:
            click.echo("every study's patient is known to the EMPI")
            return
        for r in rows:
            click.echo(
                f"{r.study_uid}  {r.patient_id}^^^{r.issuer or '-'}  from {r.source_ae}  "
                f"{r.instances} instances  first {r.first_received_at:%Y-%m-%d %H:%M}"
            )
        # a list of patient ids is a read of patient data: audited like any other
        event = audit.AuditEvent(
            event_id=audit.PATIENT_RECORD,
            action="R",
            outcome=audit.Outcome.SUCCESS,
            event_time=datetime.now(UTC),
            event_type="hie dicom unreconciled^CLI^hie",
            user_id=audit.cli_user(),
            objects=[
                {"type": 1, "role": 1, "id_type": "2", "id": f"{r.patient_id}^^^{r.issuer}"} for r in rows
            ],
        )
        batch = Batch()
        batch.insert(audit_events, event.row(services.ids.next()))
        services.writer.write_sync(batch)


@dicom.command()
@config_option
def reconcile(config_path: Path | None) -> None:
    """Look every unknown patient up in the EMPI again now (the engine also does it on a schedule)."""
    app = load_or_exit(config_path)
    with open_store(app) as db, cli_services(app, db) as services:
        found = reconcile_now(services)
    click.echo(f"{len(found)} studies reconciled")
