"""May this caller see this patient's clinical content? By role (the permission matrix),
for a patient their own chart only, or, for staff whose role does not open charts, through
a live emergency access grant ("break the glass") they opened with a reason.

Chart routes declare a permission the emergency-only roles pass (`EMERGENCY_ONLY` in the
matrix) and call `chart_access` with the patient; the answer says on what basis the chart
is open, and the trail flags what is read under an emergency grant.
"""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.chart.audit.models import EmergencyGrant
from polyclinic.chart.audit.services import Action, Actor, Event, record
from polyclinic.db.base import utcnow
from polyclinic.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound
from polyclinic.identity.accounts.models import User
from polyclinic.identity.permissions.guards import Principal
from polyclinic.identity.permissions.matrix import (
    Permission,
    allowed,
    only_by_emergency,
    only_own,
)
from polyclinic.identity.permissions.roles import Role

CHART_READ: Permission = ("chart", "read")
REASON_MIN_LENGTH = 15
NO_SUCH_PATIENT = "No such patient"


@dataclass(frozen=True)
class ChartAccess:
    patient_id: uuid.UUID
    basis: Literal["role", "own", "emergency"]
    grant: EmergencyGrant | None = None

    @property
    def emergency(self) -> bool:
        return self.basis == "emergency"

    @property
    def reason(self) -> str | None:
        return self.grant.reason if self.grant is not None else None


def own_patient_id(principal: Principal) -> uuid.UUID | None:
    """The patient record a signed-in patient is (today a patient's account is their record)."""
    return principal.user_id if principal.role == Role.PATIENT else None


async def patient_exists(session: AsyncSession, patient_id: uuid.UUID) -> bool:
    role = await session.scalar(select(User.role).where(User.id == patient_id))
    return role == Role.PATIENT


async def live_grant(
    session: AsyncSession,
    user_id: uuid.UUID,
    patient_id: uuid.UUID,
    now: datetime.datetime | None = None,
) -> EmergencyGrant | None:
    return await session.scalar(
        select(EmergencyGrant)
        .where(
            EmergencyGrant.user_id == user_id,
            EmergencyGrant.patient_id == patient_id,
            EmergencyGrant.expires_at > (now or utcnow()),
        )
        .order_by(EmergencyGrant.expires_at.desc())
        .limit(1)
    )


async def chart_access(
    session: AsyncSession,
    principal: Principal,
    patient_id: uuid.UUID,
    permission: Permission = CHART_READ,
) -> ChartAccess:
    """The basis on which `principal` may use `permission` on this patient's chart, or the
    refusal: 403 for a role without it (with how to open it in an emergency), 404 for a
    patient asking for someone else's record (whose existence is not revealed)."""
    if not allowed(permission, principal.role):
        raise Forbidden("Your role does not allow this")
    if only_own(permission, principal.role):
        if patient_id != own_patient_id(principal):
            raise NotFound(NO_SUCH_PATIENT)
        return ChartAccess(patient_id, "own")
    if only_by_emergency(permission, principal.role):
        grant = await live_grant(session, principal.user_id, patient_id)
        if grant is None:
            raise Forbidden(
                "Your role does not open patients' charts. In an emergency, open this one "
                f"with a reason: POST /api/v1/patients/{patient_id}/emergency-access"
            )
        return ChartAccess(patient_id, "emergency", grant)
    return ChartAccess(patient_id, "role")


async def open_in_emergency(
    session: AsyncSession,
    principal: Principal,
    actor: Actor,
    patient_id: uuid.UUID,
    reason: str,
    minutes: int,
) -> EmergencyGrant:
    """Give a staff member whose role does not open charts this patient's chart for
    `minutes`, recorded in the trail with the reason; committed."""
    reason = reason.strip()
    if len(reason) < REASON_MIN_LENGTH:
        raise InvalidInput(
            "Say why the chart must be opened",
            [FieldError("reason", f"must be at least {REASON_MIN_LENGTH} characters")],
        )
    if not only_by_emergency(CHART_READ, principal.role):
        raise Conflict("Your role already opens patients' charts; no emergency access is needed")
    if not await patient_exists(session, patient_id):
        raise NotFound(NO_SUCH_PATIENT)
    now = utcnow()
    grant = EmergencyGrant(
        id=uuid.uuid4(),
        user_id=principal.user_id,
        patient_id=patient_id,
        reason=reason,
        granted_at=now,
        expires_at=now + datetime.timedelta(minutes=minutes),
    )
    session.add(grant)
    event = Event(
        Action.EMERGENCY_ACCESS, "chart", patient_id, grant.id, emergency=True, reason=reason
    )
    await record(session, actor, event)
    await session.commit()
    return grant
