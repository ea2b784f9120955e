"""ITI-10 PIX Update Notification (HL7 v2.5): the ADT^A31 a PIX Manager sends its consumers.

ITI TF-2 §3.10.4.1. Sent when the set of identifiers cross-referenced for a person changes in a
domain the consumer is interested in. MSH, EVN, PID, PV1 (structure ADT_A05); PID carries only
PID-3, one repetition per identifier with a fully qualified assigning authority (several of one
domain consecutively), and PID-5 a single space; PV1-2 is ``N`` (not applicable). The consumer
answers with an ACK (original mode), which the engine's MLLP destination checks as for any message.
"""

from __future__ import annotations

from datetime import UTC, datetime

from engine.hl7v2.ack import escape
from ihe.iti9 import QualifiedId

__all__ = ["build_adt_a31"]


def build_adt_a31(
    identifiers: list[QualifiedId],
    *,
    control_id: str,
    application: str,
    facility: str,
    receiving_application: str = "",
    receiving_facility: str = "",
) -> str:
    now = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    pid3 = "~".join(f"{escape(i.value)}^^^{escape(i.namespace)}&{escape(i.oid)}&ISO" for i in identifiers)
    segments = [
        "|".join(
            [
                "MSH",
                "^~\\&",
                escape(application),
                escape(facility),
                escape(receiving_application),
                escape(receiving_facility),
                now,
                "",
                "ADT^A31^ADT_A05",
                control_id,
                "P",
                "2.5",
                "",
                "",
                "",
                "",
                "",
                "UNICODE UTF-8",
            ]
        ),
        f"EVN||{now}",
        f"PID|||{pid3}|| ",  # PID-5: a single space (TF-2 §3.10.4.1.2.2)
        "PV1||N",
    ]
    return "\r".join(segments) + "\r"
