"""The roles a clinic user can hold."""

from __future__ import annotations

import enum


class Role(enum.StrEnum):
    CLINIC_ADMIN = "clinic_admin"
    DOCTOR = "doctor"
    NURSE = "nurse"
    RECEPTIONIST = "receptionist"
    BILLING = "billing"
    PATIENT = "patient"


STAFF_ROLES = frozenset(Role) - {Role.PATIENT}
ALL_ROLES = frozenset(Role)
