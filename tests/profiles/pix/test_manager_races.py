"""Two engine processes feeding the same new person at once, on one PostgreSQL.

Each feed runs in its process's writer transaction. The second INSERT of the same national ID waits
for the first transaction, then fails on the unique key; the engine runs every inline feed in a
savepoint done once more when it raced (``savepoint_retrying``), so both hospitals' records end up
on one person instead of the second feed being refused. Two connections on two threads stand for
the two processes' writers.
"""

from __future__ import annotations

import asyncio
import threading

import pytest
from sqlalchemy import select

from engine.hl7v2.peek import Header
from engine.store.db import savepoint_retrying
from profiles.canonical import AdtEvent, HumanName, Identifier, Patient
from profiles.empi.actor import EmpiActor
from profiles.empi.schema import persons, records
from tests.profiles.conftest import NID_A, Pix

pytestmark = pytest.mark.postgres

HOSPITALS = {"HOSP_A": ("HIS_A", "1.2.156.112604.1.1"), "HOSP_B": ("HIS_B", "1.2.156.112605.1.1")}


def feed_of(facility: str, local: str) -> tuple[AdtEvent, Header]:
    app, oid = HOSPITALS[facility]
    header = Header(
        "|", "^", "~", "&", sending_application=app, sending_facility=facility, message_code="ADT",
        trigger_event="A01", control_id=local, version="2.5",
    )  # fmt: skip
    patient = Patient(
        identifiers=[Identifier(value=local, namespace=facility, system=oid)],
        national_id=NID_A,
        name=HumanName(text="欧阳明轩", family="欧阳", given="明轩"),
    )
    return AdtEvent(event="A01", message_type="ADT^A01", control_id=local, patient=patient), header


@pytest.mark.parametrize("store_url", ["postgres"], indirect=True)
async def test_two_writers_feeding_one_new_person_link_both_records_to_it(pix: Pix) -> None:
    services = pix.rt.services
    assert services is not None
    manager = EmpiActor.of(services).manager
    first = manager.prepare(*feed_of("HOSP_A", "A501"))
    second = manager.prepare(*feed_of("HOSP_B", "B501"))
    outcome: dict[str, object] = {}

    def other_writer() -> None:
        try:
            with services.db.begin() as conn:
                # as the engine runs a feed: in a savepoint, once more if it raced
                outcome["answer"] = savepoint_retrying(conn, lambda: manager.feed_in(conn, second, None))
        except Exception as exc:  # what the second process's writer would have got
            outcome["error"] = exc

    with services.db.begin() as conn:
        manager.feed_in(conn, first, None)  # the new person, not committed yet
        racer = threading.Thread(target=other_writer)
        racer.start()
        await asyncio.sleep(0.5)  # the other writer is now waiting on the national ID's unique key
        assert racer.is_alive()
    racer.join(10)
    assert "error" not in outcome, outcome.get("error")
    with services.db.connect() as conn:
        (person,) = conn.execute(select(persons.c.id).where(persons.c.national_id == NID_A)).scalars()
        linked = conn.execute(select(records.c.value, records.c.person_id).order_by(records.c.value)).all()
    assert [(v, p) for v, p in linked] == [("A501", person), ("B501", person)]
