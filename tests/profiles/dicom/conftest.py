"""The regional archive's tests: the sample ``pacs-store`` channel (and ``pix-feed``, to make patients
known to the EMPI) on free ports, on SQLite and PostgreSQL, with dcmtk's tools as the real PACS.

Datasets are made here with pydicom: synthetic patients (the sample patient 欧阳明轩 of hospital A,
A1001), small CT images. dcmtk runs with ``TCP_NODELAY=1`` (Debian's build waits on Nagle's
algorithm without it) as a subprocess of the test's event loop, which also runs the engine.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from sqlalchemy import Engine, create_engine, select

from engine.config import load_config
from engine.runtime import Runtime
from profiles.dicom.schema import instances, studies
from tests.conftest import free_port, running
from tests.engine.connectors.mllp_peers import hl7_send
from tests.profiles.conftest import deploy

CT = "1.2.840.10008.5.1.4.1.1.2"
AET = "HOSP_A_PACS"  # hospital A's PACS, a configured peer (domain hospital-a)
NAME = "Ouyang^Mingxuan=欧阳^明轩"


@dataclass
class Study:
    uid: str
    series: str
    files: list[Path]


def ct(
    study: str,
    series: str,
    number: int,
    *,
    patient_id: str = "A1001",
    issuer: str | None = None,
    name: str = NAME,
    study_date: str = "20261201",
    modality: str = "CT",
    rows: int = 16,
) -> Dataset:
    """A small CT image of the sample patient (UTF-8 names)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = CT
    sop = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = sop
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = CT
    ds.SOPInstanceUID = sop
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    ds.PatientName = name
    ds.PatientID = patient_id
    if issuer is not None:
        ds.IssuerOfPatientID = issuer
    ds.PatientBirthDate = "19850312"
    ds.PatientSex = "M"
    ds.StudyDate = study_date
    ds.StudyTime = "103000"
    ds.AccessionNumber = f"ACC{study[-6:]}"
    ds.StudyID = "1"
    ds.StudyDescription = "胸部 CT 平扫"
    ds.Modality = modality
    ds.SeriesNumber = 1
    ds.InstanceNumber = number
    ds.Rows = ds.Columns = rows
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = bytes(rows * rows * 2)
    return ds


def write_study(folder: Path, count: int = 3, **attributes: str) -> Study:
    folder.mkdir(parents=True, exist_ok=True)
    study, series = generate_uid(), generate_uid()
    files = []
    for n in range(1, count + 1):
        path = folder / f"{n:03d}.dcm"
        ct(study, series, n, **attributes).save_as(path, enforce_file_format=True)  # type: ignore[arg-type]
        files.append(path)
    return Study(study, series, files)


@dataclass
class Run:
    code: int
    out: str

    @property
    def statuses(self) -> list[str]:
        """storescu -v: each Store Response, in order (``Success``, ``Error: CannotUnderstand``...)."""
        return re.findall(r"Received Store Response \(([^)]*)\)", self.out)


async def dcmtk(*args: str | Path) -> Run:
    """A dcmtk tool, as a PACS would run it; its exit code and what it printed."""
    proc = await asyncio.create_subprocess_exec(
        *(str(a) for a in args),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "TCP_NODELAY": "1"},
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    return Run(proc.returncode or 0, out.decode("utf-8", "replace"))


class Pacs:
    def __init__(self, rt: Runtime, ports: dict[str, int], folder: Path) -> None:
        self.rt = rt
        self.ports = ports
        self.port = ports["pacs-store"]
        self.feed_port = ports["pix-feed"]
        self.folder = folder
        self.config = folder / "config.yaml"
        self.archive = folder / "data" / "dicom" / "archive"
        self.db: Engine = create_engine(rt.app.store_url)

    def scu(self, tool: str, *args: str | Path, aet: str = AET) -> list[str | Path]:
        return [tool, "-aet", aet, "-aec", "HIE_PACS", "127.0.0.1", str(self.port), *args]

    async def store(self, *files: Path, aet: str = AET) -> Run:
        """storescu, going on after a failure (``--no-halt``), each status printed (``-v``)."""
        return await dcmtk(*self.scu("storescu", "-v", "--no-halt", *files, aet=aet))

    async def feed(self, local_id: str = "A1001", name: str = "欧阳^明轩") -> None:
        """Hospital A's HIS feeds the patient to the EMPI (ITI-8)."""
        msg = (
            "MSH|^~\\&|HIS_A|HOSP_A|PIX|CITY_HIE|20261203090000||ADT^A04^ADT_A01|F-" + local_id + "|P|2.5"
            "|||||CHN|UNICODE UTF-8\rEVN|A04|20261203090000\r"
            f"PID|1||{local_id}^^^HOSP_A&1.2.156.112604.1.1&ISO^PI||{name}||19850312|M\rPV1|1|O\r"
        )
        (answer,) = await hl7_send(self.feed_port, msg.encode("utf-8"))
        assert b"MSA|AA" in answer

    def study(self, uid: str) -> dict[str, object] | None:
        with self.db.connect() as conn:
            row = conn.execute(select(studies).where(studies.c.study_uid == uid)).first()
        return dict(row._mapping) if row is not None else None

    def instance_uids(self, study_uid: str) -> set[str]:
        with self.db.connect() as conn:
            found = conn.execute(
                select(instances.c.sop_instance_uid).where(instances.c.study_uid == study_uid)
            ).scalars()
            return set(found)


def configure(
    folder: Path, *, channel_extra: str = "", dicom_extra: str = "", destinations_extra: str = ""
) -> None:
    """Change the deployed sample: more source options, more ``dicom:`` settings, more destinations."""
    if destinations_extra:
        channel = folder / "channels" / "pacs-store.yaml"
        channel.write_text(channel.read_text("utf-8") + destinations_extra)
    if channel_extra:  # "  key: value" lines: set under source:
        channel = folder / "channels" / "pacs-store.yaml"
        text = channel.read_text("utf-8")
        for line in channel_extra.splitlines():
            key = line.split(":", 1)[0]
            if re.search(rf"^{key}:", text, flags=re.M):
                text = re.sub(rf"^{key}:.*$", line, text, count=1, flags=re.M)
            else:
                text = text.replace("  max_associations: 16\n", f"  max_associations: 16\n{line}\n")
        channel.write_text(text)
    config = folder / "config.yaml"
    text = config.read_text("utf-8")
    for line in dicom_extra.splitlines():  # "  key: value": set under dicom:
        key = line.split(":", 1)[0]
        if re.search(rf"^{key}:", text, flags=re.M):
            text = re.sub(rf"^{key}:.*$", line, text, count=1, flags=re.M)
        else:
            text = text.replace("  study_idle_seconds: 300\n", f"  study_idle_seconds: 300\n{line}\n")
    config.write_text(text)


def move_peer_port(folder: Path, ae_title: str, port: int) -> None:
    config = folder / "config.yaml"
    text = config.read_text("utf-8")
    config.write_text(
        re.sub(rf"(ae_title: {ae_title}, host: 127\.0\.0\.1, port: )\d+", rf"\g<1>{port}", text)
    )


@pytest.fixture
async def pacs(tmp_path: Path, store_url: str, request: pytest.FixtureRequest) -> AsyncIterator[Pacs]:
    """``@pytest.mark.pacs(channels=(...), channel_extra=..., dicom_extra=...)``: more sample channels
    (``pacs.ports`` has their ports), more source options, more ``dicom:`` settings."""
    marker = request.node.get_closest_marker("pacs")
    settings = dict(marker.kwargs) if marker is not None else {}
    more = tuple(settings.pop("channels", ()))
    _, ports = deploy(tmp_path, store_url, ("pix-feed", "pacs-store", *more))
    configure(tmp_path, **settings)
    move_peer_port(tmp_path, "HOSP_B_PACS", free_port())
    app = load_config(tmp_path / "config.yaml")
    async with running(app) as rt:
        pacs = Pacs(rt, ports, tmp_path)
        try:
            yield pacs
        finally:
            pacs.db.dispose()
