"""The segment view of a message's HL7 v2 stages (``GET /api/v1/messages/{id}``): over real HTTP against
a running engine on SQLite and PostgreSQL, then the splitting itself (the message's own separators,
Z-segments, line ends), and that receiving messages never loads hl7apy."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

from engine.config import AppConfig
from engine.console.hl7view import field_names, is_hl7, segments
from tests.conftest import hl7_message
from tests.engine.connectors.mllp_peers import hl7_send
from tests.engine.console.test_api import deployment


def _fields(stage: dict[str, Any], name: str) -> dict[str, dict[str, str]]:
    (segment,) = [s for s in stage["segments"] if s["name"] == name]
    return {f["position"]: f for f in segment["fields"]}


async def test_an_opened_message_shows_its_segments_with_field_names(
    make_app: Callable[..., AppConfig], store_url: str
) -> None:
    async with deployment(make_app, store_url) as d:
        port = d.rt.sources["adt"].url.port
        assert port is not None
        await hl7_send(port, hl7_message("CTL-Z", patient="P-7", extra="ZPI|1|VIP^Very important\r").encode())
        async with d.client("auditor") as c:
            found = (await c.get("/api/v1/messages", params={"control_id": "CTL-Z"})).json()["messages"]
            body = (await c.get(f"/api/v1/messages/{found[0]['id']}")).json()
            plain = (await c.get(f"/api/v1/messages/{d.message_ids[0]}")).json()

    raw = body["raw"]
    assert [(s["name"], s["index"]) for s in raw["segments"]] == [
        ("MSH", 1),
        ("EVN", 2),
        ("PID", 3),
        ("PV1", 4),
        ("ZPI", 5),
    ]
    pid = _fields(raw, "PID")
    assert pid["PID-3"] == {
        "position": "PID-3",
        "name": "Patient Identifier List",
        "value": "P-7^^^HOSP_A&1.2.156.112604.1.1&ISO^PI",
    }
    assert pid["PID-5"]["name"] == "Patient Name" and pid["PID-5"]["value"] == "王^小明"
    assert "PID-2" not in pid and "PID-4" not in pid  # empty fields are left out
    msh = _fields(raw, "MSH")
    assert msh["MSH-1"]["value"] == "|" and msh["MSH-1"]["name"] == "Field Separator"
    assert msh["MSH-2"]["value"] == "^~\\&" and msh["MSH-2"]["name"] == "Encoding Characters"
    assert msh["MSH-9"] == {"position": "MSH-9", "name": "Message Type", "value": "ADT^A01^ADT_A01"}
    assert msh["MSH-10"]["value"] == "CTL-Z" and msh["MSH-10"]["name"] == "Message Control ID"
    zpi = _fields(raw, "ZPI")
    assert zpi["ZPI-2"] == {"position": "ZPI-2", "name": "", "value": "VIP^Very important"}
    assert _fields(plain["raw"], "PID")["PID-3"]["value"].startswith("P-1^")
    # the stages that are not sent as they were received have no segments of their own to show
    assert {x["sent"] for x in body["deliveries"]} <= {"unchanged", None}


def test_segments_follow_the_messages_own_separators_and_line_ends() -> None:
    text = (
        "MSH#^~\\&#LAB#HOSP_B#HIE#CITY#20261122##ORU^R01#C-9#P#2.5\nPID#1##Q-42^^^HOSP_B\n\nOBX#1#ST#GLU||A"
    )
    seg = segments(text)
    assert seg is not None
    assert [(s["name"], s["index"]) for s in seg] == [("MSH", 1), ("PID", 2), ("OBX", 3)]
    assert seg[0]["fields"][0] == {"position": "MSH-1", "name": "Field Separator", "value": "#"}
    assert {f["position"]: f["value"] for f in seg[1]["fields"]} == {"PID-1": "1", "PID-3": "Q-42^^^HOSP_B"}
    obx = {f["position"]: f for f in seg[2]["fields"]}
    assert obx["OBX-3"]["value"] == "GLU||A" and obx["OBX-3"]["name"] == "Observation Identifier"
    assert segments("MSH|^~\\&|A\r\nPID|1||X") == segments("MSH|^~\\&|A\rPID|1||X")


def test_text_that_is_not_hl7_v2_has_no_segments() -> None:
    for text in ("", "<ClinicalDocument/>", '{"resourceType": "Patient"}', "PID|1||X", "MSH"):
        assert segments(text) is None and not is_hl7(text)
    assert field_names("ZPI") == {} and field_names("pid") == {} and field_names("Q9X") == {}
    assert field_names("PV1")[3] == "Assigned Patient Location"


def test_receiving_and_delivering_messages_never_loads_hl7apy() -> None:
    probe = (
        "import sys\n"
        "import engine.runtime, engine.channel, engine.console.api, engine.console.source\n"
        "import engine.console.hl7view\n"
        "print('hl7apy' in sys.modules)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == "False"
