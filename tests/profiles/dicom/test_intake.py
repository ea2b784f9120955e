"""The archive's own receiver for storage associations, over real sockets: datasets in many small
fragments archived byte for byte, protocol errors aborting only their association, a store that
cannot write answered Out of Resources, and associations that ask for queries handed to pynetdicom
on the same port."""

from __future__ import annotations

import asyncio
import socket
import struct
from pathlib import Path

import pytest
from pydicom import dcmread
from pynetdicom import AE
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind  # type: ignore[attr-defined]

from profiles.dicom import pdu
from profiles.dicom.source import DicomSource
from tests.profiles.dicom.conftest import CT, Pacs, dcmtk, write_study
from tests.profiles.dicom.test_pdu import request_bytes


def read_pdu(conn: socket.socket) -> tuple[int, bytes]:
    """One whole PDU from a blocking socket: (type, body); (0, b"") at the end of the stream."""
    head = b""
    while len(head) < 6:
        more = conn.recv(6 - len(head))
        if not more:
            return 0, b""
        head += more
    length = struct.unpack(">I", head[2:6])[0]
    body = b""
    while len(body) < length:
        more = conn.recv(length - len(body))
        if not more:
            break
        body += more
    return head[0], body


def talk(port: int, *sends: bytes) -> list[tuple[int, bytes]]:
    """Send each PDU in turn, reading one answer after each, then whatever comes until the end."""
    answers: list[tuple[int, bytes]] = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        for data in sends:
            conn.sendall(data)
            answers.append(read_pdu(conn))
        while answers[-1][0]:
            answers.append(read_pdu(conn))
    return answers


@pytest.mark.pacs(channel_extra="  max_pdu: 4096\n")
async def test_a_dataset_in_small_fragments_is_archived_byte_for_byte(pacs: Pacs, tmp_path: Path) -> None:
    # 64 x 64 pixels in P-DATA-TFs of at most 4 KB: about 30 fragments, their headers falling
    # anywhere in what the socket hands over
    study = write_study(tmp_path / "study", 2)
    for path in study.files:
        ds = dcmread(path)
        ds.Rows = ds.Columns = 64
        ds.PixelData = bytes(range(256)) * 32
        ds.save_as(path, enforce_file_format=True)
    run = await pacs.store(*study.files)
    assert run.statuses == ["Success", "Success"], run.out
    assert "Max Send PDV: 4084" in run.out  # our 4096 less the PDU and PDV headers
    for path in study.files:
        sent = dcmread(path)
        kept = dcmread(pacs.archive / study.uid / study.series / f"{sent.SOPInstanceUID}.dcm")
        assert kept.PixelData == sent.PixelData
        assert kept == sent  # every element of the dataset
        assert kept.file_meta.TransferSyntaxUID == sent.file_meta.TransferSyntaxUID
        assert kept.file_meta.MediaStorageSOPInstanceUID == sent.SOPInstanceUID
        assert kept.file_meta.SourceApplicationEntityTitle == "HOSP_A_PACS"
    assert not list((pacs.archive / ".incoming").iterdir())  # nothing left behind


async def test_a_protocol_error_aborts_only_its_association(pacs: Pacs) -> None:
    # accepted, then a PDV on a presentation context that was never proposed
    stray = struct.pack(">BBI", 4, 0, 12) + struct.pack(">IBB", 6, 99, 0x03) + b"\x00" * 4
    answers = await asyncio.to_thread(talk, pacs.port, request_bytes(), stray)
    assert answers[0][0] == pdu.ASSOCIATE_AC
    assert answers[1] == (pdu.ABORT, bytes((0, 0, pdu.ABORT_PROVIDER, pdu.INVALID_PARAMETER)))
    assert answers[2] == (0, b"")  # and the connection closed
    # a client that speaks another protocol altogether
    garbage = await asyncio.to_thread(talk, pacs.port, b"GET / HTTP/1.1\r\nHost: pacs\r\n\r\n")
    assert garbage[0][0] == pdu.ABORT and garbage[-1] == (0, b"")
    # data before any association
    early = await asyncio.to_thread(talk, pacs.port, stray)
    assert early[0][0] == pdu.ABORT
    assert (await dcmtk(*pacs.scu("echoscu"))).code == 0  # the listener serves everyone else


async def test_an_unknown_called_ae_title_is_rejected_permanently(pacs: Pacs) -> None:
    raw = bytearray(request_bytes())
    raw[10:26] = b"SOMEONE_ELSE".ljust(16)
    answers = await asyncio.to_thread(talk, pacs.port, bytes(raw))
    kind, body = answers[0]
    assert kind == pdu.ASSOCIATE_RJ
    assert tuple(body[1:4]) == (pdu.REJECTED_PERMANENT, pdu.SERVICE_USER, pdu.CALLED_AE_NOT_RECOGNISED)


async def test_a_store_that_cannot_write_fails_with_out_of_resources(pacs: Pacs, tmp_path: Path) -> None:
    source = pacs.rt.sources["pacs-store"]
    assert isinstance(source, DicomSource)
    study = write_study(tmp_path / "study", 1)
    kept = source.incoming
    source.incoming = tmp_path / "no-such-folder"  # as a full or lost disk would fail it
    try:
        run = await pacs.store(*study.files)
    finally:
        source.incoming = kept
    assert len(run.statuses) == 1 and "OutOfResources" in run.statuses[0], run.out
    assert pacs.instance_uids(study.uid) == set()
    assert (await pacs.store(*study.files)).statuses == ["Success"]  # sent again, kept


async def test_an_association_that_also_queries_is_served_by_pynetdicom(pacs: Pacs, tmp_path: Path) -> None:
    study = write_study(tmp_path / "study", 1)

    def store_then_find() -> tuple[int, list[int]]:
        ae = AE(ae_title="HOSP_A_PACS")
        ae.add_requested_context(CT, ["1.2.840.10008.1.2.1"])
        ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
        assoc = ae.associate("127.0.0.1", pacs.port, ae_title="HIE_PACS")
        assert assoc.is_established
        try:
            stored = int(assoc.send_c_store(dcmread(study.files[0])).Status)
            query = dcmread(study.files[0], specific_tags=["StudyInstanceUID"])
            query.QueryRetrieveLevel = "STUDY"
            found = [
                int(status.Status)
                for status, _ in assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind)
                if status
            ]
        finally:
            assoc.release()
        return stored, found

    stored, found = await asyncio.to_thread(store_then_find)
    assert stored == 0x0000
    assert found == [0xFF00, 0x0000]  # one match, then the end
    assert len(pacs.instance_uids(study.uid)) == 1


@pytest.mark.pacs(channel_extra="  max_associations: 1\n")
async def test_a_flood_of_silent_connections_is_cut_and_the_port_keeps_serving(pacs: Pacs) -> None:
    # four connections per association allowed may wait for their request; the fifth is closed
    silent = [socket.create_connection(("127.0.0.1", pacs.port), timeout=10) for _ in range(4)]
    try:
        await asyncio.sleep(0.3)
        with socket.create_connection(("127.0.0.1", pacs.port), timeout=10) as extra:
            assert await asyncio.to_thread(extra.recv, 1) == b""  # closed at once
        for conn in silent:
            conn.setblocking(False)
            with pytest.raises(BlockingIOError):
                conn.recv(1)  # still open, still waited for
    finally:
        for conn in silent:
            conn.close()
    await asyncio.sleep(0.3)
    assert (await dcmtk(*pacs.scu("echoscu"))).code == 0


@pytest.mark.pacs(dicom_extra="  check_peer_address: true\n")
async def test_a_peer_named_by_host_name_is_resolved_off_the_loop(pacs: Pacs) -> None:
    source = pacs.rt.sources["pacs-store"]
    assert isinstance(source, DicomSource)
    source.actor.config.peers[0].host = "localhost"  # HOSP_A_PACS, calling from 127.0.0.1
    assert (await dcmtk(*pacs.scu("echoscu"))).code == 0
    _, addresses = source._resolved["localhost"]
    assert "127.0.0.1" in addresses
    source.actor.config.peers[0].host = "127.0.0.2"
    assert (await dcmtk(*pacs.scu("echoscu"))).code != 0  # another address: rejected
