"""A clinic's standing with its subscription: suspended when it lapsed, reactivated once paid
up, and every process told at once."""

from __future__ import annotations

import logging

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.billing.lifecycle import LifecycleChanges, enforce_standing
from polyclinic.config import Settings
from polyclinic.db.base import utcnow
from polyclinic.db.session import platform_session
from polyclinic.tenancy.resolver import broadcast_invalidation

logger = logging.getLogger("polyclinic.billing")


async def keep_standing(
    engine: AsyncEngine, redis: Redis | None, settings: Settings
) -> LifecycleChanges:
    async with platform_session(engine) as session:
        changes = await enforce_standing(session, utcnow(), settings.billing_suspend_after_days)
    for tenant_id in changes.suspended:
        logger.warning("clinic %s suspended: its subscription lapsed", tenant_id)
    for tenant_id in changes.reactivated:
        logger.info("clinic %s reactivated: its subscription is in good standing", tenant_id)
    if changes:
        await broadcast_invalidation(redis, settings.redis_namespace)
    return changes
