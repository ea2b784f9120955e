"""The plugins' Alembic branches (EMPI, XDS, CDA uploads): the migrated schema is the one the code
declares, and a database made before empi_0002 answers the new PDQ parameters after the upgrade
(its records are backfilled)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, insert, select

from engine.store import schema as engine_schema
from engine.store.db import migrate, open_engine
from profiles.atna import schema as atna_schema
from profiles.cda import schema as cda_schema
from profiles.dicom import schema as dicom_schema
from profiles.empi import schema
from profiles.plugin import PLUGINS
from profiles.xds import schema as xds_schema

MIGRATIONS = [p.migrations for p in PLUGINS if p.migrations is not None]


def _not_text_index(name: str | None, kind: str, parent: object) -> bool:
    return not (kind == "table" and (name or "").startswith("message_text"))


def _differences(url: str) -> list[Any]:
    """What Alembic's autogenerate finds between the database and the tables the code declares."""
    declared = MetaData()
    tables = (
        engine_schema.metadata,
        schema.metadata,
        xds_schema.metadata,
        cda_schema.metadata,
        dicom_schema.metadata,
        atna_schema.metadata,
    )
    for table in (t for m in tables for t in m.tables.values()):
        table.to_metadata(declared)
    eng = open_engine(url)
    try:
        with eng.connect() as conn:
            # the free-text index is per dialect (FTS5 and its shadow tables; pg_trgm), made by its
            # migration and not declared in the metadata
            context = MigrationContext.configure(conn, opts={"include_name": _not_text_index})
            return list(compare_metadata(context, declared))
    finally:
        eng.dispose()


def test_migrations_create_the_declared_schema(store_url: str) -> None:
    eng = open_engine(store_url)
    migrate(eng, MIGRATIONS)
    eng.dispose()
    assert _differences(store_url) == []


def test_records_fed_before_empi_0002_are_backfilled(store_url: str) -> None:
    eng = open_engine(store_url)
    migrate(eng, MIGRATIONS, revision="empi_0001")
    now = dt.datetime(2026, 12, 3, tzinfo=dt.UTC)
    demographics = {
        "name": {"family": "周", "given": "一诺", "text": "周一诺"},
        "mother_maiden_name": {"family": "林", "given": "晓雯", "text": "林晓雯"},
        "addresses": [
            {"street": "学院路25号", "city": "杭州市", "province": "浙江省", "postal_code": "310012"}
        ],
        "account_number": {"value": "V8812", "namespace": "HOSP_C", "system": "1.2.156.112606.1.9"},
    }
    row = {
        "domain": "hosp-c",
        "person_id": 1,
        "status": "active",
        "national_id_valid": "",
        "created_at": now,
        "updated_at": now,
    }
    with eng.begin() as conn:
        old = MetaData()
        old.reflect(conn, only=["empi_records"])
        assert "street" not in old.tables["empi_records"].c
        table = old.tables["empi_records"]
        conn.execute(
            insert(table), [{**row, "id": 1, "value": "C1", "demographics": json.dumps(demographics)}]
        )
        conn.execute(insert(table), [{**row, "id": 2, "value": "C2", "demographics": "{}"}])
    migrate(eng, MIGRATIONS)
    r = schema.records
    with eng.connect() as conn:
        got = {x.value: x for x in conn.execute(select(r)).all()}
    eng.dispose()
    first = got["C1"]
    assert (first.street, first.province, first.postal_code, first.city) == (
        "学院路25号",
        "浙江省",
        "310012",
        None,
    )
    assert (first.account_number, first.account_namespace, first.account_oid) == (
        "V8812",
        "HOSP_C",
        "1.2.156.112606.1.9",
    )
    assert (first.mother_key, first.mother_pinyin) == ("林晓雯", "LINXIAOWEN")
    assert got["C2"].street is None and got["C2"].mother_key is None
