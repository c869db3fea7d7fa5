"""What a route serving patient data asks of the chart's audit trail, which lives above
identity and is injected by name (`audit`): may the caller open this patient's record, and
record that they read it."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from polyclinic.identity.permissions.matrix import Permission


@runtime_checkable
class PatientDataTrail(Protocol):
    async def open_chart(self, patient_id: uuid.UUID, permission: Permission) -> object:
        """The basis on which the caller may use `permission` on this patient's record, or
        the refusal (403, or 404 for a patient asking for someone else's record)."""
        ...

    async def read(
        self, resource: str, patient_id: uuid.UUID, *, access: object | None = None
    ) -> None:
        """Record that the caller read this, and commit: nothing is served unrecorded."""
        ...

    async def listed(self, resource: str, patient_ids: Sequence[uuid.UUID]) -> None:
        """Record one read per patient a listing showed, and commit."""
        ...
