"""The quota engine: no overshoot under concurrency, once per appointment, policies, periods,
grace, and row-level security between clinics."""

from __future__ import annotations

import asyncio
import datetime
import uuid

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.billing.models import (
    OveragePolicy,
    Plan,
    QuotaEntry,
    QuotaPeriod,
    Subscription,
    SubscriptionStatus,
)
from polyclinic.billing.quota import PaymentRequired, QuotaEngine, Usage
from polyclinic.db.session import clinic_session, clinic_transaction, platform_session
from polyclinic.tenancy.models import Tenant
from polyclinic.tenancy.resolver import tenant_info


async def put_on_plan(
    engine: AsyncEngine,
    tenant: Tenant,
    *,
    included: int | None,
    policy: OveragePolicy,
    features: dict[str, bool] | None = None,
) -> Plan:
    async with platform_session(engine) as session:
        plan = Plan(
            code=f"test-{uuid.uuid4().hex[:8]}",
            version=1,
            name="Test plan",
            price_minor=1000,
            currency="EUR",
            interval="month",
            trial_days=0,
            appointments_included=included,
            overage_policy=policy,
            overage_price_minor=50 if policy == "charge" else None,
            features=features or {},
            status="active",
            is_default=False,
        )
        session.add(plan)
        await session.flush()
        await session.execute(
            update(Subscription).where(Subscription.tenant_id == tenant.id).values(plan_id=plan.id)
        )
        await session.commit()
        return plan


async def set_subscription(engine: AsyncEngine, tenant: Tenant, **values: object) -> None:
    async with platform_session(engine) as session:
        await session.execute(
            update(Subscription).where(Subscription.tenant_id == tenant.id).values(**values)
        )
        await session.commit()


async def consume(engine: AsyncEngine, tenant: Tenant, appointment: uuid.UUID) -> Usage:
    info = tenant_info(tenant)
    assert info is not None
    async with clinic_transaction(engine, info) as session:
        return await QuotaEngine(session, tenant.id, 7).consume(appointment)


async def release(engine: AsyncEngine, tenant: Tenant, appointment: uuid.UUID) -> bool:
    info = tenant_info(tenant)
    assert info is not None
    async with clinic_transaction(engine, info) as session:
        return await QuotaEngine(session, tenant.id, 7).release(appointment)


async def counters(engine: AsyncEngine, tenant: Tenant) -> tuple[int, int, int]:
    async with platform_session(engine) as session:
        used, overage = (
            await session.execute(
                select(func.sum(QuotaPeriod.used), func.sum(QuotaPeriod.overage)).where(
                    QuotaPeriod.tenant_id == tenant.id
                )
            )
        ).one()
        consumed = await session.scalar(
            select(func.count()).where(
                QuotaEntry.tenant_id == tenant.id, QuotaEntry.kind == "consume"
            )
        )
        released = await session.scalar(
            select(func.count()).where(
                QuotaEntry.tenant_id == tenant.id, QuotaEntry.kind == "release"
            )
        )
    return int(used or 0), int(overage or 0), int(consumed or 0) - int(released or 0)


async def test_a_new_clinic_starts_on_a_trial_of_the_default_plan(
    engine: AsyncEngine, two_clinics: tuple[Tenant, Tenant]
) -> None:
    a, _ = two_clinics
    async with platform_session(engine) as session:
        subscription, plan = (
            await session.execute(
                select(Subscription, Plan)
                .join(Plan, Plan.id == Subscription.plan_id)
                .where(Subscription.tenant_id == a.id)
            )
        ).one()
    assert plan.is_default and plan.code == "starter"
    assert subscription.status == SubscriptionStatus.TRIALING
    assert subscription.trial_end is not None
    assert (subscription.current_period_end - subscription.current_period_start).days == 14


async def test_concurrent_bookings_never_overshoot_the_quota(
    engine: AsyncEngine, two_clinics: tuple[Tenant, Tenant]
) -> None:
    a, _ = two_clinics
    quota = 5
    await put_on_plan(engine, a, included=quota, policy=OveragePolicy.BLOCK)

    outcomes = await asyncio.gather(
        *(consume(engine, a, uuid.uuid4()) for _ in range(3 * quota)), return_exceptions=True
    )

    booked = [o for o in outcomes if isinstance(o, Usage)]
    refused = [o for o in outcomes if isinstance(o, PaymentRequired)]
    assert len(booked) == quota and len(refused) == 2 * quota
    assert all(o.status_code == 402 and "larger plan" in o.message for o in refused)
    assert await counters(engine, a) == (quota, 0, quota)


async def test_once_per_appointment(
    engine: AsyncEngine, two_clinics: tuple[Tenant, Tenant]
) -> None:
    a, _ = two_clinics
    await put_on_plan(engine, a, included=10, policy=OveragePolicy.BLOCK)
    appointment = uuid.uuid4()

    first = await consume(engine, a, appointment)
    again = await consume(engine, a, appointment)
    assert first.used == again.used == 1

    assert await release(engine, a, appointment) is True
    assert await release(engine, a, appointment) is False
    assert await release(engine, a, uuid.uuid4()) is False
    assert await counters(engine, a) == (0, 0, 0)


async def test_charge_policy_records_overage(
    engine: AsyncEngine, two_clinics: tuple[Tenant, Tenant]
) -> None:
    a, _ = two_clinics
    await put_on_plan(engine, a, included=2, policy=OveragePolicy.CHARGE)
    appointments = [uuid.uuid4() for _ in range(3)]
    results = [await consume(engine, a, x) for x in appointments]

    assert [(r.used, r.overage) for r in results] == [(1, 0), (2, 0), (3, 1)]
    assert results[-1].remaining == 0
    await release(engine, a, appointments[-1])
    assert await counters(engine, a) == (2, 0, 2)


async def test_threshold_events_fire_once_per_period(
    engine: AsyncEngine, two_clinics: tuple[Tenant, Tenant]
) -> None:
    a, _ = two_clinics
    await put_on_plan(engine, a, included=5, policy=OveragePolicy.BLOCK)
    crossed = [(await consume(engine, a, uuid.uuid4())).crossed for _ in range(5)]
    assert crossed == [(), (), (), (80,), (100,)]


async def test_a_new_period_starts_fresh(
    engine: AsyncEngine, two_clinics: tuple[Tenant, Tenant]
) -> None:
    a, _ = two_clinics
    await put_on_plan(engine, a, included=1, policy=OveragePolicy.BLOCK)
    await consume(engine, a, uuid.uuid4())
    with pytest.raises(PaymentRequired):
        await consume(engine, a, uuid.uuid4())

    start = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=1)
    await set_subscription(
        engine,
        a,
        current_period_start=start,
        current_period_end=start + datetime.timedelta(days=30),
    )

    fresh = await consume(engine, a, uuid.uuid4())
    assert (fresh.used, fresh.remaining) == (1, 0)


async def test_past_due_clinics_book_through_the_grace_period_only(
    engine: AsyncEngine, two_clinics: tuple[Tenant, Tenant]
) -> None:
    a, _ = two_clinics
    now = datetime.datetime.now(datetime.UTC)
    await set_subscription(
        engine, a, status="past_due", past_due_since=now - datetime.timedelta(days=2)
    )
    await consume(engine, a, uuid.uuid4())

    await set_subscription(engine, a, past_due_since=now - datetime.timedelta(days=8))
    with pytest.raises(PaymentRequired, match="past due"):
        await consume(engine, a, uuid.uuid4())
    for status in ("unpaid", "canceled", "paused"):
        await set_subscription(engine, a, status=status)
        with pytest.raises(PaymentRequired, match=status):
            await consume(engine, a, uuid.uuid4())


async def test_clinics_cannot_reach_each_others_billing_rows(
    engine: AsyncEngine, two_clinics: tuple[Tenant, Tenant]
) -> None:
    a, b = two_clinics
    shared_appointment = uuid.uuid4()  # the same id booked at both clinics counts at each
    await consume(engine, a, shared_appointment)
    await consume(engine, b, shared_appointment)
    assert (await counters(engine, a))[0] == (await counters(engine, b))[0] == 1

    info = tenant_info(a)
    assert info is not None
    async with clinic_session(engine, info) as session:
        tenants = (
            (await session.execute(text("SELECT tenant_id FROM billing.subscriptions")))
            .scalars()
            .all()
        )
        periods = (
            (await session.execute(text("SELECT tenant_id FROM billing.quota_periods")))
            .scalars()
            .all()
        )
        assert tenants == [a.id] and set(periods) == {a.id}
        changed = await session.execute(
            text("UPDATE billing.quota_periods SET used = 0 WHERE tenant_id = :b"), {"b": b.id}
        )
        assert changed.rowcount == 0
        with pytest.raises(DBAPIError, match="row-level security"):
            await session.execute(
                text(
                    "INSERT INTO billing.quota_periods "
                    "(id, tenant_id, period_start, period_end, used, overage, created_at) "
                    "VALUES (gen_random_uuid(), :b, now(), now(), 0, 0, now())"
                ),
                {"b": b.id},
            )
        await session.rollback()
        with pytest.raises(DBAPIError, match="permission denied"):
            await session.execute(text("UPDATE billing.subscriptions SET status = 'active'"))
    assert (await counters(engine, b))[0] == 1
