"""Plan changes a clinic asks for: an upgrade applies at once (the quota grows in the current
period), a downgrade at the end of the period."""

from __future__ import annotations

import uuid

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.billing.models import Plan, QuotaPeriod, Subscription
from polyclinic.billing.plans import newest_active, unknown_plan
from polyclinic.billing.subscriptions import subscription_and_plan
from polyclinic.errors import Conflict, NotFound


def is_upgrade(current: Plan, new: Plan) -> bool:
    if new.appointments_included is None or current.appointments_included is None:
        more = new.appointments_included is None and current.appointments_included is not None
    else:
        more = new.appointments_included > current.appointments_included
    return more or new.price_minor > current.price_minor


class PlanChanges:
    """Runs in a platform session: clinics read their subscription but never write it."""

    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID) -> None:
        self.db = session
        self.tenant_id = tenant_id

    async def change(self, plan_code: str) -> tuple[Subscription, Plan, bool]:
        """(subscription, the plan asked for, whether it applies now)."""
        row = (
            await self.db.execute(
                subscription_and_plan(self.tenant_id).with_for_update(of=Subscription)
            )
        ).first()
        if row is None:
            raise NotFound("This clinic has no subscription yet")
        subscription, current = row
        new = (await self.db.execute(newest_active(plan_code))).scalar_one_or_none()
        if new is None:
            raise unknown_plan(plan_code)
        if new.id == current.id:
            raise Conflict(f"The clinic is already on the {new.name} plan")
        now = is_upgrade(current, new)
        if now:
            subscription.plan_id = new.id
            subscription.pending_plan_id = None
            await self.db.execute(
                update(QuotaPeriod)
                .where(
                    QuotaPeriod.tenant_id == self.tenant_id,
                    QuotaPeriod.period_start == subscription.current_period_start,
                )
                .values(included=new.appointments_included)
            )
        else:
            subscription.pending_plan_id = new.id
        await self.db.commit()
        return subscription, new, now
