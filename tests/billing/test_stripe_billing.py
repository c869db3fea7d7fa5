"""A clinic pays through Stripe: the SDK talks to the local stand-in, Stripe's events come
back signed through the webhook, and the subscription follows them."""

from __future__ import annotations

import datetime
import uuid

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.app import create_app
from polyclinic.billing.models import Plan, QuotaPeriod, Subscription
from polyclinic.config import Settings
from polyclinic.db.session import platform_session
from polyclinic.tenancy.models import Tenant
from tests.billing.test_quota import consume
from tests.billing.test_stripe_webhooks import deliver
from tests.conftest import Client, make_settings
from tests.identity.conftest import ClinicApi, add_user
from tests.stripe_stand_in import StripeStandIn


async def subscription_of(engine: AsyncEngine, tenant: Tenant) -> tuple[Subscription, str]:
    async with platform_session(engine) as session:
        subscription, code = (
            await session.execute(
                select(Subscription, Plan.code)
                .join(Plan, Plan.id == Subscription.plan_id)
                .where(Subscription.tenant_id == tenant.id)
            )
        ).one()
        return subscription, code


async def admin_of(clinic: ClinicApi, engine: AsyncEngine) -> str:
    email = f"owner-{uuid.uuid4().hex[:6]}@example.com"
    await add_user(engine, clinic.tenant, email, "clinic_admin")
    return (await clinic.login(email))["accessToken"]


async def paying_clinic(
    clinic: ClinicApi, engine: AsyncEngine, stripe: StripeStandIn
) -> tuple[str, str]:
    """A clinic that went through Checkout: (admin token, Stripe subscription id)."""
    token = await admin_of(clinic, engine)
    page = await clinic.call("POST", "/billing/portal", token)
    assert page.status_code == 200, page.text
    session_id = page.json()["data"]["url"].rsplit("/", 1)[1]
    await deliver(clinic.client, stripe.complete_checkout(session_id))
    subscription, _ = await subscription_of(engine, clinic.tenant)
    assert subscription.stripe_subscription_id is not None
    return token, subscription.stripe_subscription_id


async def test_checkout_starts_the_paid_subscription_and_then_the_portal_manages_it(
    clinic_a: ClinicApi, clinic_b: ClinicApi, engine: AsyncEngine, stripe: StripeStandIn
) -> None:
    token = await admin_of(clinic_a, engine)

    first = await clinic_a.call("POST", "/billing/portal", token)
    again = await clinic_a.call("POST", "/billing/portal", token)

    assert first.status_code == again.status_code == 200, first.text
    assert first.json()["data"]["kind"] == "checkout"
    customers = [
        c
        for c in stripe.customers.values()
        if c["metadata"]["tenant_id"] == str(clinic_a.tenant.id)
    ]
    assert len(customers) == 1  # asked twice, one customer
    assert customers[0]["email"] == clinic_a.tenant.admin_email
    checkout = [p for m, path, p in stripe.requests if path == "/v1/checkout/sessions"]
    assert checkout[0]["line_items"] == [{"price": "price_starter_monthly", "quantity": "1"}]
    assert checkout[0]["client_reference_id"] == str(clinic_a.tenant.id)
    assert int(checkout[0]["subscription_data"]["trial_end"]) > datetime.datetime.now().timestamp()
    assert checkout[0]["success_url"] == f"https://{clinic_a.host}/billing"

    session_id = first.json()["data"]["url"].rsplit("/", 1)[1]
    await deliver(clinic_a.client, stripe.complete_checkout(session_id))

    subscription, code = await subscription_of(engine, clinic_a.tenant)
    assert (str(subscription.status), code) == ("trialing", "starter")
    assert subscription.stripe_customer_id == customers[0]["id"]
    portal = await clinic_a.call("POST", "/billing/portal", token)
    assert portal.json()["data"]["kind"] == "portal"
    assert portal.json()["data"]["url"].startswith("https://billing.stand-in.test/")
    other, _ = await subscription_of(engine, clinic_b.tenant)
    assert other.stripe_customer_id is None and other.stripe_subscription_id is None


async def test_an_upgrade_on_stripe_applies_at_once_and_grows_the_quota(
    clinic_a: ClinicApi, engine: AsyncEngine, stripe: StripeStandIn
) -> None:
    token, stripe_id = await paying_clinic(clinic_a, engine, stripe)
    await consume(engine, clinic_a.tenant, uuid.uuid4())

    upgraded = await clinic_a.call(
        "POST", "/billing/change-plan", token, json={"planCode": "growth"}
    )

    assert upgraded.status_code == 200, upgraded.text
    assert upgraded.json()["data"]["effective"] == "now"
    on_stripe = stripe.subscriptions[stripe_id]
    assert on_stripe["items"]["data"][0]["price"]["id"] == "price_growth_monthly"
    assert on_stripe["last_proration_behavior"] == "always_invoice"
    await deliver(clinic_a.client, stripe.drain(stripe_id))
    mine = await clinic_a.call("GET", "/billing/subscription", token)
    assert mine.json()["data"]["plan"]["code"] == "growth"
    assert mine.json()["data"]["quota"] == {
        "included": 1000,
        "used": 1,
        "remaining": 999,
        "overage": 0,
    }


async def test_a_downgrade_waits_for_the_renewal_even_after_stripe_confirms_the_price(
    clinic_a: ClinicApi, engine: AsyncEngine, stripe: StripeStandIn
) -> None:
    token, stripe_id = await paying_clinic(clinic_a, engine, stripe)
    await clinic_a.call("POST", "/billing/change-plan", token, json={"planCode": "growth"})
    await deliver(clinic_a.client, stripe.drain(stripe_id))

    down = await clinic_a.call("POST", "/billing/change-plan", token, json={"planCode": "starter"})

    assert down.status_code == 200, down.text
    assert down.json()["data"]["effective"] == "period_end"
    assert stripe.subscriptions[stripe_id]["last_proration_behavior"] == "none"
    await deliver(clinic_a.client, stripe.drain(stripe_id))  # Stripe: price is now starter's
    subscription, code = await subscription_of(engine, clinic_a.tenant)
    assert code == "growth" and subscription.pending_plan_id is not None
    first_period = subscription.current_period_start

    await deliver(clinic_a.client, stripe.renew(stripe_id))

    subscription, code = await subscription_of(engine, clinic_a.tenant)
    assert code == "starter" and subscription.pending_plan_id is None
    assert subscription.current_period_start > first_period
    assert str(subscription.status) == "active"
    usage = await consume(engine, clinic_a.tenant, uuid.uuid4())
    assert (usage.included, usage.used) == (150, 1)  # the new period, on the smaller plan


async def test_cancel_at_period_end_on_stripe_then_the_subscription_ends(
    clinic_a: ClinicApi, engine: AsyncEngine, stripe: StripeStandIn
) -> None:
    token, stripe_id = await paying_clinic(clinic_a, engine, stripe)

    cancelled = await clinic_a.call("POST", "/billing/cancel", token)
    twice = await clinic_a.call("POST", "/billing/cancel", token)
    resumed = await clinic_a.call("POST", "/billing/resume", token)
    cancelled_again = await clinic_a.call("POST", "/billing/cancel", token)

    assert cancelled.status_code == 200 and cancelled.json()["data"]["cancelAtPeriodEnd"] is True
    assert twice.status_code == 409
    assert resumed.json()["data"]["cancelAtPeriodEnd"] is False
    assert cancelled_again.status_code == 200
    assert stripe.subscriptions[stripe_id]["cancel_at_period_end"] is True
    await deliver(clinic_a.client, stripe.drain(stripe_id))
    await deliver(clinic_a.client, stripe.renew(stripe_id))

    subscription, _ = await subscription_of(engine, clinic_a.tenant)
    assert str(subscription.status) == "canceled" and subscription.lapsed_since is not None
    booking = await clinic_a.call("POST", "/billing/cancel", token)
    assert booking.status_code == 409


async def test_when_stripe_refuses_nothing_changes_here(
    clinic_a: ClinicApi, engine: AsyncEngine, stripe: StripeStandIn
) -> None:
    token, stripe_id = await paying_clinic(clinic_a, engine, stripe)
    stripe.refuse_next = "Your card was declined."

    refused = await clinic_a.call(
        "POST", "/billing/change-plan", token, json={"planCode": "growth"}
    )

    assert refused.status_code == 502
    assert "Your card was declined." in refused.json()["message"]
    subscription, code = await subscription_of(engine, clinic_a.tenant)
    assert code == "starter" and subscription.pending_plan_id is None
    async with platform_session(engine) as session:
        periods = (
            await session.scalars(
                select(QuotaPeriod.included).where(QuotaPeriod.tenant_id == clinic_a.tenant.id)
            )
        ).all()
    assert set(periods) <= {150}
    assert stripe.subscriptions[stripe_id]["items"]["data"][0]["price"]["id"] == (
        "price_starter_monthly"
    )


async def test_without_stripe_configured_the_portal_says_so(
    clinic_a: ClinicApi, engine: AsyncEngine, settings: Settings
) -> None:
    token = await admin_of(clinic_a, engine)
    bare = create_app(make_settings(settings.database_url))
    client = Client(bare)
    try:
        answer = await ClinicApi(client, clinic_a.tenant).call("POST", "/billing/portal", token)
    finally:
        await client.http.aclose()
        await bare.state.runtime.engine.dispose()
    assert answer.status_code == 503
    assert "not configured" in answer.json()["message"]


@pytest.mark.parametrize("role", ["receptionist", "doctor"])
async def test_only_admins_and_billing_staff_reach_the_payment_page(
    clinic_a: ClinicApi, engine: AsyncEngine, stripe: StripeStandIn, role: str
) -> None:
    email = f"{role}-{uuid.uuid4().hex[:6]}@example.com"
    await add_user(engine, clinic_a.tenant, email, role)
    token = (await clinic_a.login(email))["accessToken"]
    answer = await clinic_a.call("POST", "/billing/portal", token)
    assert answer.status_code == 403
    assert not [r for r in stripe.requests if r[1] == "/v1/customers"]
