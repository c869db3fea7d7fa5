"""Who may do what on a clinic's API: the permission matrix, as data.

Each clinic route names one (resource, action) in its `opt`; the `authorize` guard looks it
up here. A route without an entry is refused, so nothing is reachable by omission.
Ownership sits on top: for the roles in `OWN_ONLY`, a permission covers only the caller's own
records, and the service narrows its query or refuses with `only_own`: a patient, their own
profile and the appointments booked for them; a doctor steps (checks in, treats, marks as
no-show, cancels) only the appointments they are the practitioner of, where a clinic admin,
receptionist or nurse steps any. For the roles in `EMERGENCY_ONLY`, a permission holds only
for a patient whose chart the caller opened in an emergency, with a reason and for a limited
time (the chart's guard checks the grant).
"""

from __future__ import annotations

from polyclinic.identity.permissions.roles import ALL_ROLES, STAFF_ROLES, Role

PUBLIC = frozenset({"public"})


Permission = tuple[str, str]


A = Role.CLINIC_ADMIN


R, D, N, P = Role.RECEPTIONIST, Role.DOCTOR, Role.NURSE, Role.PATIENT


MATRIX: dict[Permission, frozenset[str]] = {
    ("clinic", "read"): PUBLIC,
    ("clinic", "manage"): frozenset({A}),
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
    ("billing", "read"): frozenset({A, Role.BILLING}),
    ("billing", "manage"): frozenset({A, Role.BILLING}),
    ("patients", "list"): STAFF_ROLES,
    ("patients", "read"): ALL_ROLES,
    # Reception and admins keep demographics and insurance; a patient their own contact
    # details (the service narrows which fields).
    ("patients", "register"): frozenset({A, R}),
    ("patients", "update"): frozenset({A, R, P}),
    ("patients", "merge"): frozenset({A, R}),
    ("patients", "invite"): frozenset({A, R}),
    ("practitioners", "read"): ALL_ROLES,
    ("practitioners", "manage"): frozenset({A}),
    ("services", "read"): ALL_ROLES,
    ("services", "manage"): frozenset({A}),
    ("availability", "read"): STAFF_ROLES,
    ("availability", "manage"): frozenset({A}),
    ("booking_policy", "read"): ALL_ROLES,
    ("booking_policy", "manage"): frozenset({A}),
    ("onboarding", "read"): frozenset({A}),
    ("locations", "read"): ALL_ROLES,
    ("locations", "manage"): frozenset({A}),
    ("slots", "read"): ALL_ROLES,
    ("appointments", "read"): ALL_ROLES,
    ("appointments", "book"): frozenset({A, R, D, N, P}),
    ("appointments", "reschedule"): frozenset({A, R, P}),
    ("appointments", "cancel"): frozenset({A, R, D, N, P}),
    ("appointments", "check_in"): frozenset({A, R, D, N}),
    ("appointments", "self_check_in"): PUBLIC,
    ("appointments", "treat"): frozenset({A, D, N}),
    ("appointments", "no_show"): frozenset({A, R, D, N}),
    ("payments", "read"): frozenset({A, Role.BILLING}),
    ("payments", "manage"): frozenset({A}),
    ("messaging", "read"): frozenset({A}),
    ("messaging", "manage"): frozenset({A}),
    # A patient's clinical content, and opening it in an emergency without the right to it.
    ("chart", "read"): frozenset({A, D, N, R, Role.BILLING, P}),
    ("chart", "emergency_access"): STAFF_ROLES,
    ("audit", "read"): frozenset({A}),
    ("audit", "read_own"): frozenset({P}),
}


# Permissions that, for these roles, reach only the caller's own records.
OWN_ONLY: dict[Permission, frozenset[str]] = {
    ("patients", "read"): frozenset({Role.PATIENT}),
    ("patients", "update"): frozenset({Role.PATIENT}),
    ("appointments", "read"): frozenset({Role.PATIENT}),
    ("appointments", "book"): frozenset({Role.PATIENT}),
    ("appointments", "reschedule"): frozenset({Role.PATIENT}),
    ("appointments", "cancel"): frozenset({Role.PATIENT, Role.DOCTOR}),
    ("appointments", "check_in"): frozenset({Role.DOCTOR}),
    ("appointments", "treat"): frozenset({Role.DOCTOR}),
    ("appointments", "no_show"): frozenset({Role.DOCTOR}),
    ("chart", "read"): frozenset({Role.PATIENT}),
}


# Permissions that, for these roles, hold only through a live emergency access grant.
EMERGENCY_ONLY: dict[Permission, frozenset[str]] = {
    ("chart", "read"): frozenset({Role.RECEPTIONIST, Role.BILLING}),
}


def only_by_emergency(permission: Permission, role: str) -> bool:
    return role in EMERGENCY_ONLY.get(permission, frozenset())


def only_own(permission: Permission, role: str) -> bool:
    return role in OWN_ONLY.get(permission, frozenset())


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
        own = OWN_ONLY.get((resource, action), frozenset())
        emergency = EMERGENCY_ONLY.get((resource, action), frozenset())
        cells = [
            "public"
            if who == PUBLIC
            else "own"
            if r in own
            else "emergency"
            if r in emergency
            else "yes"
            if r in who
            else ""
            for r in roles
        ]
        lines.append(f"| {resource} | {action} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
