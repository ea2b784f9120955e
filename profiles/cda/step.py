"""``cda-validate``: the CDA validator as a pipeline step, for any channel that receives documents
(a folder of CDA files, an HTTP upload, the national SOAP interface)::

    steps:
      - cda-validate:
          on_error: reject        # reject (default): the message is errored, the sender told why
                                  # keep: the report travels with the message, destinations decide

The report (JSON) is kept with the message for the auditors and for later steps
(``msg.variables["cda_report"]``); its warnings are the message's warnings. A rejected document is
stored as errored with the whole report as its error detail, and the sender is told the first
errors with their rule ids and lines.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from engine.errors import MessageError
from engine.message import Message
from engine.steps.base import CONTINUE, Step, StepOptions, StepResult
from profiles.cda.setup import validator_for

__all__ = ["CdaValidateStep"]

_SHOWN = 5  # errors named in the answer to the sender; all of them are in the stored report


class CdaValidateOptions(StepOptions):
    on_error: Literal["reject", "keep"] = Field(
        "reject", description="reject: the message is errored; keep: the report goes on with it"
    )


class CdaValidateStep(Step):
    kind = "cda-validate"
    Options = CdaValidateOptions
    options: CdaValidateOptions

    def problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        from profiles.cda.setup import validator_problems

        return [((), str(p)) for p in validator_problems(self.app)]

    def apply(self, msg: Message) -> StepResult:
        # the document as received (bytes: its XML declaration decides the encoding), or as an
        # earlier step rewrote it
        data = msg.content.encode("utf-8") if msg.variables.get("changed") else msg.raw
        report = validator_for(self.app).validate(data, f"message {msg.id}").report
        msg.variables["cda_report"] = report.as_dict()
        msg.warnings += [f"{f.rule}: {f.message} (line {f.line})" for f in report.warnings]
        if report.accepted or self.options.on_error == "keep":
            return CONTINUE
        msg.variables["error_detail"] = report.to_json()
        named = "; ".join(
            f"{f.rule}" + (f" line {f.line}" if f.line else "") + f": {f.message}"
            for f in report.errors[:_SHOWN]
        )
        more = len(report.errors) - _SHOWN
        raise MessageError(
            f"CDA rejected ({len(report.errors)} error(s)): {named}" + (f"; {more} more" if more > 0 else "")
        )
