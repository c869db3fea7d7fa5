"""A clinic's hosts: its primary subdomain, plus custom domains it brings."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.config import Settings
from polyclinic.errors import Conflict, FieldError, InvalidInput, NotFound
from polyclinic.tenancy.models import Domain, Tenant, TenantStatus
from polyclinic.tenancy.resolver import TenantResolver, is_domain_name, normalize_host


def host_problem(host: str, settings: Settings) -> str | None:
    if not is_domain_name(host):
        return "must be a domain name such as book.riversideclinic.com"
    if host.rsplit(".", 1)[-1].isdigit():
        return "must be a domain name, not an address"
    if host in settings.platform_hosts or host.endswith("." + settings.base_domain):
        return f"must not be under {settings.base_domain}; clinic subdomains come with the clinic"
    return None


class ClinicDomains:
    def __init__(self, session: AsyncSession, resolver: TenantResolver, settings: Settings) -> None:
        self.session = session
        self.resolver = resolver
        self.settings = settings

    async def list(self, tenant_id: uuid.UUID) -> list[Domain]:
        await self._tenant(tenant_id)
        query = (
            select(Domain)
            .where(Domain.tenant_id == tenant_id)
            .order_by(Domain.is_primary.desc(), Domain.host)
        )
        return list((await self.session.execute(query)).scalars())

    async def add(self, tenant_id: uuid.UUID, raw_host: str) -> Domain:
        host = normalize_host(raw_host)
        if problem := host_problem(host, self.settings):
            raise InvalidInput(f"{raw_host!r} {problem}", [FieldError("host", problem)])
        tenant = await self._tenant(tenant_id)
        if tenant.status == TenantStatus.DELETED:
            raise Conflict("A deleted clinic cannot get new domains")
        domain = Domain(tenant_id=tenant_id, host=host, is_primary=False)
        self.session.add(domain)
        try:
            await self.session.commit()
        except IntegrityError:
            await self.session.rollback()
            raise Conflict(
                f"{host} already belongs to a clinic", [FieldError("host", "is already in use")]
            ) from None
        await self.resolver.invalidate()
        return domain

    async def remove(self, tenant_id: uuid.UUID, domain_id: uuid.UUID) -> None:
        domain = await self.session.get(Domain, domain_id)
        if domain is None or domain.tenant_id != tenant_id:
            raise NotFound("This clinic has no such domain")
        if domain.is_primary:
            raise Conflict("A clinic's primary subdomain cannot be removed")
        await self.session.delete(domain)
        await self.session.commit()
        await self.resolver.invalidate()

    async def _tenant(self, tenant_id: uuid.UUID) -> Tenant:
        tenant = await self.session.get(Tenant, tenant_id)
        if tenant is None:
            raise NotFound("No clinic with this id")
        return tenant
