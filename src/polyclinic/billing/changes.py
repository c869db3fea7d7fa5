"""Plan changes a clinic asks for: an upgrade applies at once (the quota grows in the current
period), a downgrade at the end of the period."""

from __future__ import annotations

import uuid

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.billing.models import Plan, PlanStatus, QuotaPeriod, Subscription
from polyclinic.errors import Conflict, FieldError, InvalidInput, NotFound


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
                select(Subscription, Plan)
                .join(Plan, Plan.id == Subscription.plan_id)
                .where(Subscription.tenant_id == self.tenant_id)
                .with_for_update(of=Subscription)
            )
        ).first()
        if row is None:
            raise NotFound("This clinic has no subscription yet")
        subscription, current = row
        new = (
            await self.db.execute(
                select(Plan)
                .where(Plan.code == plan_code, Plan.status == PlanStatus.ACTIVE)
                .order_by(Plan.version.desc())
                .limit(1)
            )
        ).scalar_one_or_none()
        if new is None:
            raise InvalidInput(
                f"No active plan has the code {plan_code!r}",
                [FieldError("planCode", "is not a plan")],
            )
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
