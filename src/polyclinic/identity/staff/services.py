"""A clinic admin manages staff: role changes, deactivation (sessions end at once)."""

from __future__ import annotations

import uuid

from advanced_alchemy.filters import LimitOffset, OrderBy
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.errors import Conflict, FieldError, InvalidInput, NotFound
from polyclinic.identity.accounts.models import User
from polyclinic.identity.permissions.roles import STAFF_ROLES, Role
from polyclinic.identity.sessions.services import Sessions
from polyclinic.identity.staff.invitations import check_staff_seat
from polyclinic.identity.trail import services as trail
from polyclinic.web.caller import Caller
from polyclinic.web.state import PlanLimits


class UserRepository(SQLAlchemyAsyncRepository[User]):
    model_type = User


class Staff:
    def __init__(self, session: AsyncSession, sessions: Sessions, plan_limits: PlanLimits) -> None:
        self.db = session
        self.sessions = sessions
        self.plan_limits = plan_limits

    async def list(self, *, limit: int, offset: int) -> tuple[list[User], int]:
        rows, total = await UserRepository(session=self.db).get_many_and_count(
            LimitOffset(limit, offset), OrderBy("created_at", "asc"), User.role != Role.PATIENT
        )
        return list(rows), total

    async def change_role(
        self, user_id: uuid.UUID, role: str, actor: uuid.UUID, caller: Caller
    ) -> User:
        if role not in STAFF_ROLES:
            raise InvalidInput(
                f"Staff roles are {', '.join(sorted(STAFF_ROLES))}",
                [FieldError("role", "is not a staff role")],
            )
        user = await self._staff_member(user_id)
        if user.role == Role.CLINIC_ADMIN and role != Role.CLINIC_ADMIN:
            await self._keep_an_admin(user)
        previous, user.role = user.role, role
        trail.record(
            self.db,
            caller,
            "role_changed",
            user_id=user.id,
            actor_id=actor,
            previous=previous,
            role=role,
        )
        await self.db.commit()
        return user

    async def set_active(
        self, user_id: uuid.UUID, active: bool, actor: uuid.UUID, caller: Caller
    ) -> User:
        user = await self._staff_member(user_id)
        if not active and user.role == Role.CLINIC_ADMIN:
            await self._keep_an_admin(user)
        if active and not user.is_active:
            await check_staff_seat(self.db, self.sessions.tenant.id, self.plan_limits)
        user.is_active = active
        ended = 0
        if not active:
            ended = await self.sessions.end_all(user.id, "deactivated")
        event = "staff_reactivated" if active else "staff_deactivated"
        trail.record(self.db, caller, event, user_id=user.id, actor_id=actor, ended_sessions=ended)
        await self.db.commit()
        return user

    async def _staff_member(self, user_id: uuid.UUID) -> User:
        user = await self.db.get(User, user_id, with_for_update=True)
        if user is None or user.role == Role.PATIENT:
            raise NotFound("No such staff member")
        return user

    async def _keep_an_admin(self, leaving: User) -> None:
        # Every active admin row is locked, so two admins removing each other at once
        # cannot both pass this check.
        admins = (
            (
                await self.db.execute(
                    select(User.id)
                    .where(User.role == Role.CLINIC_ADMIN, User.is_active.is_(True))
                    .with_for_update()
                )
            )
            .scalars()
            .all()
        )
        if not [admin for admin in admins if admin != leaving.id]:
            raise Conflict("The clinic must keep at least one active clinic admin")
