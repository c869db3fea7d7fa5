"""Stripe webhooks: signed with the SDK's own scheme, verified for real, stored once, applied
in any order and any number of times to the same end state."""

from __future__ import annotations

import json
import random
import time
import uuid

import stripe
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.billing.models import Plan, StripeEvent, Subscription
from polyclinic.db.session import platform_session
from polyclinic.tenancy.models import Tenant
from tests.billing.test_quota import consume
from tests.conftest import STRIPE_TEST_SECRET, Client

START = 1_790_000_000
MONTH = 30 * 86400


def signed(event: dict, secret: str = STRIPE_TEST_SECRET) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(event).encode()
    header = stripe.WebhookSignature.generate_signature_header(
        body.decode(), secret, int(time.time())
    )
    return body, {"stripe-signature": header, "content-type": "application/json"}


def event(kind: str, created: int, obj: dict) -> dict:
    return {
        "id": f"evt_{uuid.uuid4().hex[:16]}",
        "object": "event",
        "type": kind,
        "created": created,
        "data": {"object": obj},
        "livemode": False,
        "api_version": "2024-06-20",
    }


def subscription_object(
    tenant: Tenant, status: str, period: int, price: str, **extra: object
) -> dict:
    return {
        "id": "sub_" + tenant.id.hex[:12],
        "object": "subscription",
        "customer": "cus_" + tenant.id.hex[:12],
        "status": status,
        "cancel_at_period_end": False,
        "metadata": {"tenant_id": str(tenant.id)},
        "current_period_start": START + period * MONTH,
        "current_period_end": START + (period + 1) * MONTH,
        "items": {"data": [{"price": {"id": price}}]},
        **extra,
    }


def life_of_a_subscription(tenant: Tenant) -> list[dict]:
    sub = "sub_" + tenant.id.hex[:12]
    return [
        event(
            "checkout.session.completed",
            START,
            {
                "id": "cs_1",
                "object": "checkout.session",
                "client_reference_id": str(tenant.id),
                "customer": "cus_" + tenant.id.hex[:12],
                "subscription": sub,
            },
        ),
        event(
            "customer.subscription.created",
            START + 1,
            subscription_object(tenant, "active", 0, "price_starter_monthly"),
        ),
        event("invoice.paid", START + 2, {"id": "in_1", "object": "invoice", "subscription": sub}),
        event(
            "invoice.payment_failed",
            START + MONTH + 10,
            {"id": "in_2", "object": "invoice", "subscription": sub},
        ),
        event(
            "customer.subscription.updated",
            START + MONTH + 11,
            subscription_object(tenant, "past_due", 1, "price_growth_monthly"),
        ),
        event(
            "invoice.paid",
            START + MONTH + 500,
            {"id": "in_3", "object": "invoice", "subscription": sub},
        ),
        event(
            "customer.subscription.updated",
            START + MONTH + 501,
            subscription_object(
                tenant, "active", 1, "price_growth_monthly", cancel_at_period_end=True
            ),
        ),
    ]


async def state(engine: AsyncEngine, tenant: Tenant) -> tuple:  # type: ignore[type-arg]
    async with platform_session(engine) as session:
        sub, code = (
            await session.execute(
                select(Subscription, Plan.code)
                .join(Plan, Plan.id == Subscription.plan_id)
                .where(Subscription.tenant_id == tenant.id)
            )
        ).one()
        return (
            str(sub.status),
            code,
            sub.current_period_start,
            sub.current_period_end,
            sub.cancel_at_period_end,
            sub.past_due_since,
            sub.stripe_customer_id,
            sub.stripe_subscription_id,
        )


async def deliver(client: Client, events: list[dict]) -> None:
    for item in events:
        body, headers = signed(item)
        response = await client.platform("POST", "/webhooks/stripe", content=body, headers=headers)
        assert response.status_code == 200, response.text


async def test_replayed_shuffled_events_reach_the_same_state(
    client: Client, engine: AsyncEngine, two_clinics: tuple[Tenant, Tenant]
) -> None:
    in_order, shuffled = two_clinics

    await deliver(client, life_of_a_subscription(in_order))
    events = life_of_a_subscription(shuffled) * 3
    random.Random(7).shuffle(events)
    await deliver(client, events)

    expected = await state(engine, in_order)
    assert expected[:2] == ("active", "growth") and expected[4] is True and expected[5] is None
    assert expected[6] == "cus_" + in_order.id.hex[:12]
    got = await state(engine, shuffled)
    assert got[:6] == expected[:6]
    async with platform_session(engine) as session:
        stored = await session.scalar(
            select(func.count()).where(
                StripeEvent.payload["data"]["object"]["metadata"]["tenant_id"].astext
                == str(shuffled.id)
            )
        )
    assert stored == 3  # its three subscription events, each stored once however often it came


async def test_a_bad_signature_is_refused_and_nothing_is_stored(
    client: Client, engine: AsyncEngine, two_clinics: tuple[Tenant, Tenant]
) -> None:
    forged = event(
        "invoice.paid", START, {"id": "in_x", "object": "invoice", "subscription": "sub_x"}
    )
    body, headers = signed(forged, secret="whsec_someone_else_" + "x" * 20)
    tampered_body, good_headers = signed(forged)

    wrong_key = await client.platform("POST", "/webhooks/stripe", content=body, headers=headers)
    tampered = await client.platform(
        "POST",
        "/webhooks/stripe",
        content=tampered_body.replace(b"in_x", b"in_y"),
        headers=good_headers,
    )
    unsigned = await client.platform(
        "POST",
        "/webhooks/stripe",
        content=tampered_body,
        headers={"content-type": "application/json"},
    )

    assert wrong_key.status_code == tampered.status_code == unsigned.status_code == 400
    async with platform_session(engine) as session:
        assert await session.get(StripeEvent, forged["id"]) is None
    on_a_clinic = await client.request(
        "POST",
        "/webhooks/stripe",
        f"{two_clinics[0].slug}.clinics.test",
        content=tampered_body,
        headers=good_headers,
    )
    assert on_a_clinic.status_code == 404


async def test_an_invoice_that_names_no_subscription_touches_no_clinic(
    client: Client, engine: AsyncEngine, two_clinics: tuple[Tenant, Tenant]
) -> None:
    before = [await state(engine, t) for t in two_clinics]
    one_off = event("invoice.payment_failed", START, {"id": "in_one_off", "object": "invoice"})

    await deliver(client, [one_off])

    assert [await state(engine, t) for t in two_clinics] == before
    async with platform_session(engine) as session:
        stored = await session.get(StripeEvent, one_off["id"])
        assert stored is not None and stored.applied_at is not None


async def test_an_invoice_applied_first_does_not_hide_a_slightly_older_plan_change(
    client: Client, engine: AsyncEngine, two_clinics: tuple[Tenant, Tenant]
) -> None:
    tenant = two_clinics[0]
    sub = "sub_" + tenant.id.hex[:12]
    created = event(
        "customer.subscription.created",
        START,
        subscription_object(tenant, "active", 0, "price_starter_monthly"),
    )
    upgraded = event(
        "customer.subscription.updated",
        START + 5,
        subscription_object(tenant, "active", 0, "price_growth_monthly"),
    )
    paid = event(
        "invoice.paid",
        START + 6,
        {
            "id": "in_up",
            "object": "invoice",
            "parent": {"subscription_details": {"subscription": sub}},
        },
    )

    await deliver(client, [created])
    assert (await consume(engine, tenant, uuid.uuid4())).included == 150
    await deliver(client, [paid, upgraded])

    status, code = (await state(engine, tenant))[:2]
    assert (status, code) == ("active", "growth")
    usage = await consume(engine, tenant, uuid.uuid4())
    assert (usage.included, usage.used) == (1000, 2)  # the open period grew with the plan


async def test_one_event_that_fails_does_not_hold_back_the_others(
    engine: AsyncEngine, two_clinics: tuple[Tenant, Tenant]
) -> None:
    from polyclinic.billing.stripe_events import apply_pending, store

    broken_tenant, fine_tenant = two_clinics
    broken = event(
        "customer.subscription.updated", START, {"metadata": {"tenant_id": str(broken_tenant.id)}}
    )
    fine = event(
        "customer.subscription.updated",
        START + 1,
        subscription_object(fine_tenant, "past_due", 0, "price_starter_monthly"),
    )
    async with platform_session(engine) as session:
        await store(session, broken)
        await store(session, fine)

    await apply_pending(engine)

    assert (await state(engine, fine_tenant))[0] == "past_due"
    async with platform_session(engine) as session:
        left = await session.get(StripeEvent, broken["id"])
        assert left is not None and left.applied_at is None
        await session.delete(left)  # keep later housekeeping runs of this session clean
        await session.commit()
