"""``map``: transform the content with a declarative mapping from ``mappings/``.

    - map: {mapping: hospital-a-adt}          # vendor HL7 v2 -> platform AdtEvent (JSON)
    - map: {mapping: platform-adt-v25}        # platform AdtEvent -> the platform's HL7 v2.5 ADT

Steps chain: the second map reads the first one's output object directly (no JSON round trip).
A value the mapping rejects (missing required field, unmapped code, bad date, wrong ID-card check
digit...) makes the message an error: it is stored as errored with the mapping, rule, path and value
named, and the sender gets AE with an ERR segment saying the same. Mapping warnings are stored with
the message.
"""

from __future__ import annotations

from pydantic import Field

from engine.mapping.compiler import CompiledMapping
from engine.message import ContentType, Message
from engine.steps.base import CONTINUE, Step, StepOptions, StepResult

__all__ = ["MapStep"]

_CONTENT_TYPES = {"json": ContentType.JSON, "hl7v2": ContentType.HL7V2, "xml": ContentType.XML}


class MapOptions(StepOptions):
    mapping: str = Field(description="mapping id: the file mappings/<id>.yaml")


class MapStep(Step):
    kind = "map"
    Options = MapOptions
    options: MapOptions
    _compiled: CompiledMapping | None = None

    def problems(self) -> list[tuple[tuple[str | int, ...], str]]:
        catalog = self.app.mapping_catalog(raise_on_problems=False)
        mapping_id = self.options.mapping
        if mapping_id in catalog:
            return []
        if catalog.known(mapping_id):
            return [(("mapping",), f"mapping {mapping_id} has errors (listed with its file)")]
        folder = self.app.resolve(self.app.engine.mappings_dir)
        known = ", ".join(sorted(catalog.files)) or "none"
        return [(("mapping",), f"mapping file not found: {folder / (mapping_id + '.yaml')} (known: {known})")]

    @property
    def mapping(self) -> CompiledMapping:
        if self._compiled is None:
            self._compiled = self.app.mapping_catalog().get(self.options.mapping)
        return self._compiled

    def apply(self, msg: Message) -> StepResult:
        mapping = self.mapping
        previous = msg.variables.get("mapped")
        if previous is not None:
            data = previous
        elif mapping.input.kind == "xml" and not msg.variables.get("changed"):
            data = msg.raw  # bytes, so that lxml honours the document's own encoding declaration
        else:
            data = msg.content
        result = mapping.run(data)  # MappingError is a MessageError: the channel stores and NAKs it
        content, kind = mapping.render(result)
        msg.content_type = _CONTENT_TYPES.get(kind, ContentType.TEXT)
        msg.set_content(content)
        msg.variables["mapped"] = result.output
        msg.warnings.extend(result.warnings)
        return CONTINUE
