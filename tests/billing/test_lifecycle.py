"""What time does: periods roll over, trials end, lapsed clinics are suspended and paying
reopens them."""

from __future__ import annotations

import asyncio
import datetime
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.billing.models import Plan
from polyclinic.config import Settings
from polyclinic.db.base import utcnow
from polyclinic.db.session import platform_session
from polyclinic.platform.jobs import housekeeping
from polyclinic.web.state import Runtime
from tests.billing.test_quota import consume, set_subscription
from tests.billing.test_stripe_billing import admin_of, subscription_of
from tests.billing.test_stripe_webhooks import deliver
from tests.identity.conftest import ClinicApi
from tests.stripe_stand_in import StripeStandIn

HOUR = datetime.timedelta(hours=1)


@pytest.fixture
async def runtime(app: object) -> AsyncIterator[Runtime]:
    """The app's runtime, with its tenant-cache listener running as in a served process."""
    runtime: Runtime = app.state.runtime  # type: ignore[attr-defined]
    ready = asyncio.Event()
    listener = asyncio.create_task(runtime.resolver.listen(ready))
    await asyncio.wait_for(ready.wait(), 5)
    yield runtime
    listener.cancel()


async def plan_id(engine: AsyncEngine, code: str) -> uuid.UUID:
    async with platform_session(engine) as session:
        found = await session.scalar(select(Plan.id).where(Plan.code == code, Plan.version == 1))
    assert found is not None
    return found


async def answer_becomes(clinic: ClinicApi, token: str, status: int) -> dict:  # type: ignore[type-arg]
    """The clinic's own page as its admin sees it, once the caches have heard of the change."""
    for _ in range(50):
        response = await clinic.call("GET", "/clinic", token)
        if response.status_code == status:
            return response.json()  # type: ignore[no-any-return]
        await asyncio.sleep(0.05)
    raise AssertionError(f"still {response.status_code}: {response.text}")


async def test_a_period_rolls_over_and_a_pending_downgrade_starts_with_the_new_one(
    clinic_a: ClinicApi, clinic_b: ClinicApi, engine: AsyncEngine, settings: Settings
) -> None:
    now = utcnow()
    for clinic in (clinic_a, clinic_b):
        await set_subscription(
            engine,
            clinic.tenant,
            status="active",
            plan_id=await plan_id(engine, "growth"),
            current_period_start=now - datetime.timedelta(days=31),
            current_period_end=now - HOUR,
            trial_end=None,
        )
    await set_subscription(
        engine, clinic_a.tenant, pending_plan_id=await plan_id(engine, "starter")
    )
    await set_subscription(engine, clinic_b.tenant, cancel_at_period_end=True)

    await housekeeping(engine, None, settings)

    rolled, code = await subscription_of(engine, clinic_a.tenant)
    assert code == "starter" and rolled.pending_plan_id is None and str(rolled.status) == "active"
    assert rolled.current_period_start == now - HOUR
    assert rolled.current_period_end > now + datetime.timedelta(days=27)
    usage = await consume(engine, clinic_a.tenant, uuid.uuid4())
    assert (usage.included, usage.used) == (150, 1)  # a fresh period on the new plan
    ended, _ = await subscription_of(engine, clinic_b.tenant)
    assert str(ended.status) == "canceled" and ended.lapsed_since == now - HOUR


async def test_a_trial_that_ends_without_a_card_leaves_the_clinic_unpaid(
    clinic_a: ClinicApi, engine: AsyncEngine, settings: Settings
) -> None:
    await set_subscription(
        engine, clinic_a.tenant, current_period_end=utcnow() - HOUR, trial_end=utcnow() - HOUR
    )

    await housekeeping(engine, None, settings)
    await housekeeping(engine, None, settings)  # nothing more the second time

    subscription, _ = await subscription_of(engine, clinic_a.tenant)
    assert str(subscription.status) == "unpaid"
    token = await admin_of(clinic_a, engine)
    mine = await clinic_a.call("GET", "/billing/subscription", token)
    assert mine.json()["data"]["status"] == "unpaid"
    with pytest.raises(Exception, match="subscription is unpaid"):
        await consume(engine, clinic_a.tenant, uuid.uuid4())


async def test_a_clinic_lapsed_too_long_is_suspended_and_paying_reopens_it(
    clinic_a: ClinicApi,
    clinic_b: ClinicApi,
    engine: AsyncEngine,
    settings: Settings,
    runtime: Runtime,
    stripe: StripeStandIn,
) -> None:
    days = settings.billing_suspend_after_days
    token = await admin_of(clinic_a, engine)
    other_token = await admin_of(clinic_b, engine)
    await set_subscription(
        engine,
        clinic_a.tenant,
        status="unpaid",
        trial_end=utcnow() - datetime.timedelta(days=days),
        lapsed_since=utcnow() - datetime.timedelta(days=days) + HOUR,
    )
    await housekeeping(engine, runtime.redis, settings)
    await answer_becomes(clinic_a, token, 200)  # not yet: an hour to go

    await set_subscription(
        engine, clinic_a.tenant, lapsed_since=utcnow() - datetime.timedelta(days=days, hours=1)
    )
    await housekeeping(engine, runtime.redis, settings)

    refused = await answer_becomes(clinic_a, token, 403)
    assert "subscription is unpaid or canceled" in refused["message"]
    await answer_becomes(clinic_b, other_token, 200)
    billing = await clinic_a.call("GET", "/billing/subscription", token)
    assert billing.status_code == 200  # the admin can still see what is owed, and pay

    page = await clinic_a.call("POST", "/billing/portal", token)
    assert page.json()["data"]["kind"] == "checkout"
    await deliver(
        clinic_a.client, stripe.complete_checkout(page.json()["data"]["url"].rsplit("/", 1)[1])
    )

    await answer_becomes(clinic_a, token, 200)
    subscription, _ = await subscription_of(engine, clinic_a.tenant)
    assert str(subscription.status) == "active" and subscription.lapsed_since is None


async def test_billing_does_not_reopen_a_clinic_the_platform_suspended(
    clinic_a: ClinicApi,
    engine: AsyncEngine,
    settings: Settings,
    runtime: Runtime,
    admin_token: str,
) -> None:
    token = await admin_of(clinic_a, engine)
    suspended = await clinic_a.client.platform(
        "POST", f"/platform/v1/clinics/{clinic_a.tenant.id}/suspend", admin_token
    )
    assert suspended.json()["data"]["suspendedBy"] == "platform"

    await housekeeping(engine, runtime.redis, settings)

    refused = await answer_becomes(clinic_a, token, 403)
    assert "contact the platform" in refused["message"]
    billing = await clinic_a.call("GET", "/billing/subscription", token)
    assert billing.status_code == 403  # only a billing suspension leaves billing open


async def test_the_platform_can_take_over_a_billing_suspension_and_payment_then_waits(
    clinic_a: ClinicApi,
    engine: AsyncEngine,
    settings: Settings,
    runtime: Runtime,
    admin_token: str,
) -> None:
    await set_subscription(
        engine,
        clinic_a.tenant,
        status="unpaid",
        lapsed_since=utcnow() - datetime.timedelta(days=settings.billing_suspend_after_days + 1),
    )
    await housekeeping(engine, runtime.redis, settings)
    path = f"/platform/v1/clinics/{clinic_a.tenant.id}"

    taken_over = await clinic_a.client.platform("POST", f"{path}/suspend", admin_token)
    twice = await clinic_a.client.platform("POST", f"{path}/suspend", admin_token)
    await set_subscription(engine, clinic_a.tenant, status="active", lapsed_since=None)
    await housekeeping(engine, runtime.redis, settings)

    assert taken_over.status_code == 200 and taken_over.json()["data"]["suspendedBy"] == "platform"
    assert twice.status_code == 409
    still = await clinic_a.client.platform("GET", path, admin_token)
    assert still.json()["data"]["status"] == "suspended"
