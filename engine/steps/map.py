"""``map``: transform the content with a mapping from ``mappings/``.

    - map: {mapping: hospital-a-adt}

The YAML mapping engine comes with the "Declarative YAML mappings" issue; until then a map step
checks that its mapping file exists (so ``hie check`` catches a typo) and passes content through.
"""

from __future__ import annotations

from pydantic import Field

from engine.message import Message
from engine.steps.base import CONTINUE, Step, StepOptions, StepResult

__all__ = ["MapStep"]


class MapOptions(StepOptions):
    mapping: str | None = Field(None, description="mapping id: the file mappings/<id>.yaml")


class MapStep(Step):
    kind = "map"
    Options = MapOptions
    options: MapOptions

    def problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        if self.options.mapping is None:
            return []
        folder = self.app.resolve(self.app.engine.mappings_dir)
        if not (folder / f"{self.options.mapping}.yaml").is_file():
            return [(("mapping",), f"mapping file not found: {folder / (self.options.mapping + '.yaml')}")]
        return []

    def apply(self, msg: Message) -> StepResult:
        return CONTINUE
