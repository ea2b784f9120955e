"""The XDS registry's tests: a fresh registry (engine, EMPI and XDS tables) on SQLite and PostgreSQL,
and submissions made from the official ITI-42 example."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from lxml import etree
from sqlalchemy import Connection, Engine, func, select

from engine.store.db import migrate, open_engine
from ihe._ebxml import read_submission
from profiles.plugin import PLUGINS
from profiles.xds.registry import Registered, Registry

PATIENT = "SELF-5^^^&1.3.6.1.4.1.21367.2005.3.7&ISO"
KNOWN = {PATIENT: 4242}  # the EMPI's answer, for these tests: affinity-domain id -> person


@pytest.fixture
def db(store_url: str) -> Iterator[Engine]:
    eng = open_engine(store_url)
    migrate(eng, [p.migrations for p in PLUGINS if p.migrations is not None])
    yield eng
    eng.dispose()


_ids = itertools.count(1)
REGISTRY = Registry(lambda: next(_ids), lambda conn, cx: KNOWN.get(cx))


def register(db: Engine, text: str) -> Registered:
    submission, errors = read_submission(etree.fromstring(text.encode("utf-8")))
    assert errors == []
    with db.begin() as conn:
        return REGISTRY.register(conn, submission, None)


def count(conn: Connection, table: object) -> int:
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())  # type: ignore[arg-type]


def second_version(text: str, n: int, *, replaces: str | None = None) -> str:
    """The example as another submission: new uniqueIds; a new document replacing ``replaces``."""
    text = text.replace("9999.32", f"9999.32{n}").replace("9999.33", f"9999.33{n}")
    if replaces:
        text = text.replace(
            "</rim:RegistryObjectList>",
            f'<rim:Association id="rplc{n}" associationType="urn:ihe:iti:2007:AssociationType:RPLC" '
            f'sourceObject="Document01" targetObject="{replaces}"/></rim:RegistryObjectList>',
        )
    return text
