"""Billing on both hosts: plans for super-admins (and the public list), a clinic's own
subscription and usage for its admins and billing staff."""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import AsyncIterator
from typing import Annotated

import msgspec
from advanced_alchemy.filters import LimitOffset, OrderBy
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.billing.changes import SubscriptionChanges
from polyclinic.billing.models import QuotaEntry, Subscription
from polyclinic.billing.quota import QuotaEngine
from polyclinic.billing.schemas import (
    PlanOut,
    Quota,
    SubscriptionOut,
    UsageEntryOut,
    plan_out,
)
from polyclinic.billing.stripe_billing import stripe_billing
from polyclinic.billing.subscriptions import NO_SUBSCRIPTION
from polyclinic.db.context import TenantInfo
from polyclinic.db.session import platform_session
from polyclinic.errors import NotFound
from polyclinic.tenancy.naming import clinic_url
from polyclinic.web.envelope import Envelope, PagedEnvelope, ok, page
from polyclinic.web.openapi import error_responses
from polyclinic.web.paging import Limit, Offset
from polyclinic.web.state import Runtime

READ_BILLING = {"permission": ("billing", "read")}


class QuotaEntryRepository(SQLAlchemyAsyncRepository[QuotaEntry]):
    model_type = QuotaEntry


class ClinicBillingController(Controller):
    path = "/billing"
    tags = ["clinic: billing"]
    opt = READ_BILLING

    @get(
        "/subscription",
        summary="This clinic's plan, status, period and quota",
        responses=error_responses(401, 403, 404),
    )
    async def subscription(
        self,
        clinic_db: NamedDependency[AsyncSession],
        clinic: NamedDependency[TenantInfo],
        runtime: NamedDependency[Runtime],
    ) -> Envelope[SubscriptionOut]:
        engine = QuotaEngine(clinic_db, clinic.id, runtime.settings.past_due_grace_days)
        row = await engine.subscription()
        if row is None:
            raise NotFound(NO_SUBSCRIPTION)
        subscription, plan = row
        usage = await engine.usage(subscription, plan)
        await clinic_db.commit()  # the period row may just have been opened
        return ok(
            SubscriptionOut(
                plan=plan_out(plan),
                status=str(subscription.status),
                current_period_start=subscription.current_period_start,
                current_period_end=subscription.current_period_end,
                trial_end=subscription.trial_end,
                cancel_at_period_end=subscription.cancel_at_period_end,
                quota=Quota(
                    included=usage.included,
                    used=usage.used,
                    remaining=usage.remaining,
                    overage=usage.overage,
                ),
            )
        )

    @get(
        "/usage",
        summary="The quota ledger, newest first",
        responses=error_responses(400, 401, 403),
    )
    async def usage(
        self,
        clinic_db: NamedDependency[AsyncSession],
        clinic: NamedDependency[TenantInfo],
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> PagedEnvelope[UsageEntryOut]:
        rows, total = await QuotaEntryRepository(session=clinic_db).get_many_and_count(
            LimitOffset(limit, offset),
            OrderBy("created_at", "desc"),
            QuotaEntry.tenant_id == clinic.id,
        )
        items = [
            UsageEntryOut(
                appointment_id=e.appointment_id,
                kind=e.kind,
                overage=e.overage,
                created_at=e.created_at,
            )
            for e in rows
        ]
        return page(items, total=total, limit=limit, offset=offset)


class ChangePlanRequest(msgspec.Struct, rename="camel"):
    plan_code: Annotated[str, msgspec.Meta(min_length=1, max_length=40)]


class PlanChangeOut(msgspec.Struct, rename="camel"):
    plan: PlanOut
    effective: str
    effective_at: datetime.datetime | None


class PaymentPageOut(msgspec.Struct, rename="camel"):
    kind: str  # "checkout" to start paying, "portal" to manage a paid subscription
    url: str


class CancellationOut(msgspec.Struct, rename="camel"):
    status: str
    cancel_at_period_end: bool
    current_period_end: datetime.datetime


MANAGE_BILLING = {"permission": ("billing", "manage")}


MANAGE_RESPONSES = error_responses(400, 401, 403, 404, 409, 422, 502, 503)


class ClinicSubscriptionController(Controller):
    """What a clinic admin (or billing staff) changes about the clinic's subscription."""

    path = "/billing"
    tags = ["clinic: billing"]
    opt = MANAGE_BILLING

    @post(
        "/change-plan",
        status_code=HTTP_200_OK,
        summary="Change plan: upgrades apply at once, downgrades at the end of the period",
        responses=MANAGE_RESPONSES,
    )
    async def change_plan(
        self,
        data: JSONBody[ChangePlanRequest],
        clinic: NamedDependency[TenantInfo],
        runtime: NamedDependency[Runtime],
    ) -> Envelope[PlanChangeOut]:
        async with changes_for(runtime, clinic) as changes:
            subscription, plan, now = await changes.change_plan(data.plan_code)
        if now:
            change = PlanChangeOut(plan=plan_out(plan), effective="now", effective_at=None)
            return ok(change, f"Now on the {plan.name} plan")
        change = PlanChangeOut(
            plan=plan_out(plan),
            effective="period_end",
            effective_at=subscription.current_period_end,
        )
        return ok(change, f"The {plan.name} plan starts when the current period ends")

    @post(
        "/portal",
        status_code=HTTP_200_OK,
        summary="A Stripe page to pay: Checkout to add a card, or the customer portal",
        responses=MANAGE_RESPONSES,
    )
    async def payment_page(
        self, clinic: NamedDependency[TenantInfo], runtime: NamedDependency[Runtime]
    ) -> Envelope[PaymentPageOut]:
        settings = runtime.settings
        return_url = clinic_url(settings, clinic.slug, "/billing")
        async with changes_for(runtime, clinic) as changes:
            kind, url = await changes.payment_page(clinic, return_url)
        return ok(PaymentPageOut(kind=kind, url=url))

    @post(
        "/cancel",
        status_code=HTTP_200_OK,
        summary="End the subscription when the current period ends",
        responses=MANAGE_RESPONSES,
    )
    async def cancel(
        self, clinic: NamedDependency[TenantInfo], runtime: NamedDependency[Runtime]
    ) -> Envelope[CancellationOut]:
        async with changes_for(runtime, clinic) as changes:
            subscription = await changes.cancel_at_period_end(True)
        return ok(cancellation_out(subscription), "The subscription ends with this period")

    @post(
        "/resume",
        status_code=HTTP_200_OK,
        summary="Keep the subscription after all (undo a cancellation before the period ends)",
        responses=MANAGE_RESPONSES,
    )
    async def resume(
        self, clinic: NamedDependency[TenantInfo], runtime: NamedDependency[Runtime]
    ) -> Envelope[CancellationOut]:
        async with changes_for(runtime, clinic) as changes:
            subscription = await changes.cancel_at_period_end(False)
        return ok(cancellation_out(subscription), "The subscription continues")


def cancellation_out(subscription: Subscription) -> CancellationOut:
    return CancellationOut(
        status=str(subscription.status),
        cancel_at_period_end=subscription.cancel_at_period_end,
        current_period_end=subscription.current_period_end,
    )


@contextlib.asynccontextmanager
async def changes_for(runtime: Runtime, clinic: TenantInfo) -> AsyncIterator[SubscriptionChanges]:
    async with platform_session(runtime.engine) as session:
        yield SubscriptionChanges(session, clinic.id, stripe_billing(runtime.settings))
