"""A clinic's standing with its subscription: suspended when it lapsed, reactivated once paid
up, and every process told at once.

In good standing: a subscription trialing or active, or past due within
`PAST_DUE_GRACE_DAYS`. Unpaid, canceled, paused, past due beyond the grace period, or a
suspended clinic, is not: it cannot book, and the platform lends it no text messages.
"""

from __future__ import annotations

import datetime
import logging

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.billing.lifecycle import LifecycleChanges, enforce_standing
from polyclinic.billing.models import CAN_BOOK, Subscription, SubscriptionStatus
from polyclinic.config import Settings
from polyclinic.db.base import utcnow
from polyclinic.db.context import TenantInfo
from polyclinic.db.session import platform_session
from polyclinic.tenancy.models import TenantStatus
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


def in_good_standing(
    subscription: Subscription, now: datetime.datetime, grace: datetime.timedelta
) -> bool:
    if subscription.status in CAN_BOOK:
        return True
    return (
        subscription.status == SubscriptionStatus.PAST_DUE
        and subscription.past_due_since is not None
        and now < subscription.past_due_since + grace
    )


def standing_problem(
    clinic: TenantInfo, subscription: Subscription | None, grace_days: int
) -> str | None:
    """Why the clinic is not in good standing, in words that follow "while"; None if it is."""
    if clinic.status == TenantStatus.SUSPENDED:
        return "the clinic is suspended"
    if subscription is None:
        return "the clinic has no subscription"
    if in_good_standing(subscription, utcnow(), datetime.timedelta(days=grace_days)):
        return None
    if subscription.status == SubscriptionStatus.PAST_DUE:
        return f"its subscription is past due beyond the {grace_days}-day grace period"
    return f"its subscription is {subscription.status.replace('_', ' ')}"
