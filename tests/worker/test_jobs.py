"""Jobs on a real Redis broker and worker: a Stripe webhook is applied by a job, periodic
jobs are sent once per interval however many schedulers run, and async jobs keep the clinic
context they were sent from."""

from __future__ import annotations

import asyncio
import datetime
import uuid
from collections.abc import Iterator

import dramatiq
import pytest
from dramatiq import Worker
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.billing.models import StripeEvent
from polyclinic.config import Settings
from polyclinic.db.base import utcnow
from polyclinic.db.context import current_tenant
from polyclinic.db.session import platform_session
from polyclinic.tenancy.models import Tenant
from polyclinic.web.state import Runtime
from polyclinic.worker.broker import create_broker
from polyclinic.worker.scheduler import Scheduler
from tests.billing.test_quota import set_subscription
from tests.billing.test_stripe_billing import subscription_of
from tests.billing.test_stripe_webhooks import deliver, event
from tests.conftest import Client
from tests.tenancy.test_isolation import info


@pytest.fixture
def broker(settings: Settings) -> Iterator[dramatiq.Broker]:
    broker = create_broker(settings, namespace=f"polyclinic-test-{uuid.uuid4().hex[:8]}")
    worker = Worker(broker, worker_timeout=100, worker_threads=2)
    worker.start()
    yield broker
    worker.stop()
    broker.flush_all()
    broker.close()


async def test_a_stripe_event_is_applied_by_a_job_not_by_the_request(
    app: object,
    client: Client,
    engine: AsyncEngine,
    broker: dramatiq.Broker,
    two_clinics: tuple[Tenant, Tenant],
) -> None:
    runtime: Runtime = app.state.runtime  # type: ignore[attr-defined]
    runtime.broker = broker
    clinic = two_clinics[0]
    checkout = event(
        "checkout.session.completed",
        1_790_000_000,
        {
            "id": "cs_job",
            "object": "checkout.session",
            "client_reference_id": str(clinic.id),
            "customer": "cus_job",
            "subscription": "sub_job_" + clinic.id.hex[:8],
        },
    )

    await deliver(client, [checkout])
    await asyncio.to_thread(broker.join, "billing", timeout=10_000)

    async with platform_session(engine) as session:
        stored = await session.get(StripeEvent, checkout["id"])
        assert stored is not None and stored.applied_at is not None
    subscription, _ = await subscription_of(engine, clinic)
    assert subscription.stripe_customer_id == "cus_job"
    other, _ = await subscription_of(engine, two_clinics[1])
    assert other.stripe_customer_id is None


async def test_two_schedulers_send_a_periodic_job_once_and_it_runs(
    settings: Settings,
    engine: AsyncEngine,
    broker: dramatiq.Broker,
    two_clinics: tuple[Tenant, Tenant],
) -> None:
    ended = utcnow() - datetime.timedelta(minutes=5)
    await set_subscription(engine, two_clinics[0], current_period_end=ended, trial_end=ended)
    redis = Redis.from_url(settings.redis_url or "")
    namespace = f"polyclinic-test-{uuid.uuid4().hex[:8]}"
    try:
        first = Scheduler(broker, redis, namespace)
        second = Scheduler(broker, redis, namespace)
        sent = [await first.tick(), await second.tick(), await first.tick()]
    finally:
        await redis.aclose()

    assert sent == [["billing_housekeeping", "scheduling_housekeeping", "relay_outboxes"], [], []]
    # Housekeeping goes over every clinic the suite has made so far, next to the relay.
    await asyncio.to_thread(broker.join, "billing", timeout=60_000)
    subscription, _ = await subscription_of(engine, two_clinics[0])
    assert str(subscription.status) == "unpaid"


async def test_async_jobs_keep_the_clinic_they_were_sent_from(
    broker: dramatiq.Broker, two_clinics: tuple[Tenant, Tenant]
) -> None:
    seen: list[str | None] = []

    async def clinic_of_job() -> None:
        await asyncio.sleep(0)
        tenant = current_tenant.get()
        seen.append(tenant.slug if tenant else None)

    actor = dramatiq.Actor(
        clinic_of_job,
        broker=broker,
        actor_name="clinic_of_job",
        queue_name="test",
        priority=0,
        options={"max_retries": 0},
    )
    for tenant in two_clinics:
        token = current_tenant.set(info(tenant))
        try:
            actor.send()
        finally:
            current_tenant.reset(token)

    await asyncio.to_thread(broker.join, "test", timeout=10_000)
    assert sorted(s or "" for s in seen) == sorted(t.slug for t in two_clinics)
