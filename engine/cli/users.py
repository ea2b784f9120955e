"""``hie users``: console accounts and API tokens (engine/console/accounts.py).

A password is read from a prompt or from an environment variable (``--password-env``), never from the
command line, where ``ps`` and shell history would show it. Every change is audited under the OS user
(DICOM 110136 Security Roles Changed, 110137 User Security Attributes Changed).
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from engine import audit
from engine.cli.common import config_option, load_or_exit
from engine.cli.output import format_table, local_time
from engine.cli.store_access import cli_services, open_store
from engine.console import accounts
from engine.console.roles import ROLES

__all__ = ["users"]


@click.group()
def users() -> None:
    """Console accounts (admin, integrator, auditor, viewer) and their API tokens."""


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True, help="what the account may do")
@click.option("--password-env", metavar="VAR", help="read the password from this environment variable")
@config_option
def add(name: str, role: str, password_env: str | None, config_path: Path | None) -> None:
    """Create account NAME with ROLE; the password is prompted for (or read from --password-env)."""
    app = load_or_exit(config_path)
    password = _password(password_env)
    with open_store(app) as db, cli_services(app, db) as services:
        try:
            accounts.add_user(
                db, services.ids, username=name, password=password, role=role, actor=audit.cli_user()
            )
        except accounts.AccountError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"user {name} added, role {role}")


def _password(env: str | None) -> str:
    if env is not None:
        password = os.environ.get(env)
        if not password:
            raise click.ClickException(f"environment variable {env} is not set")
        return password
    return str(click.prompt("password", hide_input=True, confirmation_prompt=True))


@users.command("list")
@config_option
def list_(config_path: Path | None) -> None:
    """Every account: role, state, last login."""
    app = load_or_exit(config_path)
    with open_store(app) as db:
        rows = accounts.list_users(db)
    if not rows:
        click.echo("no users")
        return
    table = [
        [
            r["username"],
            r["role"],
            "disabled" if r["disabled"] else ("locked" if r["locked_until"] else "active"),
            local_time(r["last_login_at"]) or "never",
        ]
        for r in rows
    ]
    for line in format_table(("USER", "ROLE", "STATE", "LAST LOGIN"), table):
        click.echo(line)


@users.command("disable")
@click.argument("name")
@config_option
def disable(name: str, config_path: Path | None) -> None:
    """Disable account NAME: no more logins, its sessions end, its tokens stop working."""
    app = load_or_exit(config_path)
    with open_store(app) as db, cli_services(app, db) as services:
        try:
            accounts.disable_user(db, services.ids, username=name, actor=audit.cli_user())
        except accounts.AccountError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"user {name} disabled")


@users.command("token")
@click.argument("name")
@click.option(
    "--days", type=click.IntRange(1, 3650), help="valid this many days (default: console.token_days)"
)
@click.option("--label", default="", help="what the token is for")
@config_option
def token(name: str, days: int | None, label: str, config_path: Path | None) -> None:
    """A new API token for NAME, printed once (only its hash is kept)."""
    app = load_or_exit(config_path)
    days = days or app.console.token_days
    with open_store(app) as db, cli_services(app, db) as services:
        try:
            ident, secret = accounts.issue_token(
                db, services.ids, username=name, days=days, actor=audit.cli_user(), name=label
            )
        except accounts.AccountError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"token {ident} for {name}, valid {days} day(s); it is shown only now:", err=True)
    click.echo(secret)


@users.command("revoke")
@click.argument("token_id", type=int)
@config_option
def revoke(token_id: int, config_path: Path | None) -> None:
    """Revoke API token TOKEN_ID (the number hie users token printed)."""
    app = load_or_exit(config_path)
    with open_store(app) as db, cli_services(app, db) as services:
        try:
            owner = accounts.revoke_token(db, services.ids, token_id=token_id, actor=audit.cli_user())
        except accounts.AccountError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"token {token_id} of {owner} revoked")


@users.command("enable")
@click.argument("name")
@config_option
def enable(name: str, config_path: Path | None) -> None:
    """Enable account NAME again (also lifts a lockout); tokens not revoked work again."""
    app = load_or_exit(config_path)
    with open_store(app) as db, cli_services(app, db) as services:
        try:
            accounts.enable_user(db, services.ids, username=name, actor=audit.cli_user())
        except accounts.AccountError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"user {name} enabled")


@users.command("password")
@click.argument("name")
@click.option("--password-env", metavar="VAR", help="read the password from this environment variable")
@config_option
def password(name: str, password_env: str | None, config_path: Path | None) -> None:
    """Set a new password for NAME (prompted for, or read from --password-env); its sessions end."""
    app = load_or_exit(config_path)
    secret = _password(password_env)
    with open_store(app) as db, cli_services(app, db) as services:
        try:
            accounts.set_password(db, services.ids, username=name, password=secret, actor=audit.cli_user())
        except accounts.AccountError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"password of {name} changed; its console sessions ended")


@users.command("role")
@click.argument("name")
@click.argument("role", type=click.Choice(ROLES))
@config_option
def role(name: str, role: str, config_path: Path | None) -> None:
    """Give account NAME another ROLE; its sessions end."""
    app = load_or_exit(config_path)
    with open_store(app) as db, cli_services(app, db) as services:
        try:
            accounts.change_role(db, services.ids, username=name, role=role, actor=audit.cli_user())
        except accounts.AccountError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"user {name} now has role {role}; its console sessions ended")
