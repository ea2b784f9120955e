"""``route``: choose destinations by content. Every rule that holds adds its destinations.

- route:
    rules:
      - when: {message_type: ADT^A01}
        to: [archive, empi]
      - when: {fields: [{path: PV1.2, equals: I}]}
        to: [inpatient-system]
    otherwise: [archive]   # when no rule holds; empty = the message is filtered
"""

from __future__ import annotations

from pydantic import Field

from engine.message import Message
from engine.steps.base import CONTINUE, Step, StepOptions, StepResult
from engine.steps.conditions import Criteria

__all__ = ["RouteStep"]


class Rule(StepOptions):
    when: Criteria
    to: list[str] = Field(min_length=1)


class RouteOptions(StepOptions):
    rules: list[Rule] = Field(min_length=1)
    otherwise: list[str] = []
    first_match: bool = Field(False, description="stop at the first rule that holds")


class RouteStep(Step):
    kind = "route"
    Options = RouteOptions
    options: RouteOptions

    def problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        known = {d.id for d in self.channel.destinations}
        out: list[tuple[tuple[str | int, ...], str]] = []
        for i, rule in enumerate(self.options.rules):
            for j, dest in enumerate(rule.to):
                if dest not in known:
                    out.append((("rules", i, "to", j), f"no destination with id {dest!r} in this channel"))
        for j, dest in enumerate(self.options.otherwise):
            if dest not in known:
                out.append((("otherwise", j), f"no destination with id {dest!r} in this channel"))
        return out

    def apply(self, msg: Message) -> StepResult:
        chosen: set[str] = set()
        for rule in self.options.rules:
            if rule.when.holds(msg):
                chosen.update(rule.to)
                if self.options.first_match:
                    break
        if not chosen:
            chosen.update(self.options.otherwise)
        if not chosen:
            return StepResult(filtered=True, reason="no route rule held and no otherwise destinations")
        msg.routes = chosen if msg.routes is None else msg.routes & chosen
        return CONTINUE
