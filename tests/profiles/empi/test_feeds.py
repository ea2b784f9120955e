"""Group commit of feeds: one refusal or one failure never takes the other feeds of its group down."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import Column, Connection, Integer, MetaData, String, Table, create_engine, select

from engine.errors import MessageError
from profiles.empi.feeds import FeedGroups

meta = MetaData()
rows = Table("t", meta, Column("id", Integer, primary_key=True), Column("v", String(10)))


def test_a_group_commits_once_and_a_refusal_or_a_failure_fails_alone(tmp_path: Path) -> None:
    db = create_engine(f"sqlite:///{tmp_path / 'g.db'}")
    meta.create_all(db)
    gate = threading.Event()
    groups = FeedGroups(db)

    def blocker(conn: Connection) -> str:
        gate.wait(5)  # holds the thread so that the next feeds queue up into one group
        conn.execute(rows.insert().values(id=1, v="first"))
        return "first"

    def insert(ident: int) -> object:
        def work(conn: Connection) -> int:
            conn.execute(rows.insert().values(id=ident, v="x"))
            return ident

        return work

    def refused(conn: Connection) -> None:
        raise MessageError("refused before writing", hl7_code="204")

    def broken(conn: Connection) -> None:
        conn.execute(rows.insert().values(id=2, v="duplicate"))  # id 2 is fed by the group too

    first = groups.submit(blocker)
    futures = [groups.submit(insert(2)), groups.submit(refused), groups.submit(insert(3))]
    gate.set()
    assert first.result(5) == "first"
    assert futures[0].result(5) == 2 and futures[2].result(5) == 3
    with pytest.raises(MessageError):
        futures[1].result(5)

    # a failing feed rolls its group back; the others are applied one by one and succeed
    second_gate = threading.Event()

    def hold(conn: Connection) -> int:
        second_gate.wait(5)
        conn.execute(rows.insert().values(id=10, v="hold"))
        return 10

    held = groups.submit(hold)
    later = [groups.submit(insert(4)), groups.submit(broken), groups.submit(insert(5))]
    second_gate.set()
    assert held.result(5) == 10
    assert later[0].result(5) == 4 and later[2].result(5) == 5
    with pytest.raises(Exception, match="UNIQUE"):
        later[1].result(5)
    with db.connect() as conn:
        assert sorted(r.id for r in conn.execute(select(rows.c.id))) == [1, 2, 3, 4, 5, 10]
    groups.close()
