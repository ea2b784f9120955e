"""``hie users``: accounts and tokens from the command line, each change audited; the password never an
argument. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

from click.testing import CliRunner, Result
from sqlalchemy import select

from engine.cli.main import main
from engine.config import AppConfig
from engine.console import accounts
from engine.console.settings import ConsoleSettings
from engine.ids import IdGenerator
from engine.store.db import open_engine
from engine.store.schema import audit_events


def test_users_add_list_token_revoke_disable(make_app: Callable[..., AppConfig], store_url: str) -> None:
    app = make_app({}, store_url=store_url)

    def hie(*args: str, **env: str) -> Result:
        return CliRunner().invoke(main, ["users", *args, "--config", str(app.path)], env=env)

    added = hie("add", "alice", "--role", "auditor", "--password-env", "ALICE_PW", ALICE_PW="s3cret-enough")
    assert added.exit_code == 0, added.output
    assert hie("add", "alice", "--role", "viewer", "--password-env", "PW", PW="another-one1").exit_code == 1
    assert "--password" not in hie("add", "--help").output.replace("--password-env", "")
    prompted = CliRunner().invoke(
        main,
        ["users", "add", "bob", "--role", "viewer", "--config", str(app.path)],
        input="long-password\nlong-password\n",
    )
    assert prompted.exit_code == 0, prompted.output
    bad_role = hie("add", "carol", "--role", "root", "--password-env", "PW", PW="whatever-pw")
    assert bad_role.exit_code == 2

    listed = hie("list").output.splitlines()
    assert listed[0].split() == ["USER", "ROLE", "STATE", "LAST", "LOGIN"]
    assert listed[1].split()[:3] == ["alice", "auditor", "active"]

    issued = CliRunner().invoke(main, ["users", "token", "alice", "--days", "2", "--config", str(app.path)])
    assert issued.exit_code == 0, issued.output
    token = issued.stdout.strip().splitlines()[-1]
    db = open_engine(app.store_url)
    try:
        who = accounts.from_token(db, token)
        assert who is not None and who.username == "alice" and who.role == "auditor"
        token_id = int(issued.stderr.split()[1])
        assert hie("revoke", str(token_id)).exit_code == 0
        assert accounts.from_token(db, token) is None
        assert hie("revoke", "999").exit_code == 1

        assert hie("disable", "bob").exit_code == 0
        assert "disabled" in hie("list").output
        with db.connect() as conn:
            rows = conn.execute(select(audit_events.c.event_id, audit_events.c.outcome_description)).all()
        changes = [(e.split("^")[0], d) for e, d in rows]
        assert ("110136", "created, role auditor") in changes
        assert ("110137", "disabled") in changes
        assert ("110137", f"API token {token_id} revoked") in changes
        assert not any("s3cret" in str(d) for _, d in rows)
    finally:
        db.dispose()


def test_users_enable_password_and_role(make_app: Callable[..., AppConfig], store_url: str) -> None:
    app = make_app({}, store_url=store_url)

    def hie(*args: str, **env: str) -> Result:
        return CliRunner().invoke(main, ["users", *args, "--config", str(app.path)], env=env)

    assert hie("add", "dora", "--role", "viewer", "--password-env", "PW", PW="first-password").exit_code == 0
    db = open_engine(app.store_url)
    try:
        ids, settings = IdGenerator(5), ConsoleSettings()

        def log_in(password: str) -> accounts.Principal | None:
            try:
                return accounts.login(db, ids, settings, username="dora", password=password, network="t")[0]
            except accounts.LoginRefused:
                return None

        session = accounts.login(db, ids, settings, username="dora", password="first-password", network="t")[
            1
        ]
        changed = hie("password", "dora", "--password-env", "PW", PW="second-password")
        assert changed.exit_code == 0, changed.output
        assert accounts.from_session(db, session) is None, "a new password ends the sessions"
        assert log_in("first-password") is None
        assert log_in("second-password") is not None
        assert hie("password", "dora", "--password-env", "PW", PW="short").exit_code == 1

        assert hie("role", "dora", "integrator").exit_code == 0
        who = log_in("second-password")
        assert who is not None and who.role == "integrator"
        assert hie("role", "dora", "root").exit_code == 2

        assert hie("disable", "dora").exit_code == 0
        assert log_in("second-password") is None
        assert hie("enable", "dora").exit_code == 0
        assert log_in("second-password") is not None
        assert hie("enable", "nobody").exit_code == 1
        with db.connect() as conn:
            rows = conn.execute(select(audit_events.c.event_id, audit_events.c.outcome_description)).all()
        changes = [(e.split("^")[0], d) for e, d in rows]
        assert ("110137", "password changed") in changes
        assert ("110136", "role integrator") in changes
        assert ("110137", "enabled") in changes
    finally:
        db.dispose()
