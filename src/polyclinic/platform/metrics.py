"""Platform metrics for super-admins: clinics, subscriptions, recurring revenue, quota use."""

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.billing.models import (
    PAYING,
    Interval,
    Plan,
    QuotaPeriod,
    Subscription,
)
from polyclinic.db.base import utcnow
from polyclinic.platform.guards import require_super_admin
from polyclinic.tenancy.models import Tenant, TenantStatus
from polyclinic.web.envelope import Envelope, ok
from polyclinic.web.openapi import PLATFORM_READ, published_as


class PlanCount(msgspec.Struct, rename="camel"):
    plan: str
    status: str
    clinics: int


class QuotaUse(msgspec.Struct, rename="camel"):
    used: int
    included: int
    clinics_unlimited: int


@published_as("polyclinic.billing.metrics")
class Metrics(msgspec.Struct, rename="camel"):
    clinics_by_status: dict[str, int]
    subscriptions: list[PlanCount]
    monthly_recurring_revenue_minor: dict[str, int]
    quota_this_period: QuotaUse


class MetricsController(Controller):
    path = "/platform/v1/metrics"
    tags = ["platform: metrics"]
    guards = [require_super_admin]
    security = [{"BearerToken": []}]

    @get(
        "/",
        summary="Clinics, subscriptions, recurring revenue and quota use",
        responses=PLATFORM_READ,
    )
    async def metrics(self, platform_db: NamedDependency[AsyncSession]) -> Envelope[Metrics]:
        by_status = dict(
            (str(status), count)
            for status, count in await platform_db.execute(
                select(Tenant.status, func.count()).group_by(Tenant.status)
            )
        )
        subscriptions = [
            PlanCount(plan=code, status=str(status), clinics=count)
            for code, status, count in await platform_db.execute(
                select(Plan.code, Subscription.status, func.count())
                .join(Plan, Plan.id == Subscription.plan_id)
                .join(Tenant, Tenant.id == Subscription.tenant_id)
                .where(Tenant.status != TenantStatus.DELETED)
                .group_by(Plan.code, Subscription.status)
                .order_by(Plan.code, Subscription.status)
            )
        ]
        monthly = case(
            (Plan.interval == Interval.YEAR, Plan.price_minor / 12), else_=Plan.price_minor
        )
        revenue = {
            currency: int(total or 0)
            for currency, total in await platform_db.execute(
                select(Plan.currency, func.sum(monthly))
                .join(Subscription, Subscription.plan_id == Plan.id)
                .join(Tenant, Tenant.id == Subscription.tenant_id)
                .where(Subscription.status.in_(PAYING), Tenant.status != TenantStatus.DELETED)
                .group_by(Plan.currency)
            )
        }
        used, included, unlimited = (
            await platform_db.execute(
                select(
                    func.coalesce(func.sum(QuotaPeriod.used), 0),
                    func.coalesce(func.sum(QuotaPeriod.included), 0),
                    func.count().filter(QuotaPeriod.included.is_(None)),
                ).where(QuotaPeriod.period_start <= utcnow(), QuotaPeriod.period_end > utcnow())
            )
        ).one()
        return ok(
            Metrics(
                clinics_by_status=by_status,
                subscriptions=subscriptions,
                monthly_recurring_revenue_minor=revenue,
                quota_this_period=QuotaUse(
                    used=int(used), included=int(included), clinics_unlimited=int(unlimited)
                ),
            )
        )
