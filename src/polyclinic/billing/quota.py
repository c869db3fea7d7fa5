"""The appointment-quota engine.

`consume` runs in the caller's transaction, the one that writes the appointment, under the
clinic's own role (row-level security keeps it to its own rows). The ledger's unique key makes
each appointment count once; the conditional UPDATE makes the counter unable to pass the
included amount however many bookings race for the last unit: PostgreSQL serialises them on
the period row and re-checks the condition for each. Reaching 80% and 100% of the included
amount writes an event to the clinic's outbox, once per period each.
"""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Row, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.billing.models import (
    OveragePolicy,
    Plan,
    QuotaEntry,
    QuotaPeriod,
    Subscription,
)
from polyclinic.billing.standing import in_good_standing
from polyclinic.billing.subscriptions import clinic_subscription
from polyclinic.db.base import utcnow
from polyclinic.errors import DomainError
from polyclinic.worker.outbox import record

_COUNTERS = (
    QuotaPeriod.included,
    QuotaPeriod.used,
    QuotaPeriod.overage,
    QuotaPeriod.notified_80_at,
    QuotaPeriod.notified_100_at,
)


QUOTA_THRESHOLD_EVENT = "billing.quota_threshold_reached"


class PaymentRequired(DomainError):
    status_code = 402


@dataclass(frozen=True)
class Usage:
    included: int | None
    used: int
    overage: int
    # Thresholds (80, 100 percent) this consume crossed first in its period.
    crossed: tuple[int, ...] = field(default=())

    @property
    def remaining(self) -> int | None:
        return None if self.included is None else max(0, self.included - (self.used - self.overage))


class QuotaEngine:
    def __init__(
        self, session: AsyncSession, tenant_id: uuid.UUID, past_due_grace_days: int
    ) -> None:
        self.db = session
        self.tenant_id = tenant_id
        self.grace = datetime.timedelta(days=past_due_grace_days)

    async def consume(self, appointment_id: uuid.UUID) -> Usage:
        subscription, plan = await self._bookable_subscription()
        period = await self._current_period(subscription, plan)
        if await self._entry(appointment_id, "consume") is not None:
            return await self._usage(period.id)  # counted before: nothing changes
        overage = False
        counted = (
            await self.db.execute(
                update(QuotaPeriod)
                .where(
                    QuotaPeriod.id == period.id,
                    or_(
                        QuotaPeriod.included.is_(None),
                        QuotaPeriod.used - QuotaPeriod.overage < QuotaPeriod.included,
                    ),
                )
                .values(used=QuotaPeriod.used + 1)
                .returning(*_COUNTERS)
            )
        ).first()
        if counted is None:
            if plan.overage_policy == OveragePolicy.BLOCK:
                raise PaymentRequired(
                    f"This clinic has used all {period.included} appointments its "
                    f"{plan.name} plan includes until {period.period_end:%Y-%m-%d}; "
                    "a clinic admin can move to a larger plan to book more"
                )
            overage = True
            counted = await self._count(period.id, +1, overage=True)
        entry = await self.db.scalar(
            insert(QuotaEntry)
            .values(
                id=uuid.uuid4(),
                tenant_id=self.tenant_id,
                period_id=period.id,
                appointment_id=appointment_id,
                kind="consume",
                overage=overage,
                created_at=utcnow(),
            )
            .on_conflict_do_nothing(constraint="uq_quota_ledger_once")
            .returning(QuotaEntry.id)
        )
        if entry is None:
            # The same appointment was counted by a concurrent call: take ours back.
            counted = await self._count(period.id, -1, overage=overage)
            return Usage(counted.included, counted.used, counted.overage)
        crossed = await self._mark_thresholds(period.id, counted)
        for percent in crossed:
            # In the booking's transaction, to the clinic's outbox: messaging tells the admins.
            record(
                self.db,
                QUOTA_THRESHOLD_EVENT,
                None,
                {
                    "percent": percent,
                    "included": counted.included,
                    "used": counted.used - counted.overage,
                    "periodStart": period.period_start.isoformat(),
                    "periodEnd": period.period_end.isoformat(),
                    "plan": plan.name,
                },
            )
        return Usage(counted.included, counted.used, counted.overage, crossed)

    async def release(self, appointment_id: uuid.UUID) -> bool:
        """Give a consumed appointment back, once; False when there was nothing to give."""
        consumed = await self._entry(appointment_id, "consume")
        if consumed is None:
            return False
        released = await self.db.scalar(
            insert(QuotaEntry)
            .values(
                id=uuid.uuid4(),
                tenant_id=self.tenant_id,
                period_id=consumed.period_id,
                appointment_id=appointment_id,
                kind="release",
                overage=consumed.overage,
                created_at=utcnow(),
            )
            .on_conflict_do_nothing(constraint="uq_quota_ledger_once")
            .returning(QuotaEntry.id)
        )
        if released is None:
            return False
        await self._count(consumed.period_id, -1, overage=consumed.overage)
        return True

    async def _entry(self, appointment_id: uuid.UUID, kind: str) -> QuotaEntry | None:
        return (
            await self.db.execute(
                select(QuotaEntry).where(
                    QuotaEntry.tenant_id == self.tenant_id,
                    QuotaEntry.appointment_id == appointment_id,
                    QuotaEntry.kind == kind,
                )
            )
        ).scalar_one_or_none()

    async def _count(self, period_id: uuid.UUID, delta: int, *, overage: bool) -> Row[Any]:
        return (
            await self.db.execute(
                update(QuotaPeriod)
                .where(QuotaPeriod.id == period_id)
                .values(
                    used=QuotaPeriod.used + delta,
                    overage=QuotaPeriod.overage + (delta if overage else 0),
                )
                .returning(*_COUNTERS)
            )
        ).one()

    async def subscription(self) -> tuple[Subscription, Plan] | None:
        return await clinic_subscription(self.db, self.tenant_id)

    async def usage(self, subscription: Subscription, plan: Plan) -> Usage:
        """This period's figures (the period opens on first use)."""
        period = await self._current_period(subscription, plan)
        return await self._usage(period.id)

    async def _bookable_subscription(self) -> tuple[Subscription, Plan]:
        row = await self.subscription()
        if row is None:
            raise PaymentRequired(
                "This clinic has no subscription; a clinic admin can choose a plan"
            )
        subscription, plan = row
        if in_good_standing(subscription, utcnow(), self.grace):
            return subscription, plan
        state = subscription.status.replace("_", " ")
        raise PaymentRequired(
            f"Bookings are paused: the clinic's subscription is {state}; "
            "a clinic admin can settle it in billing"
        )

    async def _current_period(self, subscription: Subscription, plan: Plan) -> QuotaPeriod:
        """The period row for the subscription's current period; a new period starts fresh."""
        which = select(QuotaPeriod).where(
            QuotaPeriod.tenant_id == self.tenant_id,
            QuotaPeriod.period_start == subscription.current_period_start,
        )
        period = (await self.db.execute(which)).scalar_one_or_none()
        if period is not None:
            return period
        await self.db.execute(
            insert(QuotaPeriod)
            .values(
                id=uuid.uuid4(),
                tenant_id=self.tenant_id,
                period_start=subscription.current_period_start,
                period_end=subscription.current_period_end,
                included=plan.appointments_included,
                used=0,
                overage=0,
                created_at=utcnow(),
            )
            .on_conflict_do_nothing(constraint="uq_quota_periods_tenant_start")
        )
        return (await self.db.execute(which)).scalar_one()

    async def _usage(self, period_id: uuid.UUID) -> Usage:
        row = (
            await self.db.execute(
                select(QuotaPeriod.included, QuotaPeriod.used, QuotaPeriod.overage).where(
                    QuotaPeriod.id == period_id
                )
            )
        ).one()
        return Usage(row.included, row.used, row.overage)

    async def _mark_thresholds(self, period_id: uuid.UUID, counted: Row[Any]) -> tuple[int, ...]:
        """Each threshold fires once per period: only when the count just reached it is the
        mark attempted, and the conditional UPDATE lets one caller have it."""
        if not counted.included:
            return ()
        share = (counted.used - counted.overage) * 100
        crossed = []
        for percent, column, done in (
            (80, QuotaPeriod.notified_80_at, counted.notified_80_at),
            (100, QuotaPeriod.notified_100_at, counted.notified_100_at),
        ):
            if done is not None or share < counted.included * percent:
                continue
            hit = await self.db.scalar(
                update(QuotaPeriod)
                .where(QuotaPeriod.id == period_id, column.is_(None))
                .values({column.key: utcnow()})
                .returning(QuotaPeriod.id)
            )
            if hit is not None:
                crossed.append(percent)
        return tuple(crossed)
