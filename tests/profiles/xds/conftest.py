"""The XDS registry's tests: a fresh registry (engine, EMPI and XDS tables) on SQLite and PostgreSQL,
and submissions made from the official ITI-42 example."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from lxml import etree
from sqlalchemy import Connection, Engine, func, select

from engine.config import load_config
from engine.runtime import Runtime
from engine.store.db import migrate, open_engine
from ihe._ebxml import read_submission
from profiles.plugin import PLUGINS
from profiles.xds.config import XdsConfig
from profiles.xds.registry import Registered, Registry
from tests.conftest import running
from tests.engine.connectors.mllp_peers import hl7_send
from tests.profiles.conftest import deploy

PATIENT = "SELF-5^^^&1.3.6.1.4.1.21367.2005.3.7&ISO"
KNOWN = {PATIENT: 4242}  # the EMPI's answer, for these tests: affinity-domain id -> person


@pytest.fixture
def db(store_url: str) -> Iterator[Engine]:
    eng = open_engine(store_url)
    migrate(eng, [p.migrations for p in PLUGINS if p.migrations is not None])
    yield eng
    eng.dispose()


_ids = itertools.count(1)
REGISTRY = Registry(lambda: next(_ids), lambda conn, cx: KNOWN.get(cx))


def register(db: Engine, text: str) -> Registered:
    submission, errors = read_submission(etree.fromstring(text.encode("utf-8")))
    assert errors == []
    with db.begin() as conn:
        return REGISTRY.register(conn, submission, None)


def count(conn: Connection, table: object) -> int:
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def second_version(text: str, n: int, *, replaces: str | None = None) -> str:
    """The example as another submission: new uniqueIds; a new document replacing ``replaces``."""
    text = text.replace("9999.32", f"9999.32{n}").replace("9999.33", f"9999.33{n}")
    if replaces:
        text = text.replace(
            "</rim:RegistryObjectList>",
            f'<rim:Association id="rplc{n}" associationType="urn:ihe:iti:2007:AssociationType:RPLC" '
            f'sourceObject="Document01" targetObject="{replaces}"/></rim:RegistryObjectList>',
        )
    return text


# -- the registry and repository over real HTTP ------------------------------------------------------
ITI = "urn:ihe:iti:2007:"
SOAP = "application/soap+xml; charset=UTF-8"
# The IHE test affinity domain of the official examples, as an EMPI domain fed by "HIS_T"
IHE_DOMAIN = """    - id: ihe-test
      namespace: IHETEST
      oid: 1.3.6.1.4.1.21367.2005.3.7
      description: the IHE examples' affinity domain (tests)
      sources: [{application: HIS_T, facility: IHETEST}]
"""


class Xds:
    """The sample xds-registry and xds-repository channels (and pix-feed, to make patients known)."""

    def __init__(self, rt: Runtime, ports: dict[str, int], client: httpx.AsyncClient, config: Path) -> None:
        self.rt = rt
        self.config = config
        self.client = client
        self.registry = f"http://127.0.0.1:{ports['xds-registry']}/xds/registry"
        self.repository = f"http://127.0.0.1:{ports['xds-repository']}/xds/repository"
        self.feed_port = ports["pix-feed"]
        self.unique_id = rt.app.section("xds", XdsConfig).repository_unique_id

    async def know(
        self, local_id: str, *, name: str = "测试^病人", born: str = "19800101", merges: str = ""
    ) -> None:
        """Feed a patient of the IHE test domain (ITI-8), so that the registry knows its id;
        ``merges``: the id this one replaces (A40)."""
        event, structure = ("A40", "ADT_A39") if merges else ("A04", "ADT_A01")
        msg = (
            f"MSH|^~\\&|HIS_T|IHETEST|PIX|CITY_HIE|20261203090000||ADT^{event}^{structure}|F-{local_id}|P|2.5"
            f"|||||CHN|UNICODE UTF-8\rEVN|{event}|20261203090000\r"
            f"PID|1||{local_id}^^^IHETEST&1.3.6.1.4.1.21367.2005.3.7&ISO^PI||{name}||{born}|F\r"
        )
        msg += f"MRG|{merges}^^^IHETEST&1.3.6.1.4.1.21367.2005.3.7&ISO\r" if merges else "PV1|1|O\r"
        (answer,) = await hl7_send(self.feed_port, msg.encode("utf-8"))
        assert b"MSA|AA" in answer

    async def post(self, url: str, body: bytes, content_type: str = SOAP) -> httpx.Response:
        return await self.client.post(url, content=body, headers={"Content-Type": content_type})


@pytest.fixture
async def xds(tmp_path: Path, store_url: str) -> AsyncIterator[Xds]:
    app, ports = deploy(tmp_path, store_url, ("pix-feed", "xds-registry", "xds-repository"))
    config = (tmp_path / "config.yaml").read_text("utf-8")
    config = config.replace("  matching:\n", IHE_DOMAIN + "  matching:\n", 1)
    repository = tmp_path / "channels" / "xds-repository.yaml"
    repository.write_text(
        repository.read_text("utf-8").replace(
            "  wsdl: repository\n", "  wsdl: repository\n  max_body_bytes: 1048576\n"
        ),
        "utf-8",
    )
    (tmp_path / "config.yaml").write_text(config, "utf-8")
    app = load_config(tmp_path / "config.yaml")
    async with running(app) as rt, httpx.AsyncClient(timeout=30) as client:
        yield Xds(rt, ports, client, tmp_path / "config.yaml")


def envelope(
    action: str, body: str, *, message_id: str = "urn:uuid:00000000-0000-4000-8000-000000000001"
) -> bytes:
    return (
        '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
        'xmlns:a="http://www.w3.org/2005/08/addressing"><s:Header>'
        f'<a:Action s:mustUnderstand="1">{action}</a:Action><a:MessageID>{message_id}</a:MessageID>'
        f"</s:Header><s:Body>{body}</s:Body></s:Envelope>"
    ).encode()


def body_of(response: bytes) -> etree._Element:
    """The one element in the Body of a SOAP response (plain, or the root of an MTOM package)."""
    root = etree.fromstring(response)
    found = root.find("{http://www.w3.org/2003/05/soap-envelope}Body")
    assert found is not None
    return found[0]
