"""Jobs the platform composes from several domains: applying stored Stripe events (billing's
and the clinics' card payments), and billing's periodic housekeeping (pending events,
period rollover, suspension and reactivation, deleted clinics' subscriptions still to cancel)."""

from __future__ import annotations

import logging

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.billing.deletion import end_deleted_subscriptions
from polyclinic.billing.lifecycle import roll_periods
from polyclinic.billing.standing import keep_standing
from polyclinic.billing.stripe_events import apply_pending
from polyclinic.config import Settings
from polyclinic.db.base import utcnow
from polyclinic.db.session import platform_session
from polyclinic.scheduling.appointments.card_payments import CardPaymentEvents
from polyclinic.worker.jobs import job, job_resources

logger = logging.getLogger("polyclinic.billing")


@job(queue="billing", max_retries=20)
async def apply_stripe_event(event_id: str) -> None:
    resources = job_resources()
    await apply_event(resources.engine, resources.redis, resources.settings, event_id)


async def apply_event(
    engine: AsyncEngine, redis: Redis | None, settings: Settings, event_id: str
) -> None:
    """Apply one stored event; a payment may put a suspended clinic back in good standing."""
    if await apply_pending(engine, event_id, CardPaymentEvents(engine, settings)):
        await keep_standing(engine, redis, settings)


@job(queue="billing", max_retries=3)
async def billing_housekeeping() -> None:
    resources = job_resources()
    await housekeeping(resources.engine, resources.redis, resources.settings)


async def housekeeping(engine: AsyncEngine, redis: Redis | None, settings: Settings) -> None:
    """Events a failed job left unapplied, ended periods, each clinic's standing, then the
    subscriptions of deleted clinics that Stripe has yet to cancel."""
    applied = await apply_pending(engine, others=CardPaymentEvents(engine, settings))
    async with platform_session(engine) as session:
        rolled = await roll_periods(session, utcnow())
    await keep_standing(engine, redis, settings)
    ended, _ = await end_deleted_subscriptions(engine, settings)
    if applied or rolled or ended:
        logger.info(
            "billing housekeeping: %d events applied, %d periods rolled, "
            "%d deleted clinics' subscriptions canceled",
            applied,
            rolled,
            ended,
        )
