"""Console accounts: users, API tokens and sessions; lockout after repeated wrong passwords.

Every change, and every login attempt, writes its audit record (``engine.console.events``) in the same
transaction as the change, so the account tables and the audit trail never disagree. Tokens and
session ids are random (``secrets``, 256 bits); only their SHA-256 is stored.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, CursorResult, Engine, insert, select, update

from engine.audit import AuditEvent
from engine.console import events
from engine.console.passwords import hash_password, verify_password
from engine.console.roles import ROLES
from engine.console.settings import ConsoleSettings
from engine.console.tables import sessions, tokens, users
from engine.ids import IdGenerator
from engine.store.db import utcnow
from engine.store.schema import audit_events

__all__ = [
    "AccountError",
    "LoginRefused",
    "Principal",
    "add_user",
    "change_role",
    "csrf_matches",
    "disable_user",
    "enable_user",
    "from_session",
    "from_token",
    "issue_token",
    "list_users",
    "login",
    "logout",
    "revoke_token",
    "set_password",
]

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")
TOKEN_PREFIX = "hie_"
# last_used_at is written at most this often per token: not one UPDATE per API call
_TOUCH_EVERY = timedelta(minutes=1)


class AccountError(Exception):
    """An account operation that cannot be done (unknown user, name taken, bad role)."""


class LoginRefused(Exception):
    """A login refused; ``reason`` is for the audit trail, the client only learns that it failed."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user, through an API token or a console session."""

    user_id: int
    username: str
    role: str
    via: str  # "token" | "session"
    csrf: str | None = None  # the session's CSRF token


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@functools.cache
def _dummy_hash() -> str:
    """A hash to check an unknown user's password against, so the answer takes as long as a known
    user's (no telling which names exist); made on first use, not on every ``hie`` start."""
    return hash_password(secrets.token_urlsafe(16))


def _new_id(result: CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    assert key is not None, "an INSERT of one row"
    return int(key[0])


def _audit(conn: Connection, ids: IdGenerator, event: AuditEvent) -> None:
    conn.execute(insert(audit_events), [event.row(ids.next())])


def _user(conn: Connection, username: str, *, lock: bool = False) -> Any:
    query = select(users).where(users.c.username == username)
    if lock:
        query = query.with_for_update()
    return conn.execute(query).first()


def add_user(db: Engine, ids: IdGenerator, *, username: str, password: str, role: str, actor: str) -> int:
    if not USERNAME.match(username):
        raise AccountError(f"bad user name {username!r}: letters, digits and . _ @ -, at most 100")
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r} (known: {', '.join(ROLES)})")
    if len(password) < 8:
        raise AccountError("the password must have at least 8 characters")
    hashed = hash_password(password)
    with db.begin() as conn:
        if _user(conn, username) is not None:
            raise AccountError(f"user {username} exists already")
        now = utcnow()
        result = conn.execute(
            insert(users).values(
                username=username,
                password_hash=hashed,
                role=role,
                disabled=False,
                failed_attempts=0,
                created_at=now,
            )
        )
        _audit(
            conn,
            ids,
            events.account_event(
                events.ROLES_CHANGED, "C", actor=actor, account=username, description=f"created, role {role}"
            ),
        )
        return _new_id(result)


def list_users(db: Engine) -> list[dict[str, Any]]:
    cols = [c for c in users.c if c.name != "password_hash"]
    with db.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(*cols).order_by(users.c.username))]


def disable_user(db: Engine, ids: IdGenerator, *, username: str, actor: str) -> None:
    """The account can no longer log in; its sessions end and its tokens stop working."""
    with db.begin() as conn:
        row = _user(conn, username, lock=True)
        if row is None:
            raise AccountError(f"no user {username}")
        conn.execute(update(users).where(users.c.id == row.id).values(disabled=True))
        conn.execute(sessions.delete().where(sessions.c.user_id == row.id))
        _audit(
            conn,
            ids,
            events.account_event(
                events.USER_ATTRIBUTES_CHANGED, "U", actor=actor, account=username, description="disabled"
            ),
        )


def _change(
    db: Engine, ids: IdGenerator, username: str, actor: str, event: tuple[str, str, str], description: str,
    values: dict[str, Any], *, end_sessions: bool,
) -> None:  # fmt: skip
    with db.begin() as conn:
        row = _user(conn, username, lock=True)
        if row is None:
            raise AccountError(f"no user {username}")
        conn.execute(update(users).where(users.c.id == row.id).values(**values))
        if end_sessions:
            conn.execute(sessions.delete().where(sessions.c.user_id == row.id))
        _audit(
            conn,
            ids,
            events.account_event(event, "U", actor=actor, account=username, description=description),
        )


def enable_user(db: Engine, ids: IdGenerator, *, username: str, actor: str) -> None:
    """A disabled or locked account may log in again (its tokens work again unless revoked)."""
    values = {"disabled": False, "failed_attempts": 0, "locked_until": None}
    _change(db, ids, username, actor, events.USER_ATTRIBUTES_CHANGED, "enabled", values, end_sessions=False)


def set_password(db: Engine, ids: IdGenerator, *, username: str, password: str, actor: str) -> None:
    """A new password; the account's sessions end (its API tokens are not passwords and stay)."""
    if len(password) < 8:
        raise AccountError("the password must have at least 8 characters")
    values = {"password_hash": hash_password(password), "failed_attempts": 0, "locked_until": None}
    _change(
        db,
        ids,
        username,
        actor,
        events.USER_ATTRIBUTES_CHANGED,
        "password changed",
        values,
        end_sessions=True,
    )


def change_role(db: Engine, ids: IdGenerator, *, username: str, role: str, actor: str) -> None:
    """A new role; the account's sessions end so that no page keeps the old role's view."""
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r} (known: {', '.join(ROLES)})")
    _change(db, ids, username, actor, events.ROLES_CHANGED, f"role {role}", {"role": role}, end_sessions=True)


def issue_token(
    db: Engine, ids: IdGenerator, *, username: str, days: int, actor: str, name: str = ""
) -> tuple[int, str]:
    """A new API token for ``username``: (its id, the token). The token is shown once, never stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    with db.begin() as conn:
        row = _user(conn, username)
        if row is None:
            raise AccountError(f"no user {username}")
        result = conn.execute(
            insert(tokens).values(
                token_hash=digest(token),
                name=name,
                user_id=row.id,
                created_at=now,
                expires_at=now + timedelta(days=days),
                revoked=False,
            )
        )
        token_id = _new_id(result)
        _audit(
            conn,
            ids,
            events.account_event(
                events.USER_ATTRIBUTES_CHANGED,
                "C",
                actor=actor,
                account=username,
                description=f"API token {token_id} issued, valid {days} day(s)",
            ),
        )
    return token_id, token


def revoke_token(db: Engine, ids: IdGenerator, *, token_id: int, actor: str) -> str:
    """Revoke a token; returns the name of its user."""
    with db.begin() as conn:
        row = conn.execute(
            select(tokens.c.id, users.c.username)
            .join(users, users.c.id == tokens.c.user_id)
            .where(tokens.c.id == token_id)
        ).first()
        if row is None:
            raise AccountError(f"no token {token_id}")
        conn.execute(update(tokens).where(tokens.c.id == token_id).values(revoked=True))
        _audit(
            conn,
            ids,
            events.account_event(
                events.USER_ATTRIBUTES_CHANGED,
                "D",
                actor=actor,
                account=row.username,
                description=f"API token {token_id} revoked",
            ),
        )
        return str(row.username)


def login(
    db: Engine,
    ids: IdGenerator,
    settings: ConsoleSettings,
    *,
    username: str,
    password: str,
    network: str,
) -> tuple[Principal, str]:
    """Check the password and open a session: (the principal with its CSRF token, the session id).

    Raises ``LoginRefused``. ``settings.lockout_attempts`` wrong passwords in a row lock the account for
    ``settings.lockout_minutes``; while locked even the right password is refused.
    """
    now = utcnow()
    with db.begin() as conn:
        row = _user(conn, username, lock=True) if USERNAME.match(username) else None
        reason: str | None = None
        if row is None:
            verify_password(password, _dummy_hash())
            reason = "unknown user"
        elif row.disabled:
            reason = "account disabled"
        elif row.locked_until is not None and row.locked_until > now:
            reason = "account locked"
        elif not verify_password(password, row.password_hash):
            failed = (0 if row.locked_until is not None else row.failed_attempts) + 1
            locked: datetime | None = None
            if failed >= settings.lockout_attempts:
                locked, failed = now + timedelta(minutes=settings.lockout_minutes), 0
            conn.execute(
                update(users).where(users.c.id == row.id).values(failed_attempts=failed, locked_until=locked)
            )
            reason = "wrong password" + (
                f"; account locked for {settings.lockout_minutes} minute(s)" if locked else ""
            )
        if reason is not None:
            event = events.authentication_event(username[:100], ok=False, network=network, description=reason)
            _audit(conn, ids, event)
            refused: LoginRefused | None = LoginRefused(reason)
        else:
            assert row is not None
            refused = None
            conn.execute(
                update(users)
                .where(users.c.id == row.id)
                .values(failed_attempts=0, locked_until=None, last_login_at=now)
            )
            session, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
            conn.execute(
                insert(sessions).values(
                    id_hash=digest(session),
                    user_id=row.id,
                    csrf=csrf,
                    client=network[:200],
                    created_at=now,
                    expires_at=now + timedelta(minutes=settings.session_minutes),
                )
            )
            conn.execute(sessions.delete().where(sessions.c.expires_at < now))  # the table stays small
            _audit(conn, ids, events.authentication_event(username, ok=True, network=network))
    if refused is not None:
        raise refused
    assert row is not None
    return Principal(row.id, row.username, row.role, "session", csrf), session


def logout(db: Engine, ids: IdGenerator, principal: Principal, session: str, *, network: str) -> None:
    with db.begin() as conn:
        conn.execute(sessions.delete().where(sessions.c.id_hash == digest(session)))
        _audit(
            conn,
            ids,
            events.authentication_event(principal.username, ok=True, network=network, logout=True),
        )


def from_token(db: Engine, token: str) -> Principal | None:
    """The user of a valid API token: not revoked, not expired, its user not disabled."""
    now = utcnow()
    with db.connect() as conn:
        row = conn.execute(
            select(
                tokens.c.id,
                tokens.c.expires_at,
                tokens.c.last_used_at,
                users.c.id.label("uid"),
                users.c.username,
                users.c.role,
            )
            .join(users, users.c.id == tokens.c.user_id)
            .where(
                tokens.c.token_hash == digest(token), tokens.c.revoked.is_(False), users.c.disabled.is_(False)
            )
        ).first()
    if row is None or (row.expires_at is not None and row.expires_at <= now):
        return None
    if row.last_used_at is None or now - row.last_used_at > _TOUCH_EVERY:
        with db.begin() as conn:
            conn.execute(update(tokens).where(tokens.c.id == row.id).values(last_used_at=now))
    return Principal(row.uid, row.username, row.role, "token")


def from_session(db: Engine, session: str) -> Principal | None:
    """The user of a live session (not expired, its user not disabled), with the session's CSRF token."""
    with db.connect() as conn:
        row = conn.execute(
            select(sessions.c.csrf, users.c.id, users.c.username, users.c.role)
            .join(users, users.c.id == sessions.c.user_id)
            .where(
                sessions.c.id_hash == digest(session),
                sessions.c.expires_at > utcnow(),
                users.c.disabled.is_(False),
            )
        ).first()
    if row is None:
        return None
    return Principal(row.id, row.username, row.role, "session", row.csrf)


def csrf_matches(principal: Principal, sent: str | None) -> bool:
    return principal.csrf is not None and sent is not None and hmac.compare_digest(principal.csrf, sent)
