"""The PDQ Supplier as a destination: ``pdq-iti21:`` answers QBP^Q22 with RSP^K22, QCN^J01 with ACK.

source: {url: "mllp://127.0.0.1:3602"}
ack: after_delivery
ack_from: pdq
destinations:
  - {id: pdq, url: "pdq-iti21:"}
"""

from __future__ import annotations

from engine.connectors.base import Outbound, SendResult
from engine.errors import MessageError
from ihe._hl7v2 import Request
from ihe.iti21 import PdqAnswer, build_ack_j01, build_rsp_k22, parse_qbp_q22, parse_qcn_j01
from profiles.empi.destination import EmpiDestination

__all__ = ["PdqQueryDestination"]


class PdqQueryDestination(EmpiDestination):
    scheme = "pdq-iti21"

    async def send(self, out: Outbound) -> SendResult:
        req = self._request(out)
        if req.header.message_code == "QCN":
            return await self._cancel(out, req)
        query = None
        try:
            query = parse_qbp_q22(req)
            answer = await self.actor.read(self.actor.supplier.search, query)
        except MessageError as exc:
            answer = PdqAnswer(errors=[exc])
        text = build_rsp_k22(req, query, answer, application=self._application, facility=self._facility)
        refused = "; ".join(e.text for e in answer.errors) or None
        qpd = query.qpd if query is not None else (req.segment_text("QPD") or "")
        await self.record_query(
            "ITI-21", out, req, qpd, [i for p in answer.patients for i in p.identifiers], refused
        )
        return self._answer(out, text, refused)

    async def _cancel(self, out: Outbound, req: Request) -> SendResult:
        requester = f"{req.header.sending_application}^{req.header.sending_facility}"
        try:
            if req.header.trigger_event != "J01":
                raise MessageError(
                    f"ITI-21 cancels with QCN^J01, not {req.header.message_type}",
                    hl7_code="201",
                    location="MSH^1^9",
                )
            tag, _ = parse_qcn_j01(req)
            await self.actor.read(self.actor.supplier.cancel, requester, tag)
        except MessageError as exc:
            text = build_ack_j01(req, "AE", exc, application=self._application, facility=self._facility)
            return self._answer(out, text, exc.text)
        text = build_ack_j01(req, "AA", None, application=self._application, facility=self._facility)
        return self._answer(out, text, None)
