"""What time does to subscriptions and clinics.

- Subscriptions billed outside Stripe move to their next period when one ends; a pending
  downgrade starts then; a trial that ends without a card leaves the clinic unpaid.
  (Stripe moves its own subscriptions' periods, through webhooks.)
- A clinic unpaid or canceled for `BILLING_SUSPEND_AFTER_DAYS` is suspended, with the reason
  its host answers; once its subscription is in good standing again it is reactivated.
"""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.billing.models import LAPSED, Plan, Subscription, SubscriptionStatus
from polyclinic.billing.subscriptions import period_after
from polyclinic.tenancy.models import SUSPENDED_BY_BILLING, Tenant, TenantStatus

BILLING_REASON = (
    "This clinic's account is suspended because its subscription is unpaid or canceled; "
    "a clinic admin can sign in and settle it under billing to reopen it"
)


def set_status(
    subscription: Subscription, status: SubscriptionStatus, at: datetime.datetime
) -> None:
    """Change the status and keep the clocks that policies read: since when past due (the
    booking grace period) and since when lapsed (the suspension)."""
    subscription.status = status
    if status == SubscriptionStatus.PAST_DUE:
        subscription.past_due_since = subscription.past_due_since or at
    else:
        subscription.past_due_since = None
    if status in LAPSED:
        subscription.lapsed_since = subscription.lapsed_since or at
    else:
        subscription.lapsed_since = None


async def roll_periods(session: AsyncSession, now: datetime.datetime) -> int:
    """Close every ended period of subscriptions not billed by Stripe; returns how many."""
    due = (
        select(Subscription, Plan)
        .join(Plan, Plan.id == func.coalesce(Subscription.pending_plan_id, Subscription.plan_id))
        .where(
            Subscription.stripe_subscription_id.is_(None),
            Subscription.current_period_end <= now,
            Subscription.status.in_((SubscriptionStatus.TRIALING, SubscriptionStatus.ACTIVE)),
        )
        .with_for_update(of=Subscription, skip_locked=True)
    )
    rolled = 0
    for subscription, next_plan in (await session.execute(due)).tuples():
        ended_at = subscription.current_period_end
        if subscription.cancel_at_period_end:
            set_status(subscription, SubscriptionStatus.CANCELED, ended_at)
        elif subscription.status == SubscriptionStatus.TRIALING:
            set_status(subscription, SubscriptionStatus.UNPAID, ended_at)  # no card by the end
        else:
            _next_period(subscription, next_plan, now)
        rolled += 1
    await session.commit()
    return rolled


def _next_period(subscription: Subscription, plan: Plan, now: datetime.datetime) -> None:
    """`plan` is the pending one when a downgrade waits, else the current one."""
    subscription.plan_id, subscription.pending_plan_id = plan.id, None
    start, end = subscription.current_period_start, subscription.current_period_end
    while end <= now:
        start, end = end, period_after(end, plan.interval)
    subscription.current_period_start, subscription.current_period_end = start, end


@dataclass(frozen=True)
class LifecycleChanges:
    suspended: list[uuid.UUID]
    reactivated: list[uuid.UUID]

    def __bool__(self) -> bool:
        return bool(self.suspended or self.reactivated)


async def enforce_standing(
    session: AsyncSession, now: datetime.datetime, suspend_after_days: int
) -> LifecycleChanges:
    """Suspend clinics lapsed too long; reactivate those billing suspended that are in good
    standing again. Set-based, conditional updates: safe to run anywhere, any number of times.
    Clinics the platform suspended are left to the platform."""
    cutoff = now - datetime.timedelta(days=suspend_after_days)
    lapsed_too_long = select(Subscription.tenant_id).where(
        Subscription.status.in_(LAPSED), Subscription.lapsed_since <= cutoff
    )
    suspended = await session.scalars(
        update(Tenant)
        .where(Tenant.status == TenantStatus.ACTIVE, Tenant.id.in_(lapsed_too_long))
        .values(
            status=TenantStatus.SUSPENDED,
            suspended_by=SUSPENDED_BY_BILLING,
            suspension_reason=BILLING_REASON,
            updated_at=now,
        )
        .returning(Tenant.id)
    )
    suspended_ids = list(suspended)
    in_good_standing = select(Subscription.tenant_id).where(Subscription.status.not_in(LAPSED))
    reactivated = await session.scalars(
        update(Tenant)
        .where(
            Tenant.status == TenantStatus.SUSPENDED,
            Tenant.suspended_by == SUSPENDED_BY_BILLING,
            Tenant.id.in_(in_good_standing),
        )
        .values(
            status=TenantStatus.ACTIVE, suspended_by=None, suspension_reason=None, updated_at=now
        )
        .returning(Tenant.id)
    )
    changes = LifecycleChanges(suspended_ids, list(reactivated))
    await session.commit()
    return changes
