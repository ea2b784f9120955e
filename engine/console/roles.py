"""Roles and what each may do (issue 8): admin everything; integrator channels and reprocessing;
auditor read-only with the audit log; viewer statistics only, never a message body."""

from __future__ import annotations

from typing import Literal

__all__ = ["PERMISSIONS", "ROLES", "Permission", "Role", "roles_for"]

Role = Literal["admin", "integrator", "auditor", "viewer"]
ROLES: tuple[Role, ...] = ("admin", "integrator", "auditor", "viewer")

Permission = Literal["stats", "messages", "reprocess", "audit"]

PERMISSIONS: dict[Permission, frozenset[str]] = {
    "stats": frozenset(ROLES),
    "messages": frozenset({"admin", "integrator", "auditor"}),  # metadata and bodies
    "reprocess": frozenset({"admin", "integrator"}),
    "audit": frozenset({"admin", "auditor"}),
}


def roles_for(permission: Permission) -> list[str]:
    """The roles that have ``permission``, in ROLES order (for a 403's body)."""
    return [r for r in ROLES if r in PERMISSIONS[permission]]
