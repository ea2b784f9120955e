"""``hie xds``: try the registry and repository by hand, as a Document Source and Consumer would.

    hie xds submit discharge.xml --patient 320102198503120311      # ITI-41 (MTOM), national ID
    hie xds submit note.pdf --patient 'A1001^^^&1.2.156.112604.1.1&ISO' --title "门诊病历"
    hie xds query --patient 320102198503120311                     # ITI-18 FindDocuments
    hie xds get 2.25.1234... --out copy.xml                        # ITI-43

The endpoints are the channels of ``config.yaml`` whose destinations are ``xds-repository:`` and
``xds-registry:`` (``--url`` to name another). Each command prints what the service answered,
errors with their XDS codes, and exits 1 when the answer is not a Success.
"""

from __future__ import annotations

import mimetypes
import sys
import uuid
from pathlib import Path

import click
import httpx
from lxml import etree

from engine.cli.common import config_option, load_or_exit
from ihe._ebxml import DE_UNIQUE_ID, RIM, RS, STATUS_TYPE, SUCCESS
from ihe._mtom import join_related, split_related
from ihe._soap import SOAP12, SOAP_MEDIA_TYPE, SoapFault, build_envelope, parse_xml
from ihe.iti18 import QUERY
from ihe.iti41 import DocumentMetadata, provide_request
from ihe.iti43 import XDSB
from profiles.empi.config import NATIONAL_ID_OID
from profiles.xds.config import XdsConfig

__all__ = ["xds"]

_ITI = "urn:ihe:iti:2007:"
_FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
_SOURCE_ID = "1.2.156.112600.9.1"  # hie's CLI as a Document Source


def _endpoint(config_path: Path | None, destination: str, url: str | None) -> str:
    if url:
        return url
    app = load_or_exit(config_path)
    for channel in app.channels:
        if any(d.url.startswith(f"{destination}:") for d in channel.destinations):
            source = channel.source.url
            if source.startswith("soap://"):
                scheme = "https" if getattr(channel.source, "tls", None) else "http"
                return f"{scheme}://{source.removeprefix('soap://')}"
    raise click.ClickException(f"no channel of the configuration serves {destination}: (give --url)")


def _mime_type(file: Path) -> str:
    """From the file name; XML is text/xml, as XDS names CDA documents (not application/xml)."""
    if file.suffix.lower() == ".xml":
        return "text/xml"
    return mimetypes.guess_type(file.name)[0] or "application/octet-stream"


def _patient(value: str) -> str:
    """ID^^^&OID&ISO as given, or a bare national ID-card number in its domain."""
    return value if "^" in value else f"{value.strip().upper()}^^^&{NATIONAL_ID_OID}&ISO"


def _post(url: str, body: bytes, content_type: str) -> tuple[etree._Element, dict[str, bytes]]:
    """POST a request; the answer's body element, and its MTOM parts by Content-ID."""
    try:
        resp = httpx.post(url, content=body, headers={"Content-Type": content_type}, timeout=60)
    except httpx.HTTPError as exc:
        raise click.ClickException(f"cannot reach {url}: {type(exc).__name__}: {exc}") from None
    media = resp.headers.get("content-type", "")
    parts: dict[str, bytes] = {}
    content = resp.content
    try:
        if media.startswith("multipart/related"):
            package = split_related(media, content)
            content, parts = package.root, package.parts
        root = parse_xml(content)
    except SoapFault:
        raise click.ClickException(f"HTTP {resp.status_code} from {url}, not a SOAP answer") from None
    found = root.find(f"{{{SOAP12}}}Body")
    if found is None or not len(found):
        raise click.ClickException(f"HTTP {resp.status_code} from {url}, not a SOAP envelope")
    answer = found[0]
    if answer.tag == f"{{{SOAP12}}}Fault":
        reason = answer.findtext(f".//{{{SOAP12}}}Text")
        raise click.ClickException(f"SOAP fault from {url} (HTTP {resp.status_code}): {reason}")
    return answer, parts


def _errors(element: etree._Element) -> bool:
    """Print the RegistryErrors under ``element``; True when one is an Error."""
    fatal = False
    for e in element.iter(f"{{{RS}}}RegistryError"):
        severity = e.get("severity", "").rsplit(":", 1)[-1] or "Error"
        fatal = fatal or severity == "Error"
        where = f" (at {e.get('location')})" if e.get("location") else ""
        click.echo(f"{severity}: {e.get('errorCode')}: {e.get('codeContext')}{where}", err=True)
    return fatal


def _envelope(action: str, body: etree._Element) -> bytes:
    envelope = build_envelope(body, action=action, relates_to=None)
    return envelope.replace(
        b"</s:Header>", f"<a:MessageID>urn:uuid:{uuid.uuid4()}</a:MessageID></s:Header>".encode(), 1
    )


@click.group()
def xds() -> None:
    """The XDS.b registry and repository: submit, find and retrieve documents."""


@xds.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--patient", required=True, help="ID^^^&OID&ISO, or a national ID-card number")
@click.option("--title", default="", help="the document's title")
@click.option("--mime", "mime_type", default=None, help="its MIME type (default: from the file name)")
@click.option("--unique-id", default="", help="its uniqueId (default: a new 2.25 OID)")
@click.option("--url", default=None, help="the repository's endpoint (default: from the configuration)")
@config_option
def submit(
    file: Path,
    patient: str,
    title: str,
    mime_type: str | None,
    unique_id: str,
    url: str | None,
    config_path: Path | None,
) -> None:
    """ITI-41: provide FILE for a patient and register it."""
    endpoint = _endpoint(config_path, "xds-repository", url)
    meta = DocumentMetadata(
        patient_id=_patient(patient),
        source_id=_SOURCE_ID,
        mime_type=mime_type or _mime_type(file),
        title=title or file.name,
        unique_id=unique_id,
    )
    cid = f"document@{uuid.uuid4().hex}.hie"
    envelope = _envelope(f"{_ITI}ProvideAndRegisterDocumentSet-b", provide_request(meta, content_id=cid))
    content_type, package = join_related(envelope, [(cid, meta.mime_type, file.read_bytes())])
    answer, _ = _post(endpoint, package, content_type)
    if _errors(answer) or answer.get("status") != SUCCESS:
        sys.exit(1)
    click.echo(
        f"registered {meta.unique_id} for {meta.patient_id} ({meta.mime_type}, {file.stat().st_size} bytes)"
    )


@xds.command()
@click.option("--patient", required=True, help="ID^^^&OID&ISO, or a national ID-card number")
@click.option("--deprecated", is_flag=True, help="also the entries a newer version replaced")
@click.option("--url", default=None, help="the registry's endpoint (default: from the configuration)")
@config_option
def query(patient: str, deprecated: bool, url: str | None, config_path: Path | None) -> None:
    """ITI-18 FindDocuments: the patient's documents, newest first."""
    endpoint = _endpoint(config_path, "xds-registry", url)
    statuses = ",".join(
        f"'{STATUS_TYPE}{s}'" for s in (["Approved", "Deprecated"] if deprecated else ["Approved"])
    )
    request = etree.Element(f"{{{QUERY}}}AdhocQueryRequest", nsmap={"query": QUERY, "rim": RIM})
    etree.SubElement(
        request, f"{{{QUERY}}}ResponseOption", returnType="LeafClass", returnComposedObjects="true"
    )
    adhoc = etree.SubElement(request, f"{{{RIM}}}AdhocQuery", id=_FIND_DOCUMENTS)
    for name, value in (
        ("$XDSDocumentEntryPatientId", f"'{_patient(patient)}'"),
        ("$XDSDocumentEntryStatus", f"({statuses})"),
    ):
        slot = etree.SubElement(adhoc, f"{{{RIM}}}Slot", name=name)
        etree.SubElement(etree.SubElement(slot, f"{{{RIM}}}ValueList"), f"{{{RIM}}}Value").text = value
    answer, _ = _post(endpoint, _envelope(f"{_ITI}RegistryStoredQuery", request), SOAP_MEDIA_TYPE)
    if _errors(answer):
        sys.exit(1)
    entries = list(answer.iter(f"{{{RIM}}}ExtrinsicObject"))
    for entry in entries:
        slots = {s.get("name"): s.findtext(f".//{{{RIM}}}Value") or "" for s in entry.iter(f"{{{RIM}}}Slot")}
        unique = next(
            (
                e.get("value")
                for e in entry.iter(f"{{{RIM}}}ExternalIdentifier")
                if e.get("identificationScheme") == DE_UNIQUE_ID
            ),
            "",
        )
        name = entry.find(f"{{{RIM}}}Name/{{{RIM}}}LocalizedString")
        click.echo(
            "\t".join(
                [
                    unique or "",
                    slots.get("creationTime", ""),
                    entry.get("mimeType", ""),
                    entry.get("status", "").rsplit(":", 1)[-1],
                    slots.get("size", ""),
                    name.get("value", "") if name is not None else "",
                ]
            )
        )
    click.echo(f"{len(entries)} document(s)", err=True)


@xds.command()
@click.argument("unique_id")
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="write it here (default: stdout)"
)
@click.option("--repository", default=None, help="the repositoryUniqueId (default: this engine's)")
@click.option("--url", default=None, help="the repository's endpoint (default: from the configuration)")
@config_option
def get(
    unique_id: str, out: Path | None, repository: str | None, url: str | None, config_path: Path | None
) -> None:
    """ITI-43: retrieve a document by its uniqueId."""
    endpoint = _endpoint(config_path, "xds-repository", url)
    repository = repository or load_or_exit(config_path).section("xds", XdsConfig).repository_unique_id
    request = etree.Element(f"{{{XDSB}}}RetrieveDocumentSetRequest", nsmap={None: XDSB})
    item = etree.SubElement(request, f"{{{XDSB}}}DocumentRequest")
    etree.SubElement(item, f"{{{XDSB}}}RepositoryUniqueId").text = repository
    etree.SubElement(item, f"{{{XDSB}}}DocumentUniqueId").text = unique_id
    answer, parts = _post(endpoint, _envelope(f"{_ITI}RetrieveDocumentSet", request), SOAP_MEDIA_TYPE)
    if _errors(answer):
        sys.exit(1)
    content = next(iter(parts.values()), None)
    if content is None:
        raise click.ClickException("the answer holds no document")
    if out is not None:
        out.write_bytes(content)
        click.echo(f"wrote {len(content)} bytes to {out}", err=True)
    else:
        sys.stdout.buffer.write(content)
