"""Who may do what on a clinic's API: the permission matrix, as data.

Each clinic route names one (resource, action) in its `opt`; the `authorize` guard looks it
up here. A route without an entry is refused, so nothing is reachable by omission.
Ownership rules (a patient reaches only their own records) sit on top, in the services.
"""

from __future__ import annotations

from polyclinic.identity.roles import ALL_ROLES, Role

PUBLIC = frozenset({"public"})
Permission = tuple[str, str]

A = Role.CLINIC_ADMIN

MATRIX: dict[Permission, frozenset[str]] = {
    ("clinic", "read"): PUBLIC,
    ("account", "register"): PUBLIC,
    ("account", "login"): PUBLIC,
    ("account", "accept_invitation"): PUBLIC,
    ("account", "recover"): PUBLIC,
    ("account", "read_own"): ALL_ROLES,
    ("account", "update_own"): ALL_ROLES,
    ("account", "mfa"): ALL_ROLES,
    ("sessions", "manage_own"): ALL_ROLES,
    ("staff", "list"): frozenset({A}),
    ("staff", "manage"): frozenset({A}),
    ("invitations", "manage"): frozenset({A}),
    ("auth_events", "read"): frozenset({A}),
}


def allowed(permission: Permission, role: str) -> bool:
    return role in MATRIX[permission]


def is_public(permission: Permission) -> bool:
    return MATRIX[permission] == PUBLIC


def as_markdown() -> str:
    """The matrix as a table, for the docs (`polyclinic identity permissions`)."""
    roles = [role.value for role in Role]
    lines = [
        "| resource | action | " + " | ".join(roles) + " |",
        "| --- | --- | " + " | ".join("---" for _ in roles) + " |",
    ]
    for (resource, action), who in MATRIX.items():
        cells = ["public" if who == PUBLIC else ("yes" if r in who else "") for r in roles]
        lines.append(f"| {resource} | {action} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
