"""XPath paths into XML inputs (HL7 V3 messages, CDA R2 documents), and the one safe way to parse them.

Why a module of its own: XML from a sender is hostile until parsed safely. ``parse_xml`` never
resolves entities, never reads the network and refuses any DOCTYPE outright: HL7 V3 (XML ITS) and
CDA R2 are defined by W3C XML Schema, so a DTD has no legitimate use in them and is only the vehicle
of external-entity (XXE, CWE-611) and entity-expansion ("billion laughs", CWE-776) attacks. The
encoding declaration is honoured because ``parse_xml`` takes bytes (Chinese HIS send GBK/GB2312;
XML 1.0 §4.3.3).

Paths are XPath 1.0, compiled once at load time with the mapping's ``namespaces:`` prefixes. XPath
1.0 has no default namespace (§2.3: an unprefixed name test means "no namespace"), so a mapping for
V3/CDA declares ``namespaces: {hl7: urn:hl7-org:v3}`` and writes ``hl7:recordTarget/...``.

What a path yields:

* an element: its text, stripped; None when empty (``<family>王</family>`` -> ``"王"``);
* an attribute or text node: its value, stripped; None when empty (``@extension=""`` is absent);
* ``string()``, ``count()``, ``boolean()``...: the XPath result as it is (str stripped, float, bool).

Whitespace around a value is never data in V3/CDA: their data types are XML Schema tokens.

One path, many matches: ``first`` is the value of the first match in document order (None when that
one is empty), as XPath's own ``string()`` takes a node-set (XPath 1.0 §4.2), so a path never skips
silently to some other element's value; ``values`` and ``count`` skip empty matches, and ``count``
lets a rule with ``one: true`` refuse a repeat. A path *iterates* (for ``each:``) when it ends with
``[*]``, as HL7 paths do (``PID.3[*]``): ``each: hl7:component/hl7:section[*]``. That trailing
``[*]`` is taken off before compiling (to test "has child elements" at the end of a path, write
``[child::*]``). Relative paths (``hl7:title``, ``./hl7:code/@code``) are evaluated from the scope
element, absolute ones (``/hl7:ClinicalDocument/...``) from its document.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from typing import Any

from lxml import etree

from engine.mapping.errors import DefinitionError, ValueRejected

__all__ = ["XmlPath", "compile_path", "parse_xml"]

_local = threading.local()


def _parser() -> Any:
    # One parser per thread, made once: a libxml2 parser context is not to be shared between
    # threads, and lxml frees the GIL while parsing only with a per-thread parser (lxml FAQ,
    # "Can I use threads..."). Comments and processing instructions are dropped: they are not data.
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = etree.XMLParser(
            resolve_entities=False,
            no_network=True,
            load_dtd=False,
            dtd_validation=False,
            attribute_defaults=False,
            huge_tree=False,
            remove_comments=True,
            remove_pis=True,
        )
        _local.parser = parser
    return parser


_NO_DTD = "XML with a DOCTYPE or entity declarations is refused (HL7 V3 and CDA use no DTD)"


def parse_xml(data: bytes) -> Any:
    """Parse ``data`` into its root element, safely; ``ValueRejected`` (HL7 0357 code 102) otherwise."""
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        if b"<!ENTITY" in data or b"<!DOCTYPE" in data:
            # libxml2 stops entity expansion bombs itself; say why in our words, not its.
            raise ValueRejected(_NO_DTD, hl7_code="102") from None
        line, column = exc.position
        reason = str(exc.msg).removesuffix(f", line {line}, column {column}")
        raise ValueRejected(
            f"the input is not well-formed XML: {reason} (line {line}, column {column})", hl7_code="102"
        ) from None
    if root.getroottree().docinfo.doctype:
        raise ValueRejected(_NO_DTD, hl7_code="102")
    return root


_STRINGS = re.compile(r"'[^']*'|\"[^\"]*\"")
# A QName prefix: a name directly followed by ':' and a name or '*' (not '::', an axis).
_PREFIX = re.compile(r"(?<![\w.\-:])([A-Za-z_][\w.\-]*):(?=[A-Za-z_*])")


def _text(node: Any) -> Any:
    """The value of one XPath result item (see the module docstring); None when empty."""
    if isinstance(node, str):
        node = node.strip()
        return node or None
    if isinstance(node, etree._Element):
        text = node.text
        if text is None:
            return None
        text = text.strip()
        return text or None
    return node  # float, bool


class XmlPath:
    """One compiled XPath; see the module docstring for what it yields."""

    __slots__ = ("_xpath", "iterates", "text")

    def __init__(self, text: str, xpath: Any, iterates: bool) -> None:
        self.text = text
        self.iterates = iterates
        self._xpath = xpath

    def _eval(self, scope: Any) -> Any:
        try:
            return self._xpath(scope)
        except etree.XPathError as exc:  # not raised by a path that passed compile_path's checks
            raise ValueRejected(f"XPath {self.text} failed: {exc}") from None

    def values(self, scope: Any) -> list[Any]:
        result = self._eval(scope)
        if isinstance(result, list):
            out = []
            for node in result:
                value = _text(node)
                if value is not None:
                    out.append(value)
            return out
        value = _text(result)
        return [] if value is None else [value]

    def first(self, scope: Any) -> Any:
        result = self._eval(scope)
        if isinstance(result, list):
            return _text(result[0]) if result else None
        return _text(result)

    def count(self, scope: Any) -> int:
        return len(self.values(scope))

    def scopes(self, scope: Any) -> list[Any]:
        """The matched elements (other matches, attributes or text, are not scopes)."""
        result = self._eval(scope)
        if not isinstance(result, list):
            return []
        return [node for node in result if isinstance(node, etree._Element)]

    def __repr__(self) -> str:
        return f"XmlPath({self.text!r})"


def compile_path(text: str, namespaces: Mapping[str, str]) -> XmlPath:
    """Compile an XPath once; ``DefinitionError`` for bad syntax, an unknown prefix or function."""
    expr = text.strip()
    iterates = expr.endswith("[*]")
    if iterates:
        expr = expr[:-3].rstrip()
    if not expr:
        raise DefinitionError(f"empty XPath {text!r}")
    for prefix in namespaces:
        if not prefix:
            raise DefinitionError(
                "XPath 1.0 has no default namespace: give the namespace a prefix "
                "(namespaces: {hl7: urn:hl7-org:v3}) and write hl7:name"
            )
    declared = sorted(namespaces)
    for m in _PREFIX.finditer(_STRINGS.sub("''", expr)):
        prefix = m.group(1)
        if prefix not in namespaces and prefix != "xml":  # xml: is bound by XML Namespaces §3
            known = ", ".join(declared) or "none"
            raise DefinitionError(
                f"XPath {text}: unknown namespace prefix {prefix!r}; declared in namespaces: {known}"
            )
    try:
        xpath = etree.XPath(expr, namespaces=dict(namespaces), smart_strings=False)
    except etree.XPathSyntaxError as exc:
        errors = list(exc.error_log)
        where = ""
        if errors and errors[-1].column:  # libxml2 counts from 0, from the start of expr
            where = f" at column {errors[-1].column + 1 + len(text) - len(text.lstrip())}"
        raise DefinitionError(f"XPath {text}: {exc}{where}") from None
    try:
        # libxml2 resolves functions and variables only when evaluating: try once on an empty
        # element so "unknown function" is a load-time error, not a message failure at night.
        xpath(etree.Element("probe"))
    except etree.XPathError as exc:
        raise DefinitionError(f"XPath {text}: {exc}") from None
    return XmlPath(text, xpath, iterates)
