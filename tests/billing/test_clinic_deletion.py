"""A deleted clinic stops paying: its Stripe subscription is cancelled at once and its
subscription here ends `canceled`. When Stripe refuses, the clinic is deleted all the same,
the failure is logged and shown on the clinic, and billing housekeeping cancels it later."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.config import Settings
from polyclinic.platform.jobs import housekeeping
from tests.billing.test_stripe_billing import paying_clinic, subscription_of
from tests.billing.test_stripe_webhooks import deliver
from tests.conftest import Client
from tests.identity.conftest import ClinicApi
from tests.stripe_stand_in import StripeStandIn


def cancellations(stripe: StripeStandIn, stripe_id: str) -> list[str]:
    return [m for m, path, _ in stripe.requests if path == f"/v1/subscriptions/{stripe_id}"]


async def delete_clinic(client: Client, admin_token: str, clinic: ClinicApi) -> dict:  # type: ignore[type-arg]
    deleted = await client.platform(
        "DELETE", f"/platform/v1/clinics/{clinic.tenant.id}", admin_token
    )
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["data"]["status"] == "deleted"
    return deleted.json()["data"]


async def test_deleting_a_paying_clinic_cancels_its_stripe_subscription(
    client: Client,
    admin_token: str,
    clinic_a: ClinicApi,
    clinic_b: ClinicApi,
    engine: AsyncEngine,
    stripe: StripeStandIn,
) -> None:
    _, stripe_id = await paying_clinic(clinic_a, engine, stripe)
    _, other_id = await paying_clinic(clinic_b, engine, stripe)
    stripe.requests.clear()

    await delete_clinic(client, admin_token, clinic_a)

    assert cancellations(stripe, stripe_id) == ["DELETE"]
    assert stripe.subscriptions[stripe_id]["status"] == "canceled"
    subscription, _ = await subscription_of(engine, clinic_a.tenant)
    assert str(subscription.status) == "canceled"
    assert subscription.lapsed_since is not None
    # The other clinic, paying too, is untouched here and on Stripe.
    assert stripe.subscriptions[other_id]["status"] != "canceled"
    other, _ = await subscription_of(engine, clinic_b.tenant)
    assert str(other.status) != "canceled"
    # Stripe's own word on it arrives later, and changes nothing.
    await deliver(client, stripe.drain(stripe_id))
    subscription, _ = await subscription_of(engine, clinic_a.tenant)
    assert str(subscription.status) == "canceled"


async def test_a_trial_without_stripe_ends_here_without_asking_stripe(
    client: Client,
    admin_token: str,
    clinic_a: ClinicApi,
    engine: AsyncEngine,
    stripe: StripeStandIn,
) -> None:
    data = await delete_clinic(client, admin_token, clinic_a)

    assert stripe.requests == []
    subscription, _ = await subscription_of(engine, clinic_a.tenant)
    assert str(subscription.status) == "canceled"
    assert data["lastError"] is None


async def test_a_refused_cancellation_is_logged_shown_and_retried_by_housekeeping(
    client: Client,
    admin_token: str,
    clinic_a: ClinicApi,
    engine: AsyncEngine,
    settings: Settings,
    stripe: StripeStandIn,
    caplog: pytest.LogCaptureFixture,
) -> None:
    _, stripe_id = await paying_clinic(clinic_a, engine, stripe)
    before, _ = await subscription_of(engine, clinic_a.tenant)
    stripe.refuse_next = "Stripe is having a bad day"

    await delete_clinic(client, admin_token, clinic_a)

    # Deleted all the same; nothing cancelled yet, anywhere, and it says why.
    assert (await client.clinic(clinic_a.tenant.slug)).status_code == 404
    assert stripe.subscriptions[stripe_id]["status"] != "canceled"
    subscription, _ = await subscription_of(engine, clinic_a.tenant)
    assert subscription.status == before.status
    assert any("cancel subscription" in r.getMessage() for r in caplog.records)
    shown = await client.platform("GET", f"/platform/v1/clinics/{clinic_a.tenant.id}", admin_token)
    last_error = shown.json()["data"]["lastError"]
    assert "Stripe subscription failed" in last_error
    assert "Stripe is having a bad day" in last_error

    await housekeeping(engine, None, settings)

    assert stripe.subscriptions[stripe_id]["status"] == "canceled"
    subscription, _ = await subscription_of(engine, clinic_a.tenant)
    assert str(subscription.status) == "canceled"
    shown = await client.platform("GET", f"/platform/v1/clinics/{clinic_a.tenant.id}", admin_token)
    assert shown.json()["data"]["lastError"] is None
    # Once done, housekeeping leaves it alone.
    stripe.requests.clear()
    await housekeeping(engine, None, settings)
    assert cancellations(stripe, stripe_id) == []


async def test_a_subscription_stripe_already_ended_counts_as_cancelled(
    client: Client,
    admin_token: str,
    clinic_a: ClinicApi,
    engine: AsyncEngine,
    stripe: StripeStandIn,
) -> None:
    _, stripe_id = await paying_clinic(clinic_a, engine, stripe)
    stripe.subscriptions[stripe_id]["status"] = "canceled"  # its answer to us was lost

    data = await delete_clinic(client, admin_token, clinic_a)

    subscription, _ = await subscription_of(engine, clinic_a.tenant)
    assert str(subscription.status) == "canceled"
    assert data["lastError"] is None
