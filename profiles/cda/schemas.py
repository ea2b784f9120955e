"""The two schema layers a WS/T 500 document is validated against, compiled once per process (lxml).

1. ``xsd/cda-china/``: HL7 CDA R2 with the China extension WS/T 500 documents use (the stock schema
   rejects every one of them: ``patient/age``, ``patientRole/patientType``, ``addr/township``...).
   Derived here from the normative HL7 schema; the additions are marked ``hie:`` in the files and
   listed in ``xsd/SOURCES.md``.
2. ``xsd/china-hip/cdas/C00NN.xsd``: one schema per document type (Apache-2.0, an implementer's
   schemas for the interoperability assessment): required header elements, enumerations, date
   patterns. Where a document type has none, only the first layer applies.

Both are read with network access off; nothing is ever fetched.
"""

from __future__ import annotations

import re
import threading

from lxml import etree

from ihe._xsd import XSD_DIR

__all__ = ["china_cda", "document_schema"]

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True)
# A compiled schema keeps the errors of its last validation on itself, so each thread has its own
# (compiling one takes about 10 ms).
_LOCAL = threading.local()
_CODE = re.compile(r"C\d{4}")


def _compiled() -> dict[str, etree.XMLSchema | None]:
    found: dict[str, etree.XMLSchema | None] | None = getattr(_LOCAL, "schemas", None)
    if found is None:
        found = _LOCAL.schemas = {}
    return found


def china_cda() -> etree.XMLSchema:
    schemas = _compiled()
    schema = schemas.get("cda")
    if schema is None:
        path = XSD_DIR / "cda-china" / "infrastructure" / "cda" / "CDA.xsd"
        schema = schemas["cda"] = etree.XMLSchema(etree.parse(str(path), _PARSER))
    return schema


def document_schema(code: str) -> etree.XMLSchema | None:
    """The per-document schema of ``code`` (C0001-C0053), None when there is none."""
    if not _CODE.fullmatch(code):
        return None  # never a path built from what a document says
    schemas = _compiled()
    if code not in schemas:
        path = XSD_DIR / "china-hip" / "cdas" / f"{code}.xsd"
        schemas[code] = etree.XMLSchema(etree.parse(str(path), _PARSER)) if path.is_file() else None
    return schemas[code]
