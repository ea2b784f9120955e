"""WADO-RS Retrieve (PS3.18 §10.4) from the regional archive: a study stored with dcmtk's storescu,
then read back with httpx over 127.0.0.1 as a web viewer would: instances as multipart/related
application/dicom at the study, series and instance levels, their metadata as DICOM JSON, the
refusals (400, 404, 406) and the audit records, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path

import httpx
import pytest
from pydicom import dcmread
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from sqlalchemy import select

from engine.config import load_config
from engine.store.schema import audit_events
from tests.conftest import running
from tests.profiles.conftest import deploy
from tests.profiles.dicom.conftest import Pacs, ct

DICOM_ACCEPT = 'multipart/related; type="application/dicom"'
JPEG_BASELINE = "1.2.840.10008.1.2.4.50"


@dataclass
class Sample:
    """A stored study: two series, the second with one instance larger than a read chunk."""

    uid: str
    series: tuple[str, str]
    sops: dict[str, list[str]]  # series UID -> its SOP Instance UIDs
    files: list[Path]

    @property
    def all_sops(self) -> set[str]:
        return {s for sops in self.sops.values() for s in sops}


@dataclass
class Wado:
    pacs: Pacs
    base: str
    client: httpx.AsyncClient
    study: Sample

    def study_url(self, *parts: str) -> str:
        return "/".join([f"{self.base}/studies/{self.study.uid}", *parts])

    def audits(self) -> list[dict[str, object]]:
        with self.pacs.db.connect() as conn:
            rows = conn.execute(
                select(audit_events)
                .where(audit_events.c.event_type.like("WADO-RS%"))
                .order_by(audit_events.c.id)
            )
            return [dict(r._mapping) for r in rows]


@pytest.fixture
async def wado(tmp_path: Path, store_url: str) -> AsyncIterator[Wado]:
    _, ports = deploy(tmp_path, store_url, ("pix-feed", "pacs-store", "wado"))
    assert ports["wado"]
    app = load_config(tmp_path / "config.yaml")
    async with running(app) as rt:
        pacs = Pacs(rt, ports, tmp_path)
        try:
            sample = _write_sample(tmp_path / "study")
            run = await pacs.store(*sample.files)
            assert run.statuses == ["Success"] * len(sample.files), run.out
            async with httpx.AsyncClient(timeout=30) as client:
                yield Wado(pacs, f"http://127.0.0.1:{ports['wado']}/dicomweb", client, sample)
        finally:
            pacs.db.dispose()


def _write_sample(folder: Path) -> Sample:
    folder.mkdir(parents=True)
    study, first, second = generate_uid(), generate_uid(), generate_uid()
    sops: dict[str, list[str]] = {first: [], second: []}
    files = []
    for n, (series, rows) in enumerate([(first, 16), (first, 16), (second, 768)], start=1):
        ds = ct(study, series, n, rows=rows)  # 768 x 768 x 2 bytes: more than one 512 KB chunk
        ds.SeriesNumber = 1 if series == first else 2
        path = folder / f"{n:03d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        sops[series].append(str(ds.SOPInstanceUID))
        files.append(path)
    return Sample(study, (first, second), sops, files)


def parts(response: httpx.Response) -> list[tuple[dict[str, str], bytes]]:
    """The parts of a multipart/related body (RFC 2046 §5.1.1), each with its headers."""
    media = response.headers["content-type"]
    assert media.startswith("multipart/related")
    assert 'type="application/dicom"' in media
    found = re.search(r'boundary="?([^";]+)"?', media)
    assert found is not None, media
    delimiter = b"--" + found.group(1).encode("ascii")
    body = response.content
    assert body.startswith(delimiter + b"\r\n")
    assert body.endswith(delimiter + b"--\r\n")
    out = []
    for chunk in body[: -len(delimiter) - 4].split(b"\r\n" + delimiter + b"\r\n"):
        chunk = chunk.removeprefix(delimiter + b"\r\n")
        head, _, content = chunk.partition(b"\r\n\r\n")
        headers = {}
        for line in head.decode("ascii").split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        out.append((headers, content.removesuffix(b"\r\n")))
    return out


def sops_of(response: httpx.Response, wado: Wado) -> list[str]:
    """Each part's SOP Instance UID, after checking it is the archived file, byte for byte."""
    assert response.status_code == 200, response.text
    out = []
    for headers, content in parts(response):
        assert headers["content-type"] == f"application/dicom; transfer-syntax={ExplicitVRLittleEndian}"
        assert int(headers["content-length"]) == len(content)
        ds = dcmread(BytesIO(content))
        assert str(ds.StudyInstanceUID) == wado.study.uid
        kept = wado.pacs.archive / wado.study.uid / str(ds.SeriesInstanceUID) / f"{ds.SOPInstanceUID}.dcm"
        assert kept.read_bytes() == content
        out.append(str(ds.SOPInstanceUID))
    return out


async def test_a_study_a_series_and_an_instance_are_retrieved_as_archived(wado: Wado) -> None:
    first, second = wado.study.series
    study = await wado.client.get(wado.study_url(), headers={"Accept": DICOM_ACCEPT})
    assert sorted(sops_of(study, wado)) == sorted(wado.study.all_sops)
    (big,) = [ds for _, c in parts(study) if (ds := dcmread(BytesIO(c))).SeriesInstanceUID == second]
    assert big.Rows == 768 and len(big.PixelData) == 768 * 768 * 2  # sent in several chunks

    series = await wado.client.get(wado.study_url("series", first), headers={"Accept": DICOM_ACCEPT})
    assert sops_of(series, wado) == wado.study.sops[first]  # in instance number order

    sop = wado.study.sops[second][0]
    instance = await wado.client.get(
        wado.study_url("series", second, "instances", sop),
        headers={"Accept": f"{DICOM_ACCEPT}; transfer-syntax=*"},
    )
    assert sops_of(instance, wado) == [sop]

    # the archived transfer syntax, asked by name; any media type; no Accept at all
    named = f"{DICOM_ACCEPT}; transfer-syntax={ExplicitVRLittleEndian}"
    assert (await wado.client.get(wado.study_url(), headers={"Accept": named})).status_code == 200
    assert (await wado.client.get(wado.study_url(), headers={"Accept": "*/*"})).status_code == 200
    del wado.client.headers["accept"]
    bare = await wado.client.get(wado.study_url("series", second))
    assert sops_of(bare, wado) == wado.study.sops[second]


async def test_metadata_is_dicom_json_without_pixel_data(wado: Wado) -> None:
    first, second = wado.study.series
    study = await wado.client.get(wado.study_url("metadata"), headers={"Accept": "application/dicom+json"})
    assert study.status_code == 200, study.text
    assert study.headers["content-type"] == "application/dicom+json"
    headers = study.json()
    assert isinstance(headers, list) and len(headers) == 3
    assert {h["00080018"]["Value"][0] for h in headers} == wado.study.all_sops
    for h in headers:
        assert h["0020000D"] == {"vr": "UI", "Value": [wado.study.uid]}
        assert h["00100010"]["Value"] == [{"Alphabetic": "Ouyang^Mingxuan", "Ideographic": "欧阳^明轩"}]
        assert h["00100020"]["Value"] == ["A1001"]
        assert h["00081030"]["Value"] == ["胸部 CT 平扫"]
        assert "7FE00010" not in h
        assert h["00280010"]["Value"][0] in (16, 768)  # Rows, the header up to the pixels

    series = await wado.client.get(wado.study_url("series", second, "metadata"))
    assert [h["0020000E"]["Value"][0] for h in series.json()] == [second]
    sop = wado.study.sops[first][1]
    instance = await wado.client.get(wado.study_url("series", first, "instances", sop, "metadata"))
    assert [h["00080018"]["Value"][0] for h in instance.json()] == [sop]
    assert json.loads(instance.content.decode("utf-8"))[0]["00200013"]["Value"] == [2]


async def test_unknown_uids_are_404_naming_them_and_bad_uids_400(wado: Wado) -> None:
    first, _ = wado.study.series
    unknown = generate_uid()
    answer = await wado.client.get(f"{wado.base}/studies/{unknown}")
    assert answer.status_code == 404
    assert answer.json() == {"status": 404, "error": f"no study {unknown} in the archive"}
    answer = await wado.client.get(wado.study_url("series", unknown, "metadata"))
    assert answer.status_code == 404 and f"no series {unknown} in study {wado.study.uid}" in answer.text
    answer = await wado.client.get(wado.study_url("series", first, "instances", unknown))
    assert answer.status_code == 404 and f"no instance {unknown} in series {first}" in answer.text
    # an instance of another series is not found under this one
    other = wado.study.sops[wado.study.series[1]][0]
    assert (await wado.client.get(wado.study_url("series", first, "instances", other))).status_code == 404

    for bad in ("1.2.abc", "1.02.3", "1..2", "9" * 65):
        answer = await wado.client.get(f"{wado.base}/studies/{bad}")
        assert answer.status_code == 400, bad
        assert "not a valid Study Instance UID" in answer.json()["error"]
    answer = await wado.client.get(wado.study_url("series", first, "instances", "x.1", "metadata"))
    assert answer.status_code == 400 and "SOP Instance UID" in answer.text
    # what WADO-RS does not offer here
    assert (await wado.client.get(f"{wado.base}/studies")).status_code == 404  # QIDO-RS
    assert (await wado.client.post(f"{wado.base}/studies/{wado.study.uid}")).status_code == 405  # STOW-RS
    assert wado.audits() == []  # nothing was disclosed


async def test_what_is_not_offered_is_406(wado: Wado) -> None:
    jpeg = f"{DICOM_ACCEPT}; transfer-syntax={JPEG_BASELINE}"
    answer = await wado.client.get(wado.study_url(), headers={"Accept": jpeg})
    assert answer.status_code == 406
    error = answer.json()["error"]
    assert ExplicitVRLittleEndian in error and "does not transcode" in error and JPEG_BASELINE in error
    # another range the archive can serve is taken; a q=0 one is not
    either = f"{jpeg}, {DICOM_ACCEPT}; transfer-syntax=*; q=0.5"
    assert (await wado.client.get(wado.study_url(), headers={"Accept": either})).status_code == 200
    refused = f"{DICOM_ACCEPT}; q=0, image/jpeg"
    assert (await wado.client.get(wado.study_url(), headers={"Accept": refused})).status_code == 406
    for accept in ("image/jpeg", "application/dicom+json", "application/dicom", "multipart/related"):
        answer = await wado.client.get(wado.study_url(), headers={"Accept": accept})
        assert answer.status_code == 406, accept
        assert "multipart/related" in answer.json()["error"]
    for accept in (DICOM_ACCEPT, "application/json", "text/html"):
        answer = await wado.client.get(wado.study_url("metadata"), headers={"Accept": accept})
        assert answer.status_code == 406, accept
        assert "application/dicom+json" in answer.json()["error"]
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    assert (await wado.client.get(wado.study_url("metadata"), headers={"Accept": browser})).status_code == 200
    assert len(wado.audits()) == 2  # the two retrievals that were answered


async def test_each_retrieval_is_audited(wado: Wado) -> None:
    first, _ = wado.study.series
    assert (await wado.client.get(wado.study_url())).status_code == 200
    assert (await wado.client.get(wado.study_url("series", first, "metadata"))).status_code == 200
    head = await wado.client.head(wado.study_url())
    assert head.status_code == 200 and head.headers["content-type"].startswith("multipart/related")
    assert head.content == b""
    records = wado.audits()
    assert len(records) == 2  # HEAD discloses nothing
    for record, (count, resource) in zip(records, [("3", "instances"), ("2", "metadata")], strict=True):
        assert str(record["event_id"]).startswith("110104")
        assert str(record["event_type"]).startswith("WADO-RS")
        assert record["action"] == "R" and record["outcome"] == 0 and record["channel_id"] == "wado"
        assert record["patient_ids"] == "A1001"
        objects = json.loads(str(record["objects"]))
        (study,) = [o for o in objects if o["id_type"] == "110180"]
        assert study["id"] == wado.study.uid
        assert study["detail"] == {"instances": count, "resource": resource}
        participants = json.loads(str(record["participants"]))
        assert participants[0]["user_id"] == "127.0.0.1" and participants[0]["role"] == "110152"
        assert participants[1]["user_id"] == "HIE_PACS"


async def test_a_missing_file_is_206_and_a_transfer_cut_short_is_audited(wado: Wado) -> None:
    first, _ = wado.study.series
    gone = wado.study.sops[first][0]
    (wado.pacs.archive / wado.study.uid / first / f"{gone}.dcm").unlink()
    answer = await wado.client.get(wado.study_url())
    assert answer.status_code == 206 and '"1 of 3 instances' in answer.headers["warning"]
    assert {dcmread(BytesIO(c)).SOPInstanceUID for _, c in parts(answer)} == wado.study.all_sops - {gone}
    only = await wado.client.get(wado.study_url("series", first, "instances", gone))
    assert only.status_code == 500
    # the client reads the first chunk of a 32 MB instance (more than the sockets' buffers hold),
    # then goes away
    big, path = generate_uid(), wado.pacs.folder / "big.dcm"
    ct(wado.study.uid, big, 1, rows=4096).save_as(path, enforce_file_format=True)
    assert (await wado.pacs.store(path)).statuses == ["Success"]
    url = wado.study_url("series", big)
    async with wado.client.stream("GET", url) as stream:
        assert stream.status_code == 200
        async for _ in stream.aiter_raw():
            break
    for _ in range(100):
        failed = [r for r in wado.audits() if r["outcome"] != 0]
        if failed:
            break
        await asyncio.sleep(0.05)
    assert len(failed) == 1, wado.audits()
    assert "went away after 0 of 1 instances" in str(failed[0]["outcome_description"])
