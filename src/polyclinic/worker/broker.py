"""The dramatiq broker on Redis, with the clinic-context middleware."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from dramatiq.brokers.redis import RedisBroker
from sqlalchemy import Engine

from polyclinic.config import Settings
from polyclinic.db.engine import create_sync_engine
from polyclinic.errors import Unavailable
from polyclinic.tenancy.context import TenantInfo
from polyclinic.tenancy.models import Tenant
from polyclinic.tenancy.resolver import TENANT_INFO_QUERY, tenant_info
from polyclinic.worker.context import TenantContext


def registry_lookup(engine: Engine) -> Callable[[uuid.UUID], TenantInfo | None]:
    def lookup(tenant_id: uuid.UUID) -> TenantInfo | None:
        with engine.connect() as connection:
            row = connection.execute(TENANT_INFO_QUERY.where(Tenant.id == tenant_id)).first()
        return tenant_info(row)

    return lookup


def create_broker(settings: Settings, *, namespace: str = "polyclinic") -> RedisBroker:
    if not settings.redis_url:
        raise Unavailable("REDIS_URL is required for background jobs")
    broker = RedisBroker(url=settings.redis_url, namespace=namespace)
    engine = create_sync_engine(settings, pool_size=2)
    broker.add_middleware(TenantContext(registry_lookup(engine)))
    return broker
