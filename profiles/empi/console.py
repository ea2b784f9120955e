"""The web console's empi section (engine.console.sections): placeholder, filled in by its own work."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from engine.console.sections import ConsoleSection, SectionRoute, SectionTools

__all__ = ["SECTION"]


def routes(tools: SectionTools) -> Sequence[SectionRoute]:
    return []


SECTION = ConsoleSection(
    id="empi", permission="patients", static=Path(__file__).with_name("pages"), routes=routes, order=10
)
