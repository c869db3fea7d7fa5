"""A clinic's one current subscription: the trial it starts with, its billing periods."""

from __future__ import annotations

import datetime
import uuid
from calendar import monthrange

from sqlalchemy import Select, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from polyclinic.billing.models import (
    Interval,
    Plan,
    QuotaPeriod,
    Subscription,
    SubscriptionStatus,
)
from polyclinic.db.base import utcnow


def subscription_and_plan(tenant_id: uuid.UUID) -> Select[tuple[Subscription, Plan]]:
    """A clinic's subscription with its current plan."""
    return (
        select(Subscription, Plan)
        .join(Plan, Plan.id == Subscription.plan_id)
        .where(Subscription.tenant_id == tenant_id)
    )


NO_SUBSCRIPTION = "This clinic has no subscription yet"


async def clinic_subscription(
    session: AsyncSession, tenant_id: uuid.UUID, *, lock: bool = False
) -> tuple[Subscription, Plan] | None:
    """The clinic's subscription and its plan (the subscription row locked if asked)."""
    query = subscription_and_plan(tenant_id)
    if lock:
        query = query.with_for_update(of=Subscription)
    row = (await session.execute(query)).first()
    return (row[0], row[1]) if row is not None else None


def period_after(start: datetime.datetime, interval: Interval) -> datetime.datetime:
    """The same day next month (or year), or the month's last day when it is shorter."""
    months = 1 if interval == Interval.MONTH else 12
    year, month = divmod(start.month - 1 + months, 12)
    year, month = start.year + year, month + 1
    return start.replace(year=year, month=month, day=min(start.day, monthrange(year, month)[1]))


async def start_trial(connection: AsyncConnection, tenant_id: uuid.UUID, plan: Plan) -> None:
    """Inside the provisioning transaction: a trial on `plan`, its first period its length
    (or one billing interval when the plan has no trial)."""
    now = utcnow()
    trial_end = now + datetime.timedelta(days=plan.trial_days) if plan.trial_days else None
    await connection.execute(
        insert(Subscription).values(
            id=uuid.uuid4(),
            tenant_id=tenant_id,
            plan_id=plan.id,
            status=SubscriptionStatus.TRIALING if trial_end else SubscriptionStatus.ACTIVE,
            current_period_start=now,
            current_period_end=trial_end or period_after(now, plan.interval),
            trial_end=trial_end,
            cancel_at_period_end=False,
            created_at=now,
            updated_at=now,
        )
    )


async def move_to_plan(session: AsyncSession, subscription: Subscription, plan: Plan) -> None:
    """Put the subscription on `plan` from now: the current period's quota follows it, but
    never below what the clinic has already used (the no-overshoot rule holds)."""
    subscription.plan_id = plan.id
    if subscription.pending_plan_id == plan.id:
        subscription.pending_plan_id = None
    included = plan.appointments_included
    await session.execute(
        update(QuotaPeriod)
        .where(
            QuotaPeriod.tenant_id == subscription.tenant_id,
            QuotaPeriod.period_start == subscription.current_period_start,
        )
        .values(
            included=None
            if included is None
            else func.greatest(included, QuotaPeriod.used - QuotaPeriod.overage)
        )
    )
