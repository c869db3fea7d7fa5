"""Practitioners: staff with the doctor or nurse role, bookable once verified."""

from __future__ import annotations

import uuid
from typing import Any

from advanced_alchemy.filters import LimitOffset, OrderBy
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.billing.features import check_limit
from polyclinic.db.base import utcnow
from polyclinic.errors import Conflict, FieldError, InvalidInput, NotFound
from polyclinic.identity.accounts.models import User
from polyclinic.identity.permissions.roles import Role
from polyclinic.scheduling.setup.models import Practitioner

PRACTITIONER_ROLES = (Role.DOCTOR, Role.NURSE)


class PractitionerRepository(SQLAlchemyAsyncRepository[Practitioner]):
    model_type = Practitioner


class Practitioners:
    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID) -> None:
        self.db = session
        self.tenant_id = tenant_id
        self.repository = PractitionerRepository(session=session, auto_commit=False)

    async def list(
        self, *, verified_only: bool, limit: int, offset: int
    ) -> tuple[list[Practitioner], int]:
        filters: list[Any] = [LimitOffset(limit, offset), OrderBy("display_name", "asc")]
        if verified_only:
            filters += [Practitioner.verified_at.is_not(None), Practitioner.is_active.is_(True)]
        rows, total = await self.repository.get_many_and_count(*filters)
        return list(rows), total

    async def get(self, practitioner_id: uuid.UUID, *, lock: bool = False) -> Practitioner:
        practitioner = await self.db.get(Practitioner, practitioner_id, with_for_update=lock)
        if practitioner is None:
            raise NotFound("No practitioner with this id")
        return practitioner

    async def create(self, user_id: uuid.UUID, values: dict[str, Any]) -> Practitioner:
        user = await self.db.get(User, user_id)
        if user is None or not user.is_active or user.role not in PRACTITIONER_ROLES:
            raise InvalidInput(
                "A practitioner is an active staff member with the doctor or nurse role",
                [FieldError("userId", "is not an active doctor or nurse")],
            )
        if await self.repository.exists(user_id=user_id):
            raise Conflict("This staff member is already a practitioner")
        await self._check_seat()
        practitioner = Practitioner(
            id=uuid.uuid4(),
            user_id=user_id,
            display_name=values.get("display_name") or f"{user.first_name} {user.last_name}",
            specialty=values["specialty"],
            bio=values.get("bio") or "",
            is_active=True,
        )
        self.db.add(practitioner)
        try:
            await self.db.commit()
        except IntegrityError:  # the same person added by a concurrent request
            await self.db.rollback()
            raise Conflict("This staff member is already a practitioner") from None
        return practitioner

    async def update(self, practitioner_id: uuid.UUID, values: dict[str, Any]) -> Practitioner:
        practitioner = await self.get(practitioner_id)
        if values.get("is_active") and not practitioner.is_active:
            await self._check_seat()
        for name, value in values.items():
            setattr(practitioner, name, value)
        await self.db.commit()
        return practitioner

    async def _check_seat(self) -> None:
        async def active_practitioners() -> int:
            count = select(func.count()).where(Practitioner.is_active.is_(True))
            return int(await self.db.scalar(count) or 0)

        await check_limit(
            self.db, self.tenant_id, "max_practitioners", "practitioners", active_practitioners
        )

    async def verify(self, practitioner_id: uuid.UUID) -> Practitioner:
        practitioner = await self.get(practitioner_id)
        if practitioner.verified_at is not None:
            raise Conflict("This practitioner is already verified")
        practitioner.verified_at = utcnow()
        await self.db.commit()
        return practitioner
