"""Roles and what each may do (issue 8): admin everything; integrator channels and reprocessing;
auditor read-only with the audit log; viewer statistics only, never a message body or patient data."""

from __future__ import annotations

from typing import Literal

__all__ = ["PERMISSIONS", "ROLES", "Permission", "Role", "roles_for"]

Role = Literal["admin", "integrator", "auditor", "viewer"]
ROLES: tuple[Role, ...] = ("admin", "integrator", "auditor", "viewer")

Permission = Literal["stats", "messages", "reprocess", "audit", "patients", "steward"]

PERMISSIONS: dict[Permission, frozenset[str]] = {
    "stats": frozenset(ROLES),
    "messages": frozenset({"admin", "integrator", "auditor"}),  # metadata and bodies
    "reprocess": frozenset({"admin", "integrator"}),
    "audit": frozenset({"admin", "auditor"}),
    # a plugin's patient data: EMPI records, XDS documents, CDA reports, DICOM studies
    "patients": frozenset({"admin", "integrator", "auditor"}),
    "steward": frozenset({"admin", "integrator"}),  # change it: link, unlink, merge, decide reviews
}


def roles_for(permission: Permission) -> list[str]:
    """The roles that have ``permission``, in ROLES order (for a 403's body)."""
    return [r for r in ROLES if r in PERMISSIONS[permission]]
