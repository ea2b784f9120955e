"""DICOM over TLS (PS3.15 B.1): the archive's SCP with the channel's ``tls:`` material; a client with
the platform's CA and a client certificate gets Success, a plain connection gets nothing."""

from __future__ import annotations

import asyncio
import shutil
import ssl
from pathlib import Path

from pynetdicom import AE

from engine.config import load_config
from tests.conftest import running
from tests.engine.connectors.test_mllp_tls import FILES, client_context, pki  # noqa: F401 - fixture
from tests.profiles.conftest import deploy

VERIFICATION = "1.2.840.10008.1.1"


def echo(port: int, context: ssl.SSLContext | None) -> bool:
    ae = AE(ae_title="HOSP_A_PACS")
    ae.add_requested_context(VERIFICATION)
    ae.acse_timeout = ae.network_timeout = 5
    tls = (context, "localhost") if context is not None else None
    assoc = ae.associate("127.0.0.1", port, ae_title="HIE_PACS", tls_args=tls)
    if not assoc.is_established:
        return False
    status = assoc.send_c_echo()
    assoc.release()
    return int(status.Status) == 0


async def test_the_scp_speaks_tls_and_only_tls(tmp_path: Path, store_url: str, pki: Path) -> None:  # noqa: F811
    _, ports = deploy(tmp_path, store_url, ("pix-feed", "pacs-store"))
    for name in FILES:
        shutil.copy(pki / name, tmp_path / name)
    config = tmp_path / "config.yaml"
    config.write_text(
        config.read_text("utf-8").replace(
            "tls: {}\n", "tls:\n  srv: {cert: srv.pem, key: srv.key, ca: ca.pem, require_client_cert: true}\n"
        )
    )
    channel = tmp_path / "channels" / "pacs-store.yaml"
    channel.write_text(
        channel.read_text("utf-8").replace("  max_associations: 16\n", "  max_associations: 16\n  tls: srv\n")
    )
    async with running(load_config(config)):
        port = ports["pacs-store"]
        assert await asyncio.to_thread(echo, port, client_context(pki))
        assert not await asyncio.to_thread(echo, port, client_context(pki, with_cert=False))
        assert not await asyncio.to_thread(echo, port, None)
        assert await asyncio.to_thread(echo, port, client_context(pki))  # still serving
