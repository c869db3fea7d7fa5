"""Host -> clinic, with a small TTL cache in front of the registry."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import re
import time
import uuid
from collections import OrderedDict
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.db.context import TenantInfo
from polyclinic.tenancy.models import Domain, Tenant

_MAX_ENTRIES = 20_000
# Unknown hosts are remembered only briefly: a clinic created meanwhile must answer soon even
# where no Redis carries the invalidation.
_UNKNOWN_TTL = 2.0
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
logger = logging.getLogger("polyclinic.tenancy")


def normalize_host(raw: str) -> str:
    """Lower-case, no port, no trailing dot; IPv6 literals keep their brackets."""
    host = raw.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        return host[: end + 1] if end != -1 else host
    host = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    return host.rstrip(".")


def is_domain_name(host: str) -> bool:
    """Plausible DNS name (normalised): what is not one is never looked up."""
    labels = host.split(".")
    return len(host) <= 253 and len(labels) >= 2 and all(_LABEL.match(part) for part in labels)


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


def invalidation_channel(namespace: str) -> str:
    return f"{namespace}:tenancy:invalidate"


async def broadcast_invalidation(redis: Redis | None, namespace: str) -> None:
    """Tell every process's resolver that clinics changed (from a job, say)."""
    if redis is None:
        return
    try:
        await redis.publish(invalidation_channel(namespace), b"*")
    except Exception:
        logger.warning("could not broadcast a tenant cache invalidation; TTL applies")


class TenantResolver:
    """Each process caches answers for `ttl_seconds`; a change made in any process clears
    every process's cache at once through Redis pub/sub (without Redis, the TTL bounds it)."""

    def __init__(
        self,
        engine: AsyncEngine,
        ttl_seconds: float,
        redis: Redis | None = None,
        namespace: str = "polyclinic",
    ) -> None:
        self._namespace = namespace
        self._channel = invalidation_channel(namespace)
        self._engine = engine
        self._ttl = ttl_seconds
        self._redis = redis
        self._cache: OrderedDict[str, tuple[float, TenantInfo | None]] = OrderedDict()

    async def resolve(self, host: str) -> TenantInfo | None:
        if not is_domain_name(host):
            return None
        now = time.monotonic()
        cached = self._cache.get(host)
        if cached is not None and cached[0] > now:
            self._cache.move_to_end(host)
            return cached[1]
        tenant = await self._lookup(host)
        self._cache[host] = (now + (self._ttl if tenant else min(self._ttl, _UNKNOWN_TTL)), tenant)
        self._cache.move_to_end(host)
        if len(self._cache) > _MAX_ENTRIES:
            self._cache.popitem(last=False)  # least recently used
        return tenant

    async def invalidate(self) -> None:
        """Forget everything, here and in every other process (a clinic or domain changed)."""
        self._cache.clear()
        await broadcast_invalidation(self._redis, self._namespace)

    async def listen(self, ready: asyncio.Event | None = None) -> None:
        """Clear this process's cache whenever another process announces a change."""
        if self._redis is None:
            return
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(self._channel)
                    self._cache.clear()  # anything may have changed while unsubscribed
                    if ready is not None:
                        ready.set()
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self._cache.clear()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("tenant cache listener lost Redis; retrying")
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.sleep(1)

    async def _lookup(self, host: str) -> TenantInfo | None:
        query = TENANT_INFO_QUERY.join(Domain, Domain.tenant_id == Tenant.id).where(
            Domain.host == host
        )
        async with self._engine.connect() as connection:
            row = (await connection.execute(query)).first()
        return tenant_info(row)


TENANT_INFO_QUERY = select(
    Tenant.id,
    Tenant.slug,
    Tenant.name,
    Tenant.schema_name,
    Tenant.db_role,
    Tenant.status,
    Tenant.timezone,
    Tenant.suspension_reason,
    Tenant.suspended_by,
)


async def clinic_by_id(engine: AsyncEngine, tenant_id: uuid.UUID) -> TenantInfo | None:
    """A clinic by its id, read from the registry now (no cache)."""
    async with engine.connect() as connection:
        row = (await connection.execute(TENANT_INFO_QUERY.where(Tenant.id == tenant_id))).first()
    return tenant_info(row)


def tenant_info(row: Row[Any] | Tenant | None) -> TenantInfo | None:
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
        suspension_reason=row.suspension_reason,
        suspended_by=row.suspended_by,
    )
