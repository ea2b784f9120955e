"""The WADO-RS source (``wado://host:port/path``): DICOM PS3.18 §10.4 Retrieve Transaction for web
viewers, on the engine's HTTP listener, read-only, from the regional archive's index and files.

::

    source:
      url: wado://127.0.0.1:8089/dicomweb

Resources (PS3.18 §10.4.1, under the URL's path):

========================================================== ==========================================
``GET .../studies/{study}``                                the study's instances
``GET .../studies/{study}/series/{series}``                the series' instances
``GET .../studies/{study}/series/{series}/instances/{sop}`` the instance
``.../metadata`` after any of these                        their headers, without bulk data
========================================================== ==========================================

* **Instances** (PS3.18 §10.4.1.1.1; media type §8.7.3.1): ``multipart/related;
  type="application/dicom"; boundary=...``, one part per instance, its archived PS3.10 file as it
  was received, each part ``Content-Type: application/dicom; transfer-syntax=<its transfer
  syntax>``. The files are streamed from disk in chunks read off the event loop, never held whole
  in memory.
* **Metadata** (PS3.18 §10.4.1.1.2; §8.7.3.2, Annex F.2): ``application/dicom+json``, a JSON array
  of each instance's header read up to its pixel data; other binary values longer than about 1 KB
  (bulk data, which would be a BulkDataURI) are left out, since bulk data resources are not offered.
* **Accept** (PS3.18 §10.4.1.3; the transfer-syntax parameter §8.7.3.5.2): ``multipart/related;
  type="application/dicom"`` (with ``transfer-syntax=*`` or the archived one) for instances,
  ``application/dicom+json`` for metadata, ``*/*`` or no Accept for either; ``q=0`` ranges are
  ignored; anything else is 406. **Nothing is transcoded**: an instance is served in the transfer
  syntax it was archived in, also when the request names none (where the standard's default is
  Explicit VR Little Endian); a request that names only other transfer syntaxes is 406, naming the
  archived one.
* **Status** (PS3.18 §10.4.3.1): 200; 206 with a ``Warning: 299`` header when some archived
  files cannot be read; 400 for a UID that is not one (PS3.5 §9.1); 404 naming the study, series or
  instance the archive does not have; 406; 500 when none of the files can be read; 503 when the
  access cannot be audited. Error bodies are JSON: ``{"status": 404, "error": "..."}``.
* **Audit** (PS3.15 A.5.3): each retrieval is an ATNA "DICOM Instances Transferred" (110104, R)
  record naming the client's address, the study, its patient and how many instances, committed
  *before* the first byte is sent (no audit record, no data: 503); a transfer cut short (the client
  went away, a file could not be read) adds a second record with the failure and how many were sent.
  The study's detail says which resource was read (``instances`` or ``metadata``).

The instances are those a C-GET of the same UIDs would send (``profiles.dicom.query.instances_for``).

Not offered: QIDO-RS search (§10.6), STOW-RS store (§10.5: hospitals store with C-STORE), rendered
and thumbnail resources (§10.4.1.1.3-4), bulk data and frames (§10.4.1.1.1), transcoding, the
``accept`` query parameter (§8.3.3.1). A POST to the path is 405; unknown paths are 404.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pydantic import Field
from pydicom import dcmread
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from sqlalchemy import Connection, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from engine.audit import AuditEvent, Outcome
from engine.connectors.base import Options
from engine.connectors.http import HttpSource
from engine.services import Services
from engine.store.schema import audit_events
from engine.store.writer import Batch
from profiles.dicom import audit
from profiles.dicom.actor import DicomActor
from profiles.dicom.archive import valid_uid
from profiles.dicom.query import Selected, instances_for
from profiles.dicom.schema import instances, series, studies

__all__ = ["WadoSource", "WadoSourceOptions"]

log = logging.getLogger(__name__)

DICOM_MEDIA = "application/dicom"
JSON_MEDIA = "application/dicom+json"
_CHUNK = 512 * 1024  # bytes read from an archived file at a time
_BULK = 1024  # base64 characters above which a binary value is bulk data (left out of metadata)
_OMITTED = "\x00omitted"  # what the bulk data handler marks; such elements are dropped


class WadoSourceOptions(Options):
    tls: str | None = Field(None, description="name of a tls: entry of config.yaml: serve HTTPS")


@dataclass(frozen=True)
class _Target:
    """What a request names: a study, a series of it or an instance of that."""

    study: str
    series: str = ""
    instance: str = ""

    @property
    def level(self) -> str:
        return "IMAGE" if self.instance else "SERIES" if self.series else "STUDY"


@dataclass(frozen=True)
class _Range:
    """One media range of an Accept header."""

    media: str
    params: dict[str, str]
    q: float


class _Refused(Exception):
    """An answer other than the resource: its HTTP status and why."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class WadoSource(HttpSource):
    """WADO-RS Retrieve (studies, series, instances and their metadata) on a path of the HTTP listener."""

    scheme = "wado"
    Options = WadoSourceOptions  # type: ignore[assignment]
    options: WadoSourceOptions  # type: ignore[assignment]
    _actor: DicomActor | None = None
    _services: Services | None = None

    def attach(self, services: Services) -> None:
        self._services = services
        self._actor = DicomActor.of(services)

    @property
    def actor(self) -> DicomActor:
        assert self._actor is not None, "attach() first"
        return self._actor

    @property
    def services(self) -> Services:
        assert self._services is not None, "attach() first"
        return self._services

    async def start(self) -> None:
        await super().start()
        log.info("channel %s: WADO-RS at %s", self._channel, self.describe())

    def routes(self) -> list[BaseRoute]:
        study = self.path.rstrip("/") + "/studies/{study}"
        series = study + "/series/{series}"
        instance = series + "/instances/{instance}"
        out: list[BaseRoute] = []
        for path in (study, series, instance):
            out.append(Route(path, self.retrieve, methods=["GET"]))
            out.append(Route(path + "/metadata", self.metadata, methods=["GET"]))
        return out

    # -- the two resources ----------------------------------------------------------------------------
    async def retrieve(self, request: Request) -> Response:
        """The instances, one part each (PS3.18 §10.4.1.1.1)."""
        try:
            target = _target(request)
            wanted = _instance_syntaxes(request.headers.get("accept", ""))
            found, missing = await asyncio.to_thread(self._select, target)
            _check_transfer_syntax(wanted, {item.transfer_syntax for item, _ in found})
        except _Refused as exc:
            return _problem(exc.status, exc.reason)
        boundary = uuid.uuid4().hex
        media = f'multipart/related; type="{DICOM_MEDIA}"; boundary={boundary}'
        headers = _warning(missing, len(found) + missing)
        status = 206 if missing else 200
        if request.method == "HEAD":
            return _head(status, headers, media)
        peer = _peer(request)
        try:
            await self._audit(self._event(peer, found, len(found), "instances"))
        except Exception as exc:
            return self._unaudited(exc)
        log.debug("channel %s: WADO-RS %s to %s: %d instances", self._channel, target, peer, len(found))
        return StreamingResponse(
            self._parts(found, boundary, peer),
            status_code=status,
            headers=headers,
            media_type=media,
        )

    async def metadata(self, request: Request) -> Response:
        """The instances' headers as DICOM JSON (PS3.18 §10.4.1.1.2, F.2)."""
        try:
            target = _target(request)
            _metadata_acceptable(request.headers.get("accept", ""))
            found, missing = await asyncio.to_thread(self._select, target)
            body, unreadable = await asyncio.to_thread(self._headers, found)
        except _Refused as exc:
            return _problem(exc.status, exc.reason)
        total = len(found) + missing
        read = [entry for entry in found if entry[0].sop_instance_uid not in unreadable]
        if not read:
            return _problem(500, "the archived instances cannot be read")
        headers = _warning(total - len(read), total)
        status = 206 if len(read) < total else 200
        if request.method == "HEAD":
            return _head(status, headers, JSON_MEDIA)
        try:
            await self._audit(self._event(_peer(request), read, len(read), "metadata"))
        except Exception as exc:
            return self._unaudited(exc)
        return Response(body, status_code=status, headers=headers, media_type=JSON_MEDIA)

    # -- reading (worker threads) ----------------------------------------------------------------------
    def _select(self, target: _Target) -> tuple[list[tuple[Selected, Path]], int]:
        """The target's instances whose files are in the archive, and how many are not."""
        ds = Dataset()
        ds.QueryRetrieveLevel = target.level
        ds.StudyInstanceUID = target.study
        if target.series:
            ds.SeriesInstanceUID = target.series
        if target.instance:
            ds.SOPInstanceUID = target.instance
        with self.services.reads.connect() as conn:
            selected = instances_for(conn, ds, patient_root=False)
            if not selected:
                raise _Refused(404, _not_found(conn, target))
        found: list[tuple[Selected, Path]] = []
        for item in selected:
            try:
                path = self.actor.archive.path(item.path)
                if path.is_file():
                    found.append((item, path))
                    continue
            except (OSError, ValueError):
                pass
            log.debug("channel %s: archived file missing: %s", self._channel, item.path)
        missing = len(selected) - len(found)
        if missing:
            log.error("channel %s: %d archived instance file(s) missing", self._channel, missing)
        if not found:
            raise _Refused(500, "the archived instances cannot be read")
        return found, missing

    def _headers(self, found: list[tuple[Selected, Path]]) -> tuple[bytes, set[str]]:
        """The DICOM JSON array of the instances' headers; the instances that could not be read."""
        out: list[dict[str, Any]] = []
        unreadable: set[str] = set()
        for item, path in found:
            try:
                ds = dcmread(path, stop_before_pixels=True)
                entry = ds.to_json_dict(
                    bulk_data_threshold=_BULK, bulk_data_element_handler=_omit, suppress_invalid_tags=True
                )
            except Exception as exc:  # a file damaged since it was archived: the others still go
                log.error("channel %s: archived instance unreadable: %s", self._channel, type(exc).__name__)
                unreadable.add(item.sop_instance_uid)
                continue
            out.append(_without_bulk(entry))
        return json.dumps(out, ensure_ascii=False, separators=(",", ":")).encode("utf-8"), unreadable

    async def _parts(
        self, found: list[tuple[Selected, Path]], boundary: str, peer: str
    ) -> AsyncIterator[bytes]:
        """The multipart body (RFC 2387; PS3.18 §8.7.3.1), read from disk as it is sent."""
        sent = 0
        failure = ""
        try:
            for item, path in found:
                try:
                    fp, size = await asyncio.to_thread(_open, path)
                    try:
                        yield (
                            f"--{boundary}\r\nContent-Type: {DICOM_MEDIA}; "
                            f"transfer-syntax={item.transfer_syntax}\r\nContent-Length: {size}\r\n\r\n"
                        ).encode("ascii")
                        while chunk := await asyncio.to_thread(fp.read, _CHUNK):
                            yield chunk
                    finally:
                        fp.close()
                except OSError as exc:
                    failure = f"an archived instance cannot be read ({type(exc).__name__})"
                    log.error("channel %s: %s", self._channel, failure)
                    return  # the status is sent: the body ends without its close-delimiter
                yield b"\r\n"
                sent += 1
            yield f"--{boundary}--\r\n".encode("ascii")
        finally:
            if sent < len(found):
                reason = failure or f"the client went away after {sent} of {len(found)} instances"
                self._audit_later(self._event(peer, found, sent, "instances", reason))

    # -- audit --------------------------------------------------------------------------------------
    def _event(
        self,
        peer: str,
        found: list[tuple[Selected, Path]],
        count: int,
        resource: str,
        failure: str | None = None,
    ) -> AuditEvent:
        first = found[0][0]
        event = audit.instances_retrieved(
            operation="WADO-RS",
            peer_ae=peer,
            peer_address=peer,
            us=self.actor.config.ae_title,
            studies=[(first.study_uid, first.patient, count)],
            outcome=Outcome.MINOR_FAILURE if failure else Outcome.SUCCESS,
            description=failure,
        )
        for obj in event.objects:
            detail = obj.get("detail")
            if isinstance(detail, dict):
                detail["resource"] = resource
        event.channel_id = self._channel
        return event

    def _batch(self, event: AuditEvent) -> Batch:
        batch = Batch()
        batch.insert(audit_events, event.row(self.services.ids.next()))
        return batch

    async def _audit(self, event: AuditEvent) -> None:
        await self.services.writer.write(self._batch(event))

    def _audit_later(self, event: AuditEvent) -> None:
        """From a stream being closed (perhaps by the garbage collector): not waiting for the commit."""
        self.actor.audit_later(self._channel, event)

    def _unaudited(self, exc: Exception) -> Response:
        log.error("channel %s: WADO-RS access not audited, refused: %s", self._channel, type(exc).__name__)
        return _problem(503, "the access cannot be recorded now; retry later", {"Retry-After": "5"})

    @property
    def _channel(self) -> str:
        return self.receiver.channel_id


# --------------------------------------------------------------------------------------------------
# the request


def _target(request: Request) -> _Target:
    params = request.path_params
    target = _Target(str(params["study"]), str(params.get("series", "")), str(params.get("instance", "")))
    for name, value in (
        ("Study Instance UID", target.study),
        ("Series Instance UID", target.series),
        ("SOP Instance UID", target.instance),
    ):
        if value and not valid_uid(value):
            raise _Refused(
                400, f"{value[:70]!r} is not a valid {name} (PS3.5 §9.1: digits and dots, at most 64)"
            )
    return target


_ITEM = re.compile(r'(?:[^,"]|"[^"]*")+')
_PARAM = re.compile(r'(?:[^;"]|"[^"]*")+')


def _ranges(accept: str) -> list[_Range]:
    """The Accept header's media ranges (RFC 9110 §12.5.1), highest q first, q=0 left out."""
    out: list[_Range] = []
    for item in _ITEM.findall(accept):
        media, *rest = (p.strip() for p in _PARAM.findall(item))
        if not media:
            continue
        params: dict[str, str] = {}
        for p in rest:
            key, _, value = p.partition("=")
            params[key.strip().lower()] = value.strip().strip('"')
        try:
            q = float(params.pop("q", "1"))
        except ValueError:
            q = 1.0
        if q > 0:
            out.append(_Range(media.lower(), params, q))
    return sorted(out, key=lambda r: -r.q)  # stable: equal q keep the client's order


def _instance_syntaxes(accept: str) -> list[str]:
    """The transfer syntaxes the client takes instances in, most wanted first ("*": any)."""
    if not accept.strip():
        return ["*"]
    ranges = _ranges(accept)
    out: list[str] = []
    for r in ranges:
        if r.media == "*/*":
            out.append("*")
        elif r.media == "multipart/related" and r.params.get("type", "").lower() == DICOM_MEDIA:
            out.append(r.params.get("transfer-syntax") or "*")
    if not out:
        raise _Refused(
            406,
            f'instances are served as multipart/related; type="{DICOM_MEDIA}" only, not {accept[:200]!r}',
        )
    return out


def _metadata_acceptable(accept: str) -> None:
    if not accept.strip():
        return
    if not any(r.media in (JSON_MEDIA, "*/*") for r in _ranges(accept)):
        raise _Refused(406, f"metadata is served as {JSON_MEDIA} only, not {accept[:200]!r}")


def _check_transfer_syntax(wanted: list[str], archived: set[str]) -> None:
    """Some syntax asked for is "*" or the one every instance is archived in: nothing is transcoded."""
    if any(syntax == "*" or archived == {syntax} for syntax in wanted):
        return
    raise _Refused(
        406,
        f"the instances are archived in transfer syntax {', '.join(sorted(archived))} and this archive"
        f" does not transcode: ask for transfer-syntax=* or that one, not {', '.join(wanted)}",
    )


def _not_found(conn: Connection, target: _Target) -> str:
    """Which of the UIDs the archive does not have, for the 404."""
    if conn.execute(select(studies.c.study_uid).where(studies.c.study_uid == target.study)).first() is None:
        return f"no study {target.study} in the archive"
    if target.series:
        known = conn.execute(
            select(series.c.series_uid).where(
                series.c.series_uid == target.series, series.c.study_uid == target.study
            )
        ).first()
        if known is None:
            return f"no series {target.series} in study {target.study}"
    if target.instance:
        known = conn.execute(
            select(instances.c.sop_instance_uid).where(
                instances.c.sop_instance_uid == target.instance, instances.c.series_uid == target.series
            )
        ).first()
        if known is None:
            return f"no instance {target.instance} in series {target.series} of study {target.study}"
    return f"no instances of study {target.study} in the archive"


def _peer(request: Request) -> str:
    return request.client.host if request.client else "unknown"


# --------------------------------------------------------------------------------------------------
# the answer


def _problem(status: int, reason: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"status": status, "error": reason}, status_code=status, headers=headers)


def _warning(missing: int, total: int) -> dict[str, str]:
    """The Warning header of a 206 (some instances could not be read): 299, a persistent warning
    (RFC 7234 §5.5)."""
    if not missing:
        return {}
    return {"Warning": f'299 - "{missing} of {total} instances cannot be read from the archive"'}


def _head(status: int, headers: dict[str, str], media: str) -> Response:
    """The answer to HEAD: the GET's status and headers, no body (and no length: it is not known)."""
    response = Response(status_code=status, headers=headers, media_type=media)
    if "content-length" in response.headers:
        del response.headers["content-length"]
    return response


def _open(path: Path) -> tuple[IO[bytes], int]:
    """An archived file, open, and its size (of what is open: a file stored again meanwhile is
    another file)."""
    fp = path.open("rb")
    try:
        return fp, os.fstat(fp.fileno()).st_size
    except OSError:
        fp.close()
        raise


def _omit(element: DataElement) -> str:
    return _OMITTED


def _without_bulk(entry: dict[str, Any]) -> dict[str, Any]:
    """A DICOM JSON dataset without the elements ``_omit`` marked, in sequences too."""
    out: dict[str, Any] = {}
    for tag, element in entry.items():
        if element.get("BulkDataURI") == _OMITTED:
            continue
        if element.get("vr") == "SQ" and "Value" in element:
            element = {**element, "Value": [_without_bulk(item) for item in element["Value"]]}
        out[tag] = element
    return out
