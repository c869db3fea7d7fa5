"""One clinic cannot slow the others down: its rate, its requests in flight, its statements."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import msgspec
from litestar import Litestar, get
from litestar.di import NamedDependency
from litestar.params import FromQuery
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from polyclinic.app import create_app
from polyclinic.config import Settings
from polyclinic.db.session import clinic_session
from polyclinic.tenancy.models import Tenant
from polyclinic.tenancy.resolver import tenant_info
from polyclinic.web.fairness import ClinicRateLimit, LocalBuckets
from tests.conftest import BASE_DOMAIN, PLATFORM_HOST, Client


class Hold:
    """A test-only clinic route that stays in flight until released."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()


@asynccontextmanager
async def app_with(settings: Settings, **limits: object) -> AsyncIterator[tuple[Client, Hold]]:
    """The app with the given fair-share limits, and two test-only clinic routes:
    `/api/v1/test-only/hold` (in flight until released) and `/api/v1/test-only/sleep`."""
    app: Litestar = create_app(msgspec.structs.replace(settings, **limits))
    hold = Hold()

    @get("/api/v1/test-only/hold", include_in_schema=False)
    async def held() -> dict[str, str]:
        hold.entered.set()
        await hold.release.wait()
        return {"held": "released"}

    @get("/api/v1/test-only/sleep", include_in_schema=False)
    async def sleep(
        clinic_db: NamedDependency[AsyncSession], seconds: FromQuery[float]
    ) -> dict[str, str]:
        timeout = await clinic_db.scalar(text("SHOW statement_timeout"))
        await clinic_db.execute(text("SELECT pg_sleep(:s)"), {"s": seconds})
        return {"statementTimeout": str(timeout)}

    app.register(held)
    app.register(sleep)
    client = Client(app)
    try:
        yield client, hold
    finally:
        hold.release.set()
        await client.http.aclose()
        runtime = app.state.runtime
        await runtime.mail.drain()
        await runtime.engine.dispose()
        if runtime.redis is not None:
            await runtime.redis.aclose()


def assert_refused(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False and body["statusCode"] == status
    assert body["message"] and body["errors"] == []
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["x-request-id"]


async def test_a_clinic_over_its_rate_gets_429_while_another_still_gets_200(
    settings: Settings, two_clinics: tuple[Tenant, Tenant]
) -> None:
    a, b = two_clinics
    async with app_with(settings, clinic_rate_limit_per_minute=1, clinic_rate_burst=3) as (
        client,
        _,
    ):
        served = [(await client.clinic(a.slug)).status_code for _ in range(3)]
        refused = await client.clinic(a.slug)
        other = await client.clinic(b.slug)
        # Platform routes and health checks are not a clinic's to spend.
        health = await client.request("GET", "/health", f"{a.slug}.{BASE_DOMAIN}")
        platform = [(await client.request("GET", "/health", PLATFORM_HOST)) for _ in range(5)]

    assert served == [200, 200, 200]
    assert_refused(refused, 429)
    assert "too many requests" in refused.json()["message"]
    assert other.status_code == 200, other.text
    assert other.json()["data"]["name"] == "Hilltop Clinic"
    assert health.status_code == 200
    assert [r.status_code for r in platform] == [200] * 5


async def test_a_refusal_is_held_before_it_is_sent_without_holding_up_other_clinics(
    settings: Settings, two_clinics: tuple[Tenant, Tenant]
) -> None:
    a, b = two_clinics
    limits = {
        "clinic_rate_limit_per_minute": 1,
        "clinic_rate_burst": 1,
        "clinic_refusal_delay_ms": 60_000,
    }
    async with app_with(settings, **limits) as (client, _):
        assert (await client.clinic(a.slug)).status_code == 200
        refused = asyncio.create_task(client.clinic(a.slug))
        other = await client.clinic(b.slug)
        held = not refused.done()
        refused.cancel()

    assert held  # a client that asks again at once waits for its refusal
    assert other.status_code == 200, other.text


async def test_the_rate_limit_is_shared_by_every_process_through_redis(
    settings: Settings, two_clinics: tuple[Tenant, Tenant]
) -> None:
    a, _ = two_clinics
    limits = {"clinic_rate_limit_per_minute": 1, "clinic_rate_burst": 2}
    async with app_with(settings, **limits) as (one, _), app_with(settings, **limits) as (two, _):
        first = await one.clinic(a.slug)
        second = await two.clinic(a.slug)
        third = await one.clinic(a.slug)
        fourth = await two.clinic(a.slug)

    assert [first.status_code, second.status_code] == [200, 200]
    assert_refused(third, 429)
    assert_refused(fourth, 429)


async def test_the_limit_resets_after_the_retry_after_it_gave(
    settings: Settings, two_clinics: tuple[Tenant, Tenant]
) -> None:
    a, _ = two_clinics
    async with app_with(settings, clinic_rate_limit_per_minute=60, clinic_rate_burst=2) as (
        client,
        _,
    ):
        assert [(await client.clinic(a.slug)).status_code for _ in range(2)] == [200, 200]
        refused = await client.clinic(a.slug)
        assert_refused(refused, 429)
        # Retry-After is whole seconds, rounded up; a little slack covers the clocks of
        # Redis and of this process ticking apart.
        await asyncio.sleep(int(refused.headers["retry-after"]) + 0.5)
        again = await client.clinic(a.slug)

    assert again.status_code == 200, again.text


async def test_without_redis_the_limit_is_kept_in_the_process(
    settings: Settings, two_clinics: tuple[Tenant, Tenant]
) -> None:
    a, b = two_clinics
    no_redis = msgspec.structs.replace(settings, redis_url=None)
    async with app_with(no_redis, clinic_rate_limit_per_minute=1, clinic_rate_burst=2) as (
        client,
        _,
    ):
        statuses = [(await client.clinic(a.slug)).status_code for _ in range(3)]
        refused = await client.clinic(a.slug)
        other = await client.clinic(b.slug)

    assert statuses == [200, 200, 429]
    assert_refused(refused, 429)
    assert other.status_code == 200


async def test_an_unreachable_redis_falls_back_to_the_process_limit() -> None:
    redis = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    limit = ClinicRateLimit(1, 2, redis)
    clinic, other = uuid.uuid4(), uuid.uuid4()
    try:
        waits = [await limit.wait(clinic) for _ in range(3)]
        other_wait = await limit.wait(other)
    finally:
        await redis.aclose()
    assert waits[:2] == [0, 0] and 0 < waits[2] <= 60
    assert other_wait == 0


def test_a_local_bucket_refills_at_its_rate_up_to_its_burst() -> None:
    now = [0.0]
    buckets = LocalBuckets(per_second=2, burst=3, clock=lambda: now[0])
    clinic = uuid.uuid4()
    assert [buckets.take(clinic) for _ in range(3)] == [0, 0, 0]
    assert buckets.take(clinic) == 0.5  # the next token in half a second
    now[0] = 0.5
    assert buckets.take(clinic) == 0
    now[0] = 100.0  # long idle: back to a full burst, no more
    assert [buckets.take(clinic) for _ in range(4)][-1] > 0


async def test_a_clinic_at_its_cap_waits_then_gets_503_while_another_is_served(
    settings: Settings, two_clinics: tuple[Tenant, Tenant]
) -> None:
    a, b = two_clinics
    async with app_with(settings, clinic_max_concurrent_requests=1, clinic_queue_wait_ms=50) as (
        client,
        hold,
    ):
        held = asyncio.create_task(client.clinic(a.slug, "/api/v1/test-only/hold"))
        await hold.entered.wait()
        second = await client.clinic(a.slug)
        other = await client.clinic(b.slug)
        hold.release.set()
        first = await held
        after = await client.clinic(a.slug)

    assert_refused(second, 503)
    assert "too many requests in progress" in second.json()["message"]
    assert other.status_code == 200, other.text
    assert first.status_code == 200
    assert after.status_code == 200


async def test_a_request_over_the_cap_is_served_once_a_place_frees_within_the_wait(
    settings: Settings, two_clinics: tuple[Tenant, Tenant]
) -> None:
    a, _ = two_clinics
    async with app_with(
        settings, clinic_max_concurrent_requests=1, clinic_queue_wait_ms=60_000
    ) as (client, hold):
        held = asyncio.create_task(client.clinic(a.slug, "/api/v1/test-only/hold"))
        await hold.entered.wait()
        waiting = asyncio.create_task(client.clinic(a.slug))
        await asyncio.sleep(0.05)
        assert not waiting.done()  # queued behind the held request
        hold.release.set()
        first, second = await held, await waiting

    assert first.status_code == 200
    assert second.status_code == 200, second.text


async def test_a_statement_over_the_timeout_answers_503_and_the_clinic_goes_on(
    settings: Settings, two_clinics: tuple[Tenant, Tenant]
) -> None:
    a, _ = two_clinics
    async with app_with(settings, clinic_statement_timeout_ms=200) as (client, _):
        quick = await client.clinic(a.slug, "/api/v1/test-only/sleep", params={"seconds": 0})
        slow = await client.clinic(a.slug, "/api/v1/test-only/sleep", params={"seconds": 5})
        after = await client.clinic(a.slug)

    assert quick.status_code == 200, quick.text
    assert quick.json()["statementTimeout"] == "200ms"
    assert_refused(slow, 503)
    assert "took too long" in slow.json()["message"]
    for leak in ("pg_sleep", "statement timeout", "canceling", "SELECT"):
        assert leak not in slow.text
    assert after.status_code == 200


async def test_work_outside_a_clinic_request_has_no_statement_timeout(
    engine: AsyncEngine, two_clinics: tuple[Tenant, Tenant]
) -> None:
    a, _ = two_clinics
    clinic = tenant_info(a)
    assert clinic is not None
    async with clinic_session(engine, clinic) as session:  # as a job or a command opens one
        assert await session.scalar(text("SHOW statement_timeout")) == "0"
