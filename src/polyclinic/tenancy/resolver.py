"""Host -> clinic, with a small TTL cache in front of the registry."""

from __future__ import annotations

import ipaddress
import time

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.tenancy.context import TenantInfo
from polyclinic.tenancy.models import Domain, Tenant

_MAX_ENTRIES = 50_000


def normalize_host(raw: str) -> str:
    """Lower-case, no port, no trailing dot; IPv6 literals keep their brackets."""
    host = raw.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        return host[: end + 1] if end != -1 else host
    host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return host.rstrip(".")


class TrustedProxies:
    def __init__(self, entries: tuple[str, ...]) -> None:
        self._networks = [ipaddress.ip_network(entry, strict=False) for entry in entries]

    def __contains__(self, address: str | None) -> bool:
        if not address or not self._networks:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self._networks)


class TenantResolver:
    def __init__(self, engine: AsyncEngine, ttl_seconds: float) -> None:
        self._engine = engine
        self._ttl = ttl_seconds
        self._cache: dict[str, tuple[float, TenantInfo | None]] = {}

    async def resolve(self, host: str) -> TenantInfo | None:
        now = time.monotonic()
        cached = self._cache.get(host)
        if cached is not None and cached[0] > now:
            return cached[1]
        tenant = await self._lookup(host)
        if len(self._cache) >= _MAX_ENTRIES:
            self._cache.clear()
        self._cache[host] = (now + self._ttl, tenant)
        return tenant

    def invalidate(self) -> None:
        """Forget everything; called in-process when a clinic's status or domains change."""
        self._cache.clear()

    async def _lookup(self, host: str) -> TenantInfo | None:
        query = (
            select(
                Tenant.id,
                Tenant.slug,
                Tenant.name,
                Tenant.schema_name,
                Tenant.db_role,
                Tenant.status,
                Tenant.timezone,
            )
            .join(Domain, Domain.tenant_id == Tenant.id)
            .where(Domain.host == host)
        )
        async with self._engine.connect() as connection:
            row = (await connection.execute(query)).first()
        if row is None:
            return None
        return TenantInfo(
            id=row.id,
            slug=row.slug,
            name=row.name,
            schema_name=row.schema_name,
            db_role=row.db_role,
            status=str(row.status),
            timezone=row.timezone,
        )
