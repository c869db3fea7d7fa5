"""What billing does when a clinic is deleted: its subscription ends at once, on Stripe (so
nothing more is billed) and here (`canceled`).

The deletion itself never waits for Stripe. When Stripe refuses or cannot be reached, the
clinic stays deleted, the failure is logged and written on the clinic (its `lastError` in the
platform API), and billing housekeeping tries again until Stripe has it: a deleted clinic
whose subscription is not `canceled` is still owed a cancellation.
"""

from __future__ import annotations

import logging
import uuid

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.billing.lifecycle import set_status
from polyclinic.billing.models import Subscription, SubscriptionStatus
from polyclinic.billing.stripe_billing import StripeBilling, stripe_billing
from polyclinic.billing.subscriptions import clinic_subscription
from polyclinic.config import Settings
from polyclinic.db.base import utcnow
from polyclinic.db.context import TenantInfo
from polyclinic.db.session import platform_session
from polyclinic.errors import DomainError, Unavailable
from polyclinic.tenancy.models import Tenant, TenantStatus

logger = logging.getLogger("polyclinic.billing")

CANCEL_FAILED = "cancelling the clinic's Stripe subscription failed"


class SubscriptionEnd:
    """The `deleted` hook: built with what it needs, run with the deleted clinic."""

    def __init__(self, engine: AsyncEngine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings

    async def run(self, clinic: TenantInfo) -> None:
        await end_subscription(self.engine, stripe_billing(self.settings), clinic.id)


async def end_subscription(
    engine: AsyncEngine, stripe: StripeBilling | None, tenant_id: uuid.UUID
) -> None:
    """Cancel the clinic's subscription on Stripe, then here. A failure is recorded on the
    clinic and raised; the subscription is left as it was, for the next attempt."""
    try:
        await _end(engine, stripe, tenant_id)
    except DomainError as exc:
        await _note(engine, tenant_id, f"{CANCEL_FAILED} ({exc}); billing housekeeping retries")
        raise
    await _note(engine, tenant_id, None)


async def _end(engine: AsyncEngine, stripe: StripeBilling | None, tenant_id: uuid.UUID) -> None:
    async with platform_session(engine) as session:
        found = await clinic_subscription(session, tenant_id, lock=True)
        if found is None or found[0].status == SubscriptionStatus.CANCELED:
            return
        subscription = found[0]
        if subscription.stripe_subscription_id:
            if stripe is None:
                raise Unavailable("Stripe Billing is not configured here (STRIPE_API_KEY)")
            await stripe.cancel_now(subscription.stripe_subscription_id)
        set_status(subscription, SubscriptionStatus.CANCELED, utcnow())
        subscription.cancel_at_period_end = False
        subscription.pending_plan_id = None
        await session.commit()
    logger.info("clinic %s deleted: its subscription is canceled", tenant_id)


async def _note(engine: AsyncEngine, tenant_id: uuid.UUID, error: str | None) -> None:
    """Write a failure on the clinic, or clear an earlier one of ours once it succeeded."""
    query = update(Tenant).where(Tenant.id == tenant_id)
    if error is None:
        query = query.where(Tenant.last_error.startswith(CANCEL_FAILED))
    async with engine.begin() as connection:
        await connection.execute(query.values(last_error=error))


async def end_deleted_subscriptions(engine: AsyncEngine, settings: Settings) -> tuple[int, int]:
    """Housekeeping: every deleted clinic whose subscription is not canceled yet (its hook
    failed, or the process stopped before it ran) is tried again. Returns (ended, failed)."""
    async with platform_session(engine) as session:
        owed = list(
            await session.scalars(
                select(Subscription.tenant_id)
                .join(Tenant, Tenant.id == Subscription.tenant_id)
                .where(
                    Tenant.status == TenantStatus.DELETED,
                    Subscription.status != SubscriptionStatus.CANCELED,
                )
            )
        )
    stripe = stripe_billing(settings)
    ended = failed = 0
    for tenant_id in owed:
        try:
            await end_subscription(engine, stripe, tenant_id)
        except Exception:
            failed += 1
            logger.exception(
                "clinic %s: %s again; it is tried again later", tenant_id, CANCEL_FAILED
            )
        else:
            ended += 1
    return ended, failed
