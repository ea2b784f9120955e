"""The ``console:`` section of config.yaml: sessions, lockout, login throttling, API token lifetime."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ConsoleSettings"]


class ConsoleSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    session_minutes: int = Field(480, ge=1, description="a console session ends this long after login")
    lockout_attempts: int = Field(5, ge=1, description="wrong passwords in a row before the account locks")
    lockout_minutes: int = Field(15, ge=1, description="how long a locked account refuses every login")
    login_failures_per_minute: int = Field(
        20, ge=1, description="failed logins from one address in a minute before its logins get 429"
    )
    token_days: int = Field(
        90, ge=1, description="lifetime of an API token when hie users token has no --days"
    )
