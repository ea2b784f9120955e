"""The vendored schemas of ``xsd/`` (see ``xsd/SOURCES.md``), compiled once per process with lxml.

lxml (libxml2) validates an XDS.b body in well under a millisecond, about 50 times faster than
xmlschema, so it is what runs on every request; compiling takes longer, so each schema is compiled
the first time it is needed and kept. Nothing is fetched from the network: ``xsd/xds-b.xsd``
imports the local ``xml.xsd`` before the ebRS schemas that name it by URL.
"""

from __future__ import annotations

import functools
from pathlib import Path

from lxml import etree

__all__ = ["XSD_DIR", "schema_errors", "xds_schema"]

XSD_DIR = Path(__file__).resolve().parents[1] / "xsd"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True)


@functools.cache
def xds_schema() -> etree.XMLSchema:
    """ebRIM/ebRS 3.0 and the XDS.b repository schema: every ITI-18/41/42/43 body."""
    return etree.XMLSchema(etree.parse(str(XSD_DIR / "xds-b.xsd"), _PARSER))


def schema_errors(schema: etree.XMLSchema, element: etree._Element, *, limit: int = 10) -> list[str]:
    """Why ``element`` is not valid (``line N: message``), at most ``limit``; empty when it is."""
    if schema.validate(element):
        return []
    return [f"line {e.line}: {e.message}" for e in list(schema.error_log)[:limit]]
