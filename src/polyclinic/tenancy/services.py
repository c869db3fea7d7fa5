"""The clinic registry as super-admins see it: list, read, suspend, reactivate, delete."""

from __future__ import annotations

import uuid

from advanced_alchemy.filters import LimitOffset, OrderBy
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.db.base import utcnow
from polyclinic.errors import Conflict, NotFound
from polyclinic.tenancy.models import Tenant, TenantStatus
from polyclinic.tenancy.resolver import TenantResolver


class TenantRepository(SQLAlchemyAsyncRepository[Tenant]):
    model_type = Tenant


class ClinicRegistry:
    def __init__(self, session: AsyncSession, resolver: TenantResolver) -> None:
        self.repository = TenantRepository(session=session, auto_commit=False)
        self.session = session
        self.resolver = resolver

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
        return await self._move(tenant_id, {TenantStatus.ACTIVE}, TenantStatus.SUSPENDED)

    async def reactivate(self, tenant_id: uuid.UUID) -> Tenant:
        return await self._move(tenant_id, {TenantStatus.SUSPENDED}, TenantStatus.ACTIVE)

    async def delete(self, tenant_id: uuid.UUID) -> Tenant:
        return await self._move(
            tenant_id,
            {TenantStatus.ACTIVE, TenantStatus.SUSPENDED, TenantStatus.FAILED},
            TenantStatus.DELETED,
        )

    async def _move(
        self, tenant_id: uuid.UUID, allowed_from: set[TenantStatus], target: TenantStatus
    ) -> Tenant:
        tenant = await self.get(tenant_id)
        if tenant.status == target:
            raise Conflict(f"The clinic is already {target}")
        if tenant.status not in allowed_from:
            raise Conflict(f"A {tenant.status} clinic cannot become {target}")
        tenant.status = target
        if target == TenantStatus.DELETED:
            tenant.deleted_at = utcnow()
        tenant = await self.repository.update(tenant)
        await self.session.commit()
        await self.resolver.invalidate()
        return tenant
