"""The HL7 V3 message wrapper of the assessment's services, and the acknowledgement the platform
answers with (china-hie.md §2, message wrapper table).

Every request carries ``id`` (message id, root ``2.16.156.10011.2.5.1.1``; older senders
``2.16.156.10011.0``), ``creationTime``, ``interactionId`` (root ``2.16.156.10011.2.5.1.2``, the
artifact id), ``receiver``/``sender`` devices (root ``2.16.156.10011.2.5.1.3``). The answer is
``MCCI_IN000002UV01`` with ``acknowledgement/@typeCode`` AA or AE, ``targetMessage/id`` the request's
id and one ``acknowledgementDetail`` per reason (an error, or a warning that did not stop it).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from lxml import etree

__all__ = ["V3", "Wrapper", "acknowledgement", "new_message", "read_wrapper"]

V3 = "urn:hl7-org:v3"
_V = f"{{{V3}}}"
MESSAGE_ID_ROOT = "2.16.156.10011.2.5.1.1"
INTERACTION_ROOT = "2.16.156.10011.2.5.1.2"
DEVICE_ROOT = "2.16.156.10011.2.5.1.3"
_CHINA = dt.timezone(dt.timedelta(hours=8))


@dataclass(frozen=True)
class Wrapper:
    root: str  # the root element's local name (PRPA_IN201311UV02, RCMR_IN000002UV02, ...)
    message_id: str
    message_id_root: str
    interaction: str  # interactionId/@extension
    sender: str  # sender device id
    receiver: str


def _attr(root: etree._Element, path: str, name: str) -> str:
    found = root.find(path)
    return (found.get(name) or "").strip() if found is not None else ""


def read_wrapper(root: etree._Element) -> Wrapper:
    """What the wrapper says (missing parts are empty strings: the service decides what it needs)."""
    return Wrapper(
        root=etree.QName(root).localname,
        message_id=_attr(root, f"{_V}id", "extension"),
        message_id_root=_attr(root, f"{_V}id", "root"),
        interaction=_attr(root, f"{_V}interactionId", "extension"),
        sender=_attr(root, f"{_V}sender/{_V}device/{_V}id/{_V}item", "extension"),
        receiver=_attr(root, f"{_V}receiver/{_V}device/{_V}id/{_V}item", "extension"),
    )


def new_message(
    name: str, *, receiver: str, sender: str, accept_ack: str, now: dt.datetime | None = None
) -> etree._Element:
    """The wrapper of a message of ours (``name``: its root element and interaction): message id,
    creation time (China time), interactionId, processing codes, receiver and sender devices."""
    moment = (now or dt.datetime.now(_CHINA)).astimezone(_CHINA)
    root = etree.Element(f"{_V}{name}", nsmap={None: V3}, ITSVersion="XML_1.0")
    etree.SubElement(root, f"{_V}id", root=MESSAGE_ID_ROOT, extension=uuid.uuid4().hex)
    etree.SubElement(root, f"{_V}creationTime", value=moment.strftime("%Y%m%d%H%M%S"))
    etree.SubElement(root, f"{_V}interactionId", root=INTERACTION_ROOT, extension=name)
    etree.SubElement(root, f"{_V}processingCode", code="P")
    etree.SubElement(root, f"{_V}processingModeCode")
    etree.SubElement(root, f"{_V}acceptAckCode", code=accept_ack)
    for role, type_code, system in (("receiver", "RCV", receiver), ("sender", "SND", sender)):
        device = etree.SubElement(
            etree.SubElement(root, f"{_V}{role}", typeCode=type_code),
            f"{_V}device",
            classCode="DEV",
            determinerCode="INSTANCE",
        )
        etree.SubElement(etree.SubElement(device, f"{_V}id"), f"{_V}item", root=DEVICE_ROOT, extension=system)
    return root


def acknowledgement(
    request: Wrapper | None,
    code: str,
    details: list[str],
    *,
    device_id: str,
    now: dt.datetime | None = None,
) -> str:
    """``MCCI_IN000002UV01``: AA or AE for ``request`` (None when it could not even be read), with
    one acknowledgementDetail per entry of ``details``."""
    ack = new_message(
        "MCCI_IN000002UV01",
        receiver=request.sender if request else "",
        sender=device_id,
        accept_ack="NE",
        now=now,
    )
    acknowledged = etree.SubElement(ack, f"{_V}acknowledgement", typeCode=code)
    target = etree.SubElement(acknowledged, f"{_V}targetMessage")
    etree.SubElement(
        target,
        f"{_V}id",
        root=(request.message_id_root if request and request.message_id_root else MESSAGE_ID_ROOT),
        extension=request.message_id if request else "",
    )
    for text in details:
        detail = etree.SubElement(acknowledged, f"{_V}acknowledgementDetail")
        etree.SubElement(detail, f"{_V}text").text = text
    return str(etree.tostring(ack, encoding="unicode"))
