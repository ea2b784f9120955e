"""DICOM intake: dcmtk's storescu sends CT images to the engine's archive and, in the same run, to dcmtk's
own storescp; images/s, MB/s and their ratio, one sender and several, and the engine's memory while it
receives a large study.

    .venv/bin/python bench/dicom_store.py                         # 200 CT images, 1 and 4 senders, SQLite
    .venv/bin/python bench/dicom_store.py --postgres              # also on a fresh PostgreSQL database
    .venv/bin/python bench/dicom_store.py --big-mb 1024           # and a 1 GB study, peak RSS sampled

The images are synthetic CT slices (512 x 512, 16 bits, about 0.5 MB; made-up patient), written once
to a temporary folder. storescp runs with ``-B`` (bit-preserving: it writes what it receives, as the
engine does) into a folder of its own; it does not fsync, the engine fsyncs each file and commits
each instance before its Success. Both receive from storescu with ``TCP_NODELAY=1`` (xds.md §8).
The engine is ``hie run`` with one channel (``pacs-store``, ``ack: after_delivery`` to the archive's
index) and log level WARNING. Targets (issue 7): the engine at least 0.8 of storescp's images/s;
several senders faster than one; memory flat during the large study.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.mllp_throughput import _vm_hwm_mb, _wait_port, free_port, pg_database  # noqa: E402

ENV = {**os.environ, "TCP_NODELAY": "1"}
IMPLICIT = "1.2.840.10008.1.2"


def write_images(folder: Path, count: int, *, study: str | None = None, rows: int = 512) -> list[Path]:
    """``count`` CT slices of one study (a new one unless given), 16-bit, synthetic."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    folder.mkdir(parents=True, exist_ok=True)
    study = study or generate_uid()
    series = generate_uid()
    pixels = bytes(range(256)) * (rows * rows * 2 // 256)
    files = []
    for n in range(count):
        ds = Dataset()
        ds.file_meta = FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
        uid = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = uid
        ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.2", uid
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.PatientName, ds.PatientID, ds.PatientSex = "Bench^Patient=测试^病人", "B0001", "O"
        ds.PatientBirthDate, ds.StudyDate, ds.StudyTime = "19800101", "20261205", "090000"
        ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "CT", 1, n + 1
        ds.Rows = ds.Columns = rows
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.PixelData = pixels
        path = folder / f"{n:05d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        files.append(path)
    return files


def write_config(base: Path, store_url: str, port: int) -> Path:
    (base / "channels").mkdir(parents=True)
    (base / "config.yaml").write_text(
        "engine:\n  name: HIE\n  facility: BENCH\n  data_dir: data\n  channels_dir: channels\n"
        f"  mappings_dir: '{ROOT / 'mappings'}'\n  log_level: WARNING\n"
        f"store:\n  url: '{store_url}'\n  synchronous: full\n"
        "empi:\n  domains:\n    - {id: bench, namespace: BENCH, oid: 1.2.156.999.1}\n"
        "dicom:\n  ae_title: HIE_PACS\n  peers:\n    - {ae_title: BENCH_SCU, domain: bench}\n"
        "  publish: false\n",
        encoding="utf-8",
    )
    (base / "channels" / "pacs-store.yaml").write_text(
        f"id: pacs-store\nsource:\n  url: dicom://127.0.0.1:{port}\n  max_associations: 32\n"
        "ack: after_delivery\nack_from: archive\ndestinations:\n  - {id: archive, url: 'dicom-archive:'}\n",
        encoding="utf-8",
    )
    return base / "config.yaml"


def send(port: int, files: list[Path], senders: int, aec: str) -> float:
    """storescu from ``senders`` processes at once, the files shared out; seconds until all are done."""
    shares = [files[i::senders] for i in range(senders)]
    start = time.perf_counter()
    procs = [
        subprocess.Popen(
            ["storescu", "-aet", "BENCH_SCU", "-aec", aec, "127.0.0.1", str(port), *map(str, share)],
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for share in shares
    ]
    for p in procs:
        _, err = p.communicate()
        if p.returncode != 0:
            raise RuntimeError(f"storescu failed: {err.decode(errors='replace')[-500:]}")
    return time.perf_counter() - start


@dataclass
class Rate:
    label: str
    images: int
    mb: float
    seconds: float

    @property
    def per_s(self) -> float:
        return self.images / self.seconds

    @property
    def mb_s(self) -> float:
        return self.mb / self.seconds


def storescp_rates(files: list[Path], senders: list[int], mb: float) -> dict[int, Rate]:
    out: dict[int, Rate] = {}
    for n in senders:
        with tempfile.TemporaryDirectory(prefix="storescp-") as folder:
            port = free_port()
            scp = subprocess.Popen(
                ["storescp", "-B", "-aet", "STORESCP", "-od", folder, str(port)],
                env=ENV,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                _wait_port(port, scp)
                out[n] = Rate(f"storescp, {n} sender(s)", len(files), mb, send(port, files, n, "STORESCP"))
            finally:
                scp.terminate()
                scp.wait()
    return out


def engine_rates(
    files: list[Path], senders: list[int], mb: float, store_url: str, big: list[Path], workers: int = 1
) -> tuple[dict[int, Rate], Rate | None, list[float]]:
    with tempfile.TemporaryDirectory(prefix="hie-dicom-bench-") as folder:
        base = Path(folder)
        port = free_port()
        config = write_config(base, store_url, port)
        command = [str(ROOT / ".venv" / "bin" / "hie"), "run", "--config", str(config)]
        if workers > 1:
            command += ["--workers", str(workers)]
        proc = subprocess.Popen(
            command,
            cwd=base,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            _wait_port(port, proc)
            if workers > 1:
                time.sleep(5)  # every worker listening, not only the first
            out: dict[int, Rate] = {}
            for n in senders:
                out[n] = Rate(f"engine, {n} sender(s)", len(files), mb, send(port, files, n, "HIE_PACS"))
            big_rate, rss = None, []
            if big and workers == 1:
                rss = [_vm_rss_mb(proc.pid)]
                stop = threading.Event()

                def sample() -> None:
                    while not stop.wait(0.5):
                        rss.append(_vm_rss_mb(proc.pid))

                sampler = threading.Thread(target=sample, daemon=True)
                sampler.start()
                big_mb = sum(f.stat().st_size for f in big) / 1e6
                big_rate = Rate("engine, large study", len(big), big_mb, send(port, big, 1, "HIE_PACS"))
                stop.set()
                sampler.join()
                rss.append(_vm_hwm_mb(proc.pid))
            archived = sum(1 for _ in (base / "data" / "dicom" / "archive").rglob("*.dcm"))
            expected = len(files) + len(big)
            if archived != expected:
                print(f"  !! {archived} files archived, {expected} expected", file=sys.stderr)
            return out, big_rate, rss
        finally:
            proc.terminate()
            proc.wait(timeout=60)


def _vm_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--senders", type=int, default=4, help="the concurrent run's storescu processes")
    parser.add_argument("--postgres", action="store_true", help="also measure on PostgreSQL")
    parser.add_argument("--store-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--big-mb", type=int, default=0, help="also send one study of about this many MB")
    parser.add_argument(
        "--workers", type=int, default=1, help="PostgreSQL: also measure hie run --workers N (SO_REUSEPORT)"
    )
    args = parser.parse_args()
    if not shutil.which("storescu") or not shutil.which("storescp"):
        sys.exit("dcmtk's storescu and storescp are needed (Debian package dcmtk)")

    with tempfile.TemporaryDirectory(prefix="dicom-bench-images-") as folder:
        files = write_images(Path(folder) / "ct", args.images)
        big = write_images(Path(folder) / "big", args.big_mb * 2) if args.big_mb else []
        mb = sum(f.stat().st_size for f in files) / 1e6
        senders = [1, args.senders]
        print(f"{len(files)} CT images, {mb:,.1f} MB ({mb / len(files):.2f} MB each)")
        reference = storescp_rates(files, senders, mb)
        stores = [("sqlite", "", 1)]
        if args.postgres or args.workers > 1:
            stores.append(("postgresql", args.store_url, 1))
        if args.workers > 1:
            stores.append((f"pg, {args.workers} workers", args.store_url, args.workers))
        results: list[tuple[str, dict[int, Rate], Rate | None, list[float]]] = []
        for label, url, workers in stores:
            if url:
                with pg_database(url) as fresh:
                    results.append((label, *engine_rates(files, senders, mb, fresh, big, workers)))
            else:
                results.append((label, *engine_rates(files, senders, mb, "", big)))

    print(f"\n{'':34}{'images/s':>10}{'MB/s':>9}{'ratio':>8}   target")
    for n in senders:
        ref = reference[n]
        print(f"{ref.label:34}{ref.per_s:>10,.0f}{ref.mb_s:>9,.1f}{'1.00':>8}")
    for label, rates, big_rate, rss in results:
        for n in senders:
            r = rates[n]
            ratio = r.per_s / reference[n].per_s
            mark = "met" if ratio >= 0.8 else "MISSED"
            print(
                f"{label + ': ' + r.label:34}{r.per_s:>10,.0f}{r.mb_s:>9,.1f}{ratio:>8.2f}   >= 0.80 {mark}"
            )
        scale = rates[senders[1]].per_s / rates[1].per_s
        name = f"{label}: {senders[1]} senders / 1"
        print(f"{name:34}{scale:>10.2f}x{'':16}> 1 {'met' if scale > 1 else 'MISSED'}")
        if big_rate is not None:
            print(
                f"{label + ': ' + big_rate.label:34}{big_rate.per_s:>10,.0f}{big_rate.mb_s:>9,.1f}"
                f"   RSS {rss[0]:,.0f} MB at start, {max(rss[:-1]):,.0f} MB max, "
                f"peak (VmHWM) {rss[-1]:,.0f} MB"
            )


if __name__ == "__main__":
    main()
