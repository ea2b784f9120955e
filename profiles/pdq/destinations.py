"""The PDQ Supplier as a destination: ``pdq-iti21:`` answers QBP^Q22 with RSP^K22, QCN^J01 with ACK.

source: {url: "mllp://127.0.0.1:3602"}
ack: after_delivery
ack_from: pdq
destinations:
  - {id: pdq, url: "pdq-iti21:"}
"""

from __future__ import annotations

from sqlalchemy import Connection

from engine.connectors.base import Outbound, SendResult
from engine.errors import MessageError
from ihe._hl7v2 import Request
from ihe.iti21 import PdqAnswer, build_ack_j01, build_rsp_k22, parse_qbp_q22, parse_qcn_j01
from profiles.empi.destination import EmpiDestination

__all__ = ["PdqQueryDestination"]


class PdqQueryDestination(EmpiDestination):
    scheme = "pdq-iti21"
    # The message, the RSP, the query's ATNA record and the continuation it leaves commit together,
    # once; a QCN^J01's delete commits with it in the same way.
    inline = "read"

    async def send(self, out: Outbound) -> SendResult:
        req = self._request(out)
        if req.header.message_code == "QCN":
            return self._cancel(out, req)
        query = None
        writes = None
        try:
            query = parse_qbp_q22(req)
            answer, writes = await self.actor.read(self.actor.supplier.search, query)
        except MessageError as exc:
            answer = PdqAnswer(errors=[exc])
        text = build_rsp_k22(req, query, answer, application=self._application, facility=self._facility)
        refused = "; ".join(e.text for e in answer.errors) or None
        qpd = query.qpd if query is not None else (req.segment_text("QPD") or "")
        event = self.query_audit(
            "ITI-21", out, req, qpd, [i for p in answer.patients for i in p.identifiers], refused
        )
        return self._answer(out, text, refused, audited=(event,), writes=writes)

    def _cancel(self, out: Outbound, req: Request) -> SendResult:
        requester = f"{req.header.sending_application}^{req.header.sending_facility}"
        try:
            if req.header.trigger_event != "J01":
                raise MessageError(
                    f"ITI-21 cancels with QCN^J01, not {req.header.message_type}",
                    hl7_code="201",
                    location="MSH^1^9",
                )
            tag, _ = parse_qcn_j01(req)
        except MessageError as exc:
            text = build_ack_j01(req, "AE", exc, application=self._application, facility=self._facility)
            return self._answer(out, text, exc.text)
        text = build_ack_j01(req, "AA", None, application=self._application, facility=self._facility)
        supplier = self.actor.supplier

        def forget(conn: Connection) -> None:
            supplier.cancel(conn, requester, tag)

        return self._answer(out, text, None, writes=forget)
