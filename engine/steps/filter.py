"""``filter``: keep only the messages an integrator wants; the rest are stored as filtered and ACKed AA.

- filter:
    message_type: [ADT^A01, ADT^A04, ADT^A08]
    sending_facility: HOSP_A
    fields:
      - {path: PID.8, in: [M, F]}
    exclude: false      # true: drop the messages that match instead
"""

from __future__ import annotations

from pydantic import Field

from engine.message import Message
from engine.steps.base import CONTINUE, Step, StepResult
from engine.steps.conditions import Criteria

__all__ = ["FilterStep"]


class FilterOptions(Criteria):
    exclude: bool = Field(False, description="filter out the messages that match, keep the others")


class FilterStep(Step):
    kind = "filter"
    Options = FilterOptions
    options: FilterOptions

    def problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        if self.options.is_empty():
            return [((), "a filter needs at least one condition")]
        return []

    def apply(self, msg: Message) -> StepResult:
        matched = self.options.holds(msg)
        if matched != self.options.exclude:
            return CONTINUE
        why = "matched an exclude filter" if self.options.exclude else "did not match the filter"
        return StepResult(filtered=True, reason=f"message {why}")
