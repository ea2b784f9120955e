"""XDS.b benchmark: a registry of a million entries, then ITI-18, ITI-41 and ITI-43 over HTTP.

Run from the project root::

    .venv/bin/python bench/xds_throughput.py [--patients 200000] [--per-patient 5] [--seconds 20]
        [--clients 8] [--sqlite] [--postgres] [--store-url URL]

1. Synthetic patients (``bench/empi_throughput.py``'s made-up persons, valid GB 11643 numbers) loaded
   into the EMPI with the product's bulk loader, then ``--per-patient`` DocumentEntries each written
   into the registry's tables in batches: each row the stored metadata of a real ITI-41 request
   (``ihe.iti41``) read by the product, its ids changed per entry. Time and rows/s are printed.
2. ``hie run`` in a subprocess on that store with the sample ``xds-registry`` and ``xds-repository``
   channels (every request stored, answered, audited), and ``--clients`` HTTP/1.1 keep-alive
   connections from this process, each sending one request and waiting for its answer:
   * ITI-18 FindDocuments (LeafClass) for a random patient: every answer must be Success with its
     ``--per-patient`` entries; once from a single client (the latency one consumer sees), once from
     ``--clients`` at a time (throughput, and latency under that load);
   * ITI-41 of a new 50 KB document (MTOM) for a random patient: every answer must be Success;
   * ITI-43 of one 1 MB document: every answer must carry it, byte for byte.
   Figures: requests/s, p50/p99 latency, and the database size.

Targets (issue "XDS.b Document Registry and Repository"): FindDocuments p99 below 30 ms; at least 100
ITI-41 submissions/s of 50 KB with 8 clients; ITI-43 of 1 MB at least 100/s. The clients share the
machine's two cores with the engine. The benchmark only measures and prints.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from bench.empi_throughput import (  # noqa: E402
    DEFAULT_PG,
    Phase,
    database_mb,
    load,
    load_rate,
    person,
    stores_of,
    summary,
    write_csv,
)
from bench.mllp_throughput import _wait_port, free_port, pg_database  # noqa: E402

NATIONAL = "2.16.156.10011.1.3"
ITI = "urn:ihe:iti:2007:"
RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
SUCCESS = b"ResponseStatusType:Success"


def national_ids(patients: int) -> Counter[str]:
    """How many of the synthetic patients carry each national ID (a few numbers repeat)."""
    return Counter(person(n).national_id for n in range(patients))


def patient_id(n: int) -> str:
    return f"{person(n).national_id}^^^&{NATIONAL}&ISO"


def write_config(base: Path, store_url: str, port: int) -> Path:
    from bench.empi_throughput import write_config as empi_config

    config = empi_config(
        base, store_url, {"pix-feed": free_port(), "pix-query": free_port(), "pdq-query": free_port()}
    )
    for name in ("pix-feed", "pix-query", "pdq-query"):
        (base / "channels" / f"{name}.yaml").unlink()
    for name in ("xds-registry", "xds-repository"):
        text = (
            (ROOT / "channels" / f"{name}.yaml")
            .read_text("utf-8")
            .replace("127.0.0.1:8089", f"127.0.0.1:{port}")
        )
        (base / "channels" / f"{name}.yaml").write_text(text, "utf-8")
    return config


# -- the registry's million entries ------------------------------------------------------------------
def _template() -> tuple[str, str, str]:
    """The stored ExtrinsicObject of a real ITI-41 request, and the values to replace per entry."""
    from ihe._ebxml import read_submission
    from ihe.iti41 import DocumentMetadata, provide_request
    from profiles.xds.registry import _stored

    meta = DocumentMetadata(
        patient_id="PATIENT^^^&1.2&ISO", source_id="1.2.3", title="出院小结", author_person="^王^医生"
    )
    request = provide_request(meta, inline=b"x")
    submission, _ = read_submission(request, registry=False)
    entry = submission.documents[0]
    text = _stored(
        entry.element,
        {"Document01": "urn:uuid:ENTRY", "SubmissionSet01": "urn:uuid:SET"},
        lid="urn:uuid:ENTRY",
    )
    return text, "urn:uuid:ENTRY", meta.unique_id


def load_registry(config: Path, patients: int, per_patient: int) -> tuple[float, int]:
    from sqlalchemy import select

    from engine.config import load_config
    from engine.ids import IdGenerator
    from engine.store.db import open_engine, utcnow
    from engine.store.writer import insert_rows
    from profiles.empi.schema import persons
    from profiles.xds.schema import document_codes, documents

    app = load_config(config)
    db = open_engine(app.store_url, synchronous="full")
    ids = IdGenerator(1001).next
    text, entry_marker, unique_marker = _template()
    with db.connect() as conn:
        person_of = {r.national_id: r.id for r in conn.execute(select(persons.c.id, persons.c.national_id))}
    t0 = time.perf_counter()
    now = utcnow()
    rows = 0
    batch: list[dict[str, object]] = []
    codes: list[dict[str, object]] = []

    def flush() -> None:
        with db.begin() as conn:
            insert_rows(conn, [(documents, batch), (document_codes, codes)])
        batch.clear()
        codes.clear()

    for n in range(patients):
        p = person(n)
        pid = f"{p.national_id}^^^&{NATIONAL}&ISO"
        for k in range(per_patient):
            row_id = ids()
            entry = f"urn:uuid:{uuid.uuid4()}"
            unique = f"2.25.{uuid.uuid4().int}"
            created = f"20{10 + k:02d}{1 + n % 12:02d}{1 + n % 28:02d}120000"
            batch.append(
                {
                    "id": row_id,
                    "entry_uuid": entry,
                    "lid": entry,
                    "version": 1,
                    "status": "Approved",
                    "patient_id": pid,
                    "person_id": person_of[p.national_id],
                    "unique_id": unique,
                    "object_type": "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1",
                    "mime_type": "text/xml",
                    "hash": "da39a3ee5e6b4b0d3255bfef95601890afd80709",
                    "size": 51200,
                    "repository_unique_id": "1.2.156.112600.1.2.1",
                    "creation_time": created,
                    "service_start_time": None,
                    "service_stop_time": None,
                    "class_code": "34133-9^^2.16.840.1.113883.6.1",
                    "type_code": "34133-9^^2.16.840.1.113883.6.1",
                    "format_code": "urn:ihe:iti:xds:2017:mimeTypeSufficient^^1.3.6.1.4.1.19376.1.2.3",
                    "facility_type_code": "22232009^^2.16.840.1.113883.6.96",
                    "practice_setting_code": "394802001^^2.16.840.1.113883.6.96",
                    "author_persons": "^王^医生",
                    "submission_set_uuid": f"urn:uuid:{uuid.uuid4()}",
                    "registered_at": now,
                    "message_id": None,
                    "metadata": text.replace(entry_marker, entry)
                    .replace(unique_marker, unique)
                    .replace("PATIENT^^^&amp;1.2&amp;ISO", pid.replace("&", "&amp;")),
                }
            )
            codes.append(
                {
                    "document_id": row_id,
                    "attribute": "confidentialityCode",
                    "code": "N^^2.16.840.1.113883.5.25",
                }
            )
            rows += 1
            if len(batch) >= 5000:
                flush()
    if batch:
        flush()
    seconds = time.perf_counter() - t0
    db.dispose()
    return seconds, rows


# -- requests -----------------------------------------------------------------------------------------
def envelope(action: str, body: str) -> bytes:
    return (
        '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
        'xmlns:a="http://www.w3.org/2005/08/addressing">'
        f'<s:Header><a:Action s:mustUnderstand="1">{action}</a:Action>'
        f"<a:MessageID>urn:uuid:{uuid.uuid4()}</a:MessageID>"
        f"</s:Header><s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def find(patients: int) -> tuple[bytes, str, str]:
    """A FindDocuments request for a random patient, and that patient's national ID."""
    n = random.randrange(1, patients)
    pid = patient_id(n).replace("&", "&amp;")
    body = (
        '<query:AdhocQueryRequest xmlns:query="urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0" '
        f'xmlns:rim="{RIM}">'
        '<query:ResponseOption returnType="LeafClass" returnComposedObjects="true"/>'
        '<rim:AdhocQuery id="urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d">'
        '<rim:Slot name="$XDSDocumentEntryPatientId"><rim:ValueList>'
        f"<rim:Value>'{pid}'</rim:Value></rim:ValueList></rim:Slot>"
        '<rim:Slot name="$XDSDocumentEntryStatus"><rim:ValueList>'
        "<rim:Value>('urn:oasis:names:tc:ebxml-regrep:StatusType:Approved')</rim:Value></rim:ValueList></rim:Slot>"
        "</rim:AdhocQuery></query:AdhocQueryRequest>"
    )
    return envelope(f"{ITI}RegistryStoredQuery", body), "application/soap+xml", person(n).national_id


def submission(patient: int, document: bytes) -> tuple[bytes, str]:
    from lxml import etree

    from ihe._mtom import join_related
    from ihe.iti41 import DocumentMetadata, provide_request

    meta = DocumentMetadata(patient_id=patient_id(patient), source_id="1.2.156.112600.9.2", title="出院小结")
    body = etree.tostring(provide_request(meta, content_id="doc@bench")).decode()
    content_type, package = join_related(
        envelope(f"{ITI}ProvideAndRegisterDocumentSet-b", body), [("doc@bench", "text/xml", document)]
    )
    return package, content_type


def retrieval(unique_id: str) -> tuple[bytes, str]:
    body = (
        '<RetrieveDocumentSetRequest xmlns="urn:ihe:iti:xds-b:2007"><DocumentRequest>'
        "<RepositoryUniqueId>1.2.156.112600.1.2.1</RepositoryUniqueId>"
        f"<DocumentUniqueId>{unique_id}</DocumentUniqueId></DocumentRequest></RetrieveDocumentSetRequest>"
    )
    return envelope(f"{ITI}RetrieveDocumentSet", body), "application/soap+xml"


async def drive(
    url: str,
    clients: int,
    seconds: float,
    make: Callable[[], tuple[bytes, str, str]],
    check: Callable[[httpx.Response, str], str | None],
    phase: Phase,
) -> None:
    stop = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:

        async def one() -> None:
            while time.perf_counter() < stop:
                body, content_type, key = make()
                t0 = time.perf_counter()
                resp = await client.post(url, content=body, headers={"Content-Type": content_type})
                phase.latencies_ms.append((time.perf_counter() - t0) * 1000)
                phase.done += 1
                problem = check(resp, key)
                if problem:
                    phase.bad.append(problem)

        t0 = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(clients)))
        phase.seconds = time.perf_counter() - t0


def _success(resp: httpx.Response, key: str = "") -> str | None:
    return (
        None
        if resp.status_code == 200 and SUCCESS in resp.content
        else resp.content[:300].decode("utf-8", "replace")
    )


def _entries(expected: Counter[str]) -> Callable[[httpx.Response, str], str | None]:
    """The answer holds every entry of the patient's national ID (synthetic persons may share one:
    the EMPI makes them one person, whose entries are all found)."""

    def check(resp: httpx.Response, national_id: str) -> str | None:
        found = resp.content.count(b"<rim:ExtrinsicObject")
        n = expected[national_id]
        return _success(resp) or (None if found == n else f"{found} entries, not {n}")

    return check


def _carries(document: bytes) -> Callable[[httpx.Response, str], str | None]:
    def check(resp: httpx.Response, key: str) -> str | None:
        return _success(resp) or (None if document in resp.content else "the document is not in the answer")

    return check


async def _once(url: str, body: bytes, content_type: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=60) as client:
        return await client.post(url, content=body, headers={"Content-Type": content_type})


def run_store(label: str, store: str, args: argparse.Namespace, csv_path: Path) -> dict[str, object]:
    base = Path(tempfile.mkdtemp(prefix="hie-xds-bench-"))
    out: dict[str, object] = {"store": label}
    try:
        with contextlib.ExitStack() as stack:
            store_url = (
                stack.enter_context(pg_database(store))
                if store.startswith("postgresql")
                else (store or f"sqlite:///{base / 'data' / 'hie.db'}")
            )
            port = free_port()
            config = write_config(base, store_url, port)
            seconds, records = load(config, csv_path)
            print(f"  [{label}] EMPI: {records:,} records in {seconds:,.1f} s")
            seconds, rows = load_registry(config, args.patients, args.per_patient)
            out |= {"load_s": seconds, "load_rows": rows, "db_mb_loaded": database_mb(store_url, base)}
            print(
                f"  [{label}] registry: {rows:,} entries in {seconds:,.1f} s ({rows / seconds:,.0f} rows/s)"
            )
            proc = subprocess.Popen(
                [str(ROOT / ".venv" / "bin" / "hie"), "run", "--config", str(config)],
                cwd=base,
                stdout=subprocess.DEVNULL,
                stderr=(base / "engine.log").open("wb"),
            )
            registry = f"http://127.0.0.1:{port}/xds/registry"
            repository = f"http://127.0.0.1:{port}/xds/repository"
            try:
                _wait_port(port, proc, timeout=120.0)
                small = (
                    b"<ClinicalDocument xmlns='urn:hl7-org:v3'>"
                    + os.urandom(25 * 1024).hex().encode()[: 50 * 1024 - 60]
                    + b"</ClinicalDocument>"
                )
                big = os.urandom(1024 * 1024)
                body, content_type = submission(0, big)  # patient 0 is never queried
                marker = b'identificationScheme="urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab" value="'
                unique = body.split(marker, 1)[1].split(b'"', 1)[0]
                first = asyncio.run(_once(repository, body, content_type))
                if _success(first):
                    print(f"  [{label}] the 1 MB submission failed: {first.content[:300]!r}")
                entries = _entries(
                    Counter({k: v * args.per_patient for k, v in national_ids(args.patients).items()})
                )
                phases: list[
                    tuple[
                        str,
                        str,
                        int,
                        Callable[[], tuple[bytes, str, str]],
                        Callable[[httpx.Response, str], str | None],
                    ]
                ] = [
                    ("ITI-18 1 client", registry, 1, lambda: find(args.patients), entries),
                    ("ITI-18", registry, args.clients, lambda: find(args.patients), entries),
                    (
                        "ITI-41",
                        repository,
                        args.clients,
                        lambda: (*submission(random.randrange(args.patients), small), ""),
                        _success,
                    ),
                    (
                        "ITI-43",
                        repository,
                        args.clients,
                        lambda: (*retrieval(unique.decode()), ""),
                        _carries(big),
                    ),
                ]
                for name, url, clients, make, check in phases:
                    phase = Phase(name)
                    asyncio.run(drive(url, clients, args.seconds, make, check, phase))
                    out[name] = phase
                    phase.report(label)
            finally:
                proc.terminate()
                proc.wait(30)
            out["db_mb_after"] = database_mb(store_url, base)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--patients", type=int, default=200_000)
    parser.add_argument("--per-patient", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=20.0, help="per phase")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument(
        "--sqlite", action="store_true", help="measure on SQLite (default when nothing is named)"
    )
    parser.add_argument("--postgres", action="store_true", help="measure on a fresh PostgreSQL database too")
    parser.add_argument("--store-url", default=os.environ.get("HIE_BENCH_PG", DEFAULT_PG))
    args = parser.parse_args()
    stores = stores_of(args)
    work = Path(tempfile.mkdtemp(prefix="hie-xds-csv-"))
    try:
        csv_path = work / "persons.csv"
        write_csv(csv_path, args.patients)
        results = [run_store(label, url, args, csv_path) for label, url in stores]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    print(
        f"XDS.b, {args.patients:,} patients x {args.per_patient} entries, {args.clients} clients, "
        f"{args.seconds:g} s per phase"
    )
    summary(
        results,
        [("registry load (entries/s)", load_rate, "")],
        [
            ("ITI-18 1 client", "p99 < 30 ms"),
            ("ITI-18", "p99 < 30 ms"),
            ("ITI-41", ">= 100/s (50 KB)"),
            ("ITI-43", ">= 100/s (1 MB)"),
        ],
    )


if __name__ == "__main__":
    main()
