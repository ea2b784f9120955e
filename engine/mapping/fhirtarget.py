"""FHIR resources as mapping outputs (``output: fhir:Patient``): the resource classes, the load-time
check of target paths, and the validation of what the rules wrote.

Which FHIR: the platform speaks FHIR R4, but fhir.resources 8 ships R5 (its default package), R4B
(4.3.0) and STU3, and no R4 (4.0.1). R4B is used: HL7 made R4B a limited release that keeps every
resource outside medication regulation, evidence-based medicine and subscriptions unchanged from R4
("Implementers that do not use the specific portions where changes have been made can continue to
use either R4 or R4B without any functional difference", FHIR R4B, r4b-explanation.html). The
resources that R4B added, and that an R4 server would not know, are refused here (``_R4B_ONLY``).

``check_target`` walks the pydantic models of fhir.resources so that ``hie check`` says
"Patient has no field 'birthdate' (did you mean 'birthDate'?)" instead of a message failing at run
time; ``build`` validates the dict the rules wrote, once per message.
"""

from __future__ import annotations

import difflib
import importlib
import typing
from functools import lru_cache
from typing import Any

from fhir_core.types import FhirBase
from pydantic import BaseModel, ValidationError

from engine.mapping.errors import DefinitionError, ValueRejected
from engine.mapping.types import unwrap

__all__ = ["FHIR_PACKAGE", "FHIR_VERSION", "build", "check_target", "resource_class"]

FHIR_PACKAGE = "fhir.resources.R4B"
FHIR_VERSION = "4.3.0"

_package = importlib.import_module(FHIR_PACKAGE)
_fhirtypes = importlib.import_module(f"{FHIR_PACKAGE}.fhirtypes")
_Resource: type[BaseModel] = importlib.import_module(f"{FHIR_PACKAGE}.resource").Resource

# New in R4B, absent from R4 (FHIR R4B version history, release 4.3.0).
_R4B_ONLY = frozenset(
    {
        "AdministrableProductDefinition",
        "Citation",
        "ClinicalUseDefinition",
        "EvidenceReport",
        "Ingredient",
        "ManufacturedItemDefinition",
        "MedicinalProductDefinition",
        "NutritionProduct",
        "PackagedProductDefinition",
        "RegulatedAuthorization",
        "SubscriptionStatus",
        "SubscriptionTopic",
        "SubstanceDefinition",
    }
)


@lru_cache(maxsize=1)
def _type_names() -> tuple[str, ...]:
    """Every model name fhir.resources declares (resources, data types, backbone elements)."""
    return tuple(n.removesuffix("Type") for n in dir(_fhirtypes) if n.endswith("Type") and n[0].isupper())


def _resource_names(name: str) -> list[str]:
    """Resource names that look like ``name`` (a data type or backbone element is no suggestion)."""
    pool = [n for n in _type_names() if n not in _R4B_ONLY]
    near = _close(name, pool) + difflib.get_close_matches(name, pool, n=12, cutoff=0.6)
    out: list[str] = []
    for n in near:
        cls = _model(n)
        if n not in out and cls is not None and issubclass(cls, _Resource):
            out.append(n)
    return out


def _model(name: str) -> type[BaseModel] | None:
    try:
        cls: type[BaseModel] = _package.get_fhir_model_class(name)
    except (ValueError, AttributeError):
        return None
    return cls


def _close(name: str, candidates: typing.Iterable[str]) -> list[str]:
    pool = list(candidates)
    same_case = [c for c in pool if c.lower() == name.lower()]
    return same_case or difflib.get_close_matches(name, pool, n=3, cutoff=0.6)


def resource_class(name: str) -> type[BaseModel]:
    """The fhir.resources (R4B) model of one R4 resource; ``DefinitionError`` for anything else."""
    if name in _R4B_ONLY:
        raise DefinitionError(f"{name} is new in FHIR R4B and does not exist in R4")
    cls = _model(name)
    if cls is None or not issubclass(cls, _Resource):
        what = "a FHIR data type, not a resource" if cls is not None else "not a FHIR R4 resource"
        near = [n for n in _close(name, _resource_names(name)) if n != name]
        hint = f" (did you mean {' or '.join(near)}?)" if near else ""
        raise DefinitionError(f"{name} is {what}{hint}")
    return cls


def _field(model: type[BaseModel], key: str) -> Any | None:
    """The annotation of a field named by its FHIR JSON name (the alias) or its Python name."""
    field = model.model_fields.get(key)
    if field is None:
        for f in model.model_fields.values():
            if f.alias == key:
                field = f
                break
    return None if field is None else field.annotation


def _element(t: Any) -> Any:
    """A fhir.resources type marker (``HumanNameType``) -> its model class; primitives unchanged."""
    t = unwrap(t)
    if isinstance(t, type) and issubclass(t, FhirBase):
        return t.get_model_klass()
    return t


def _split(dotted: str) -> list[tuple[str, bool]]:
    """``name[*].given[*]`` -> [("name", True), ("given", True)]."""
    steps: list[tuple[str, bool]] = []
    for part in dotted.removeprefix(".").split("."):
        key, star = (part[:-3], True) if part.endswith("[*]") else (part, False)
        if not key or not key.replace("_", "a").isalnum():
            raise DefinitionError(
                f"bad FHIR target {dotted!r}: {part!r} is not a field name (write a.b[*].c)"
            )
        steps.append((key, star))
    return steps


def check_target(resource: str, dotted: str) -> Any:
    """Check that ``dotted`` (``name[*].family``) names an element of ``resource``; return its type.

    The type is what the leaf takes: ``str``, ``datetime.date``, ``bool``, ``decimal.Decimal``... or
    a model class for a complex element (``HumanName``); a list element without ``[*]`` gives
    ``list[item]``, with ``[*]`` the item type.
    """
    t: Any = resource_class(resource)
    walked = resource
    steps = _split(dotted)
    for i, (key, star) in enumerate(steps):
        model = t
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            kind = getattr(model, "__name__", str(model))
            raise DefinitionError(f"{walked} is a primitive ({kind}): it has no field {key!r}")
        annotation = _field(model, key)
        if annotation is None:
            where = walked if walked == resource else f"{walked} ({model.__name__})"
            names = [f.alias or n for n, f in model.model_fields.items() if n != "fhir_comments"]
            if not key.startswith("_"):  # _family holds the extensions of family: no suggestion
                names = [n for n in names if not n.startswith("_")]
            near = _close(key, names)
            hint = f" (did you mean {' or '.join(repr(n) for n in near)}?)" if near else ""
            raise DefinitionError(f"{where} has no field {key!r}{hint}")
        walked = f"{walked}.{key}"
        t = unwrap(annotation)
        is_list = typing.get_origin(t) is list
        item = _element(typing.get_args(t)[0]) if is_list else _element(t)
        last = i == len(steps) - 1
        if star and not is_list:
            raise DefinitionError(f"{walked} is not a list: drop the [*]")
        if is_list and not star:
            if not last:
                raise DefinitionError(f"{walked} is a list: write {key}[*]")
            return list[item]  # type: ignore[valid-type]
        if star:
            walked += "[*]"
        t = item
    return t


def _where(loc: tuple[int | str, ...]) -> str:
    """pydantic's ('name', 0, 'family') -> 'name[1].family' (1-based, as the mapping paths)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part + 1}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def build(resource: str, data: dict[str, Any]) -> BaseModel:
    """Validate what the rules wrote into the resource; ``ValueRejected`` naming the fields otherwise."""
    cls = resource_class(resource)
    if data.get("resourceType") is None:
        data = {"resourceType": resource, **data}
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        reasons = "; ".join(f"{_where(e['loc']) or resource}: {e['msg']}" for e in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        first = errors[0]
        value = first.get("input") if isinstance(first.get("input"), (str, int, float)) else None
        code = "101" if first["type"] == "missing" else "102"  # HL7 table 0357
        raise ValueRejected(f"not a valid FHIR {resource}: {reasons}{more}", value, hl7_code=code) from None
