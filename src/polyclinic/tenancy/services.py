"""The clinic registry as super-admins see it: list, read, suspend, reactivate, delete.

Deleting runs the domains' `deleted` lifecycle hooks, in their order, once the deletion is
committed (the subscription ends, for one); a failing hook is logged and undoes nothing."""

from __future__ import annotations

import uuid

from advanced_alchemy.filters import LimitOffset, OrderBy
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import ColumnElement, true, update
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.db.base import utcnow
from polyclinic.errors import Conflict, NotFound
from polyclinic.tenancy.lifecycle import ClinicLifecycle
from polyclinic.tenancy.models import (
    PLATFORM_SUSPENSION,
    SUSPENDED_BY_PLATFORM,
    Tenant,
    TenantStatus,
)
from polyclinic.tenancy.resolver import TenantResolver, tenant_info


class TenantRepository(SQLAlchemyAsyncRepository[Tenant]):
    model_type = Tenant


class ClinicRegistry:
    def __init__(
        self, session: AsyncSession, resolver: TenantResolver, lifecycle: ClinicLifecycle
    ) -> None:
        self.repository = TenantRepository(session=session, auto_commit=False)
        self.session = session
        self.resolver = resolver
        self.lifecycle = lifecycle

    async def list(
        self, *, status: TenantStatus | None, limit: int, offset: int
    ) -> tuple[list[Tenant], int]:
        filters: list = [LimitOffset(limit=limit, offset=offset), OrderBy("created_at", "desc")]
        if status is not None:
            filters.append(Tenant.status == status)
        tenants, total = await self.repository.get_many_and_count(*filters)
        return list(tenants), total

    async def get(self, tenant_id: uuid.UUID) -> Tenant:
        tenant = await self.repository.get_one_or_none(id=tenant_id)
        if tenant is None:
            raise NotFound("No clinic with this id")
        return tenant

    async def suspend(self, tenant_id: uuid.UUID) -> Tenant:
        # Also over a billing suspension: the platform's then holds, and paying won't lift it.
        return await self._move(
            tenant_id,
            {TenantStatus.ACTIVE, TenantStatus.SUSPENDED},
            TenantStatus.SUSPENDED,
            when=Tenant.suspended_by.is_distinct_from(SUSPENDED_BY_PLATFORM),
            suspended_by=SUSPENDED_BY_PLATFORM,
            suspension_reason=PLATFORM_SUSPENSION,
        )

    async def reactivate(self, tenant_id: uuid.UUID) -> Tenant:
        return await self._move(
            tenant_id,
            {TenantStatus.SUSPENDED},
            TenantStatus.ACTIVE,
            suspended_by=None,
            suspension_reason=None,
        )

    async def delete(self, tenant_id: uuid.UUID) -> Tenant:
        deleted = await self._move(
            tenant_id,
            {TenantStatus.ACTIVE, TenantStatus.SUSPENDED, TenantStatus.FAILED},
            TenantStatus.DELETED,
        )
        clinic = tenant_info(deleted)
        if clinic is not None:
            await self.lifecycle.deleted(clinic)
        return deleted

    async def _move(
        self,
        tenant_id: uuid.UUID,
        allowed_from: set[TenantStatus],
        target: TenantStatus,
        when: ColumnElement[bool] | None = None,
        **also: object,
    ) -> Tenant:
        """One conditional UPDATE, so two concurrent changes cannot both apply."""
        changes: dict[str, object] = {"status": target, "updated_at": utcnow(), **also}
        if target == TenantStatus.DELETED:
            changes["deleted_at"] = changes["updated_at"]
        moved = (
            await self.session.execute(
                update(Tenant)
                .where(Tenant.id == tenant_id, Tenant.status.in_(allowed_from))
                .where(true() if when is None else when)
                .values(**changes)
                .returning(Tenant)
                .execution_options(populate_existing=True)
            )
        ).scalar_one_or_none()
        await self.session.commit()
        if moved is None:
            current = await self.get(tenant_id)
            if current.status == target:
                raise Conflict(f"The clinic is already {target}")
            raise Conflict(f"A {current.status} clinic cannot become {target}")
        await self.resolver.invalidate()
        return moved
