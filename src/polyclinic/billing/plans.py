"""Global plans: created, versioned when in use, archived, and a default set to seed."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from polyclinic.billing.models import Interval, OveragePolicy, Plan, PlanStatus, Subscription
from polyclinic.errors import Conflict, FieldError, InvalidInput, NotFound

# The Stripe price ids are placeholders: an operator sets each plan's real price id (PATCH
# makes a new version when the plan has subscribers).
DEFAULT_PLANS: list[dict[str, Any]] = [
    {
        "code": "starter",
        "stripe_price_id": "price_starter_monthly",
        "name": "Starter",
        "price_minor": 4900,
        "currency": "EUR",
        "interval": Interval.MONTH,
        "trial_days": 14,
        "appointments_included": 150,
        "overage_policy": OveragePolicy.BLOCK,
        "overage_price_minor": None,
        "features": {
            "videoVisits": False,
            "sms": False,
            "whatsapp": False,
            "platformEmail": True,
            "platformSms": False,
        },
        "max_staff": 5,
        "max_practitioners": 3,
        "is_default": True,
    },
    {
        "code": "growth",
        "stripe_price_id": "price_growth_monthly",
        "name": "Growth",
        "price_minor": 14900,
        "currency": "EUR",
        "interval": Interval.MONTH,
        "trial_days": 14,
        "appointments_included": 1000,
        "overage_policy": OveragePolicy.CHARGE,
        "overage_price_minor": 20,
        "features": {
            "videoVisits": True,
            "sms": True,
            "whatsapp": False,
            "platformEmail": True,
            "platformSms": True,
        },
        "max_staff": 25,
        "max_practitioners": 15,
        "is_default": False,
    },
    {
        "code": "network",
        "stripe_price_id": "price_network_yearly",
        "name": "Network",
        "price_minor": 149000,
        "currency": "EUR",
        "interval": Interval.YEAR,
        "trial_days": 30,
        "appointments_included": None,
        "overage_policy": OveragePolicy.BLOCK,
        "overage_price_minor": None,
        "features": {
            "videoVisits": True,
            "sms": True,
            "whatsapp": True,
            "platformEmail": True,
            "platformSms": True,
        },
        "max_staff": None,
        "max_practitioners": None,
        "is_default": False,
    },
]

# What a new version may change; the code and version themselves are not among them.
EDITABLE = (
    "name",
    "price_minor",
    "currency",
    "interval",
    "trial_days",
    "appointments_included",
    "overage_policy",
    "overage_price_minor",
    "features",
    "max_staff",
    "max_practitioners",
    "stripe_price_id",
    "is_default",
)


class Plans:
    def __init__(self, session: AsyncSession) -> None:
        self.db = session

    async def offered(self) -> list[Plan]:
        """Active plans, the newest version of each code: what a clinic can sign up for."""
        rows = await self.db.execute(
            select(Plan).where(Plan.status == PlanStatus.ACTIVE).order_by(Plan.price_minor)
        )
        return list(rows.scalars())

    async def get(self, plan_id: uuid.UUID) -> Plan:
        plan = await self.db.get(Plan, plan_id)
        if plan is None:
            raise NotFound("No such plan")
        return plan

    async def create(self, values: dict[str, Any]) -> Plan:
        taken = await self.db.scalar(select(func.count()).where(Plan.code == values["code"]))
        if taken:
            raise Conflict(f"A plan with the code {values['code']!r} exists; change it instead")
        plan = Plan(version=1, status=PlanStatus.ACTIVE, **values)
        if plan.is_default:
            await self._clear_default()
        self.db.add(plan)
        await self.db.commit()
        return plan

    async def update(self, plan_id: uuid.UUID, changes: dict[str, Any]) -> Plan:
        """Edit in place while nobody subscribes; otherwise a new version takes over for new
        subscribers and the old one stays, archived, for those already on it. `features`
        holds only the features to change; the others keep their values."""
        plan = await self.get(plan_id)
        if plan.status != PlanStatus.ACTIVE:
            raise Conflict("An archived plan cannot change; change its newest version")
        if "features" in changes:
            changes = {**changes, "features": {**plan.features, **changes["features"]}}
        if changes.get("is_default"):
            await self._clear_default()
        if not await self._in_use(plan.id):
            for key, value in changes.items():
                setattr(plan, key, value)
            await self.db.commit()
            return plan
        successor = Plan(
            **{key: getattr(plan, key) for key in EDITABLE},
            code=plan.code,
            version=plan.version + 1,
            status=PlanStatus.ACTIVE,
        )
        for key, value in changes.items():
            setattr(successor, key, value)
        plan.status = PlanStatus.ARCHIVED
        plan.is_default = False
        self.db.add(successor)
        await self.db.commit()
        return successor

    async def archive(self, plan_id: uuid.UUID) -> Plan:
        plan = await self.get(plan_id)
        plan.status = PlanStatus.ARCHIVED
        plan.is_default = False
        await self.db.commit()
        return plan

    async def _in_use(self, plan_id: uuid.UUID) -> bool:
        count = await self.db.scalar(
            select(func.count()).where(
                (Subscription.plan_id == plan_id) | (Subscription.pending_plan_id == plan_id)
            )
        )
        return bool(count)

    async def _clear_default(self) -> None:
        for plan in (await self.db.execute(select(Plan).where(Plan.is_default))).scalars():
            plan.is_default = False


async def seed_default_plans(session: AsyncSession) -> list[str]:
    """Create the default plans that do not exist yet; returns the codes created."""
    existing = set((await session.execute(select(Plan.code))).scalars())
    created = []
    for values in DEFAULT_PLANS:
        if values["code"] in existing:
            continue
        session.add(Plan(version=1, status=PlanStatus.ACTIVE, **values))
        created.append(values["code"])
    await session.commit()
    return created


def newest_active(code: str | None) -> Select[tuple[Plan]]:
    """The newest active version of the plan with this code, or of the default plan."""
    query = select(Plan).where(Plan.status == PlanStatus.ACTIVE)
    query = query.where(Plan.code == code) if code else query.where(Plan.is_default)
    return query.order_by(Plan.version.desc()).limit(1)


def unknown_plan(code: str) -> InvalidInput:
    return InvalidInput(
        f"No active plan has the code {code!r}", [FieldError("planCode", "is not a plan")]
    )


async def plan_for_signup(connection: AsyncConnection, code: str | None) -> Plan | None:
    """The plan a new clinic starts on; None when no default plan is set up."""
    row = (await connection.execute(newest_active(code))).first()
    if row is None and code:
        raise unknown_plan(code)
    return Plan(**row._mapping) if row is not None else None
