"""EMPI records: the parts of the address, the account number and the mother's maiden name

Revision ID: empi_0002
Revises: empi_0001
Create Date: 2026-12-03

PDQ (ITI-21) suppliers must support every component of PID.11 and PID.18 as query parameters, and
PID.6 with the Pediatric Demographics option; these columns hold them. Existing records get them
from their stored demographics (the canonical Patient JSON), so a database loaded before this
revision answers the new parameters too.
"""

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

from profiles.empi.matching import name_key, pinyin_key

revision = "empi_0002"
down_revision = "empi_0001"
branch_labels = None
depends_on = None

_COLUMNS = [
    ("street", 100),
    ("province", 50),
    ("postal_code", 20),
    ("country", 10),
    ("account_number", 100),
    ("account_namespace", 64),
    ("account_oid", 64),
    ("mother_key", 100),
    ("mother_pinyin", 200),
]
_INDEXES = [
    ("ix_empi_records_account", "account_number"),
    ("ix_empi_records_mother_key", "mother_key"),
    ("ix_empi_records_mother_pinyin", "mother_pinyin"),
]
_BATCH = 5000


def upgrade() -> None:
    with op.batch_alter_table("empi_records") as batch:
        for name, length in _COLUMNS:
            batch.add_column(sa.Column(name, sa.String(length=length), nullable=True))
    _backfill()
    for name, column in _INDEXES:  # partial: most records have none of these
        where = sa.text(f"{column} IS NOT NULL")
        op.create_index(
            name, "empi_records", [column], unique=False, sqlite_where=where, postgresql_where=where
        )


def downgrade() -> None:
    for name, _ in _INDEXES:
        op.drop_index(name, table_name="empi_records")
    with op.batch_alter_table("empi_records") as batch:
        for name, _ in _COLUMNS:
            batch.drop_column(name)


def _backfill() -> None:
    """Fill the new columns of records whose JSON has an address, an account or a mother's name."""
    conn = op.get_bind()
    table = sa.table(
        "empi_records", sa.column("id"), sa.column("demographics"), *(sa.column(n) for n, _ in _COLUMNS)
    )
    last = -(2**63)
    while True:
        rows = conn.execute(
            sa.select(table.c.id, table.c.demographics)
            .where(table.c.id > last)
            .order_by(table.c.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            return
        last = rows[-1].id
        changes = [c for c in (_columns(row.id, row.demographics) for row in rows) if c is not None]
        if changes:
            conn.execute(
                table.update().where(table.c.id == sa.bindparam("b_id")),
                changes,
            )


def _columns(record_id: int, text: str) -> dict[str, Any] | None:
    patient = json.loads(text)
    addresses = patient.get("addresses") or [{}]
    address = addresses[0]
    account = patient.get("account_number") or {}
    mother = patient.get("mother_maiden_name") or {}
    mother_name = mother.get("text") or f"{mother.get('family') or ''}{mother.get('given') or ''}"
    values = {
        "street": (address.get("street") or "")[:100] or None,
        "province": (address.get("province") or "")[:50] or None,
        "postal_code": (address.get("postal_code") or "")[:20] or None,
        "country": (address.get("country") or "")[:10] or None,
        "account_number": (account.get("value") or "")[:100] or None,
        "account_namespace": (account.get("namespace") or "")[:64] or None,
        "account_oid": (account.get("system") or "")[:64] or None,
        "mother_key": (name_key(mother_name) or "")[:100] or None,
        "mother_pinyin": (pinyin_key(mother_name) or "")[:200] or None,
    }
    if not any(values.values()):
        return None
    return {"b_id": record_id, **values}
