"""The sample ``hip`` channel (HIPMessageServer) beside the EMPI feed and the XDS.b registry and
repository, on SQLite and PostgreSQL; the walk-through's patient (欧阳明轩) fed to the EMPI; document
register messages built as a hospital's integration platform writes them."""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import zeep
from lxml import etree
from sqlalchemy import select

from engine.runtime import Runtime
from profiles.cda.schema import uploads
from tests.conftest import running
from tests.engine.connectors.mllp_peers import hl7_send
from tests.profiles.conftest import ROOT, deploy

V3 = "urn:hl7-org:v3"
SOAP12 = "application/soap+xml; charset=utf-8"
CHANNELS = ("pix-feed", "xds-registry", "xds-repository", "hip")
CDA_DIR = ROOT / "tests" / "data" / "cda" / "valid"


def register_message(
    document: bytes, code: str = "C0053", *, title: str = "出院小结", sender: str = "HOSP-A-EMR"
) -> str:
    """RCMR_IN000002UV02 (电子病历文档注册, services/DocumentRegister.xsd) carrying ``document``."""
    now = dt.datetime(2026, 12, 4, 9, 30).strftime("%Y%m%d%H%M%S")
    encoded = base64.b64encode(document).decode("ascii")
    return f"""<RCMR_IN000002UV02 xmlns="urn:hl7-org:v3" ITSVersion="XML_1.0">
  <id root="2.16.156.10011.2.5.1.1" extension="{uuid.uuid4().hex}"/>
  <creationTime value="{now}"/>
  <interactionId root="2.16.156.10011.2.5.1.2" extension="RCMR_IN000002UV02"/>
  <processingCode code="P"/>
  <processingModeCode/>
  <acceptAckCode code="AL"/>
  <receiver typeCode="RCV"><device classCode="DEV" determinerCode="INSTANCE"><id>
    <item root="2.16.156.10011.2.5.1.3" extension="HIE-CITY-PLATFORM"/></id></device></receiver>
  <sender typeCode="SND"><device classCode="DEV" determinerCode="INSTANCE"><id>
    <item root="2.16.156.10011.2.5.1.3" extension="{sender}"/></id></device></sender>
  <controlActProcess classCode="CACT" moodCode="EVN">
    <subject typeCode="SUBJ">
      <clinicalDocument classCode="DOCCLIN" moodCode="EVN">
        <id><item root="2.16.156.10011.2.5.1.24" extension="DOC-{code}-0001"/></id>
        <code code="{code}" codeSystem="2.16.156.10011.2.5.1.23" codeSystemName="文档类型代码">
          <displayName value="{title}"/></code>
        <statusCode/>
        <effectiveTime value="{now}"/>
        <confidentialityCode code="N" codeSystem="2.16.156.10011.2.5.1.25" codeSystemName="文档保密级别">
          <displayName value="正常访问保密级别"/></confidentialityCode>
        <versionNumber value="1"/>
        <storageCode><originalText value="{encoded}"/><translation/></storageCode>
      </clinicalDocument>
    </subject>
  </controlActProcess>
</RCMR_IN000002UV02>"""


def call_envelope(action: str, message: str, *, soap11: bool = False) -> bytes:
    """A HIPMessageServer call as a hospital's toolkit posts it (the message escaped as a string)."""
    text = etree.Element("x")
    text.text = message
    escaped = etree.tostring(text, encoding="unicode")[3:-4]
    ns = "http://schemas.xmlsoap.org/soap/envelope/" if soap11 else "http://www.w3.org/2003/05/soap-envelope"
    return (
        f'<s:Envelope xmlns:s="{ns}" xmlns:v3="urn:hl7-org:v3"><s:Body><v3:HIPMessageServer>'
        f"<v3:action>{action}</v3:action><v3:message>{escaped}</v3:message>"
        "</v3:HIPMessageServer></s:Body></s:Envelope>"
    ).encode()


def result_of(response: bytes) -> etree._Element:
    """The MCCI_IN000002UV01 inside a HIPMessageServerResponse."""
    root = etree.fromstring(response)
    found = root.find(f".//{{{V3}}}HIPMessageServerResult")
    assert found is not None, response[:500]
    return etree.fromstring((found.text or "").encode("utf-8"))


def ack_of(mcci: etree._Element) -> tuple[str, list[str]]:
    ack = mcci.find(f"{{{V3}}}acknowledgement")
    assert ack is not None
    return ack.get("typeCode", ""), [t.text or "" for t in ack.iter(f"{{{V3}}}text")]


class Hip:
    def __init__(self, rt: Runtime, ports: dict[str, int], client: httpx.AsyncClient, folder: Path) -> None:
        self.rt = rt
        self.url = f"http://127.0.0.1:{ports['hip']}/hip"
        self.registry = f"http://127.0.0.1:{ports['xds-registry']}/xds/registry"
        self.feed_port = ports["pix-feed"]
        self.client = client
        self.config = folder / "config.yaml"

    async def call(self, action: str, message: str, *, soap11: bool = False) -> httpx.Response:
        return await self.client.post(
            self.url,
            content=call_envelope(action, message, soap11=soap11),
            headers={"Content-Type": "text/xml; charset=utf-8" if soap11 else SOAP12},
        )

    async def upload(self, document: bytes, action: str = "S0014", **kwargs: Any) -> tuple[str, list[str]]:
        response = await self.call(action, register_message(document, **kwargs))
        assert response.status_code == 200, response.text
        return ack_of(result_of(response.content))

    def uploads(self) -> list[dict[str, Any]]:
        with self.rt.services.db.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(uploads).order_by(uploads.c.id))]

    def zeep_client(self) -> zeep.Client:
        return zeep.Client(f"{self.url}?wsdl")


@pytest.fixture
async def hip(tmp_path: Path, store_url: str) -> AsyncIterator[Hip]:
    app, ports = deploy(tmp_path, store_url, CHANNELS)
    async with running(app) as rt, httpx.AsyncClient(timeout=60) as client:
        (ack,) = await hl7_send(
            ports["pix-feed"], (ROOT / "tests" / "data" / "empi" / "feed-hospital-a.hl7").read_bytes()
        )
        assert b"MSA|AA" in ack  # 欧阳明轩, the samples' patient, is known to the EMPI
        yield Hip(rt, ports, client, tmp_path)
