"""Fixtures: a throwaway database on a real PostgreSQL, the app, and clinics in it.

The server is DATABASE_URL's when set, else the embedded PostgreSQL that `polyclinic dev`
uses. Each run creates its own database and drops it, with the clinic roles it made.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.app import create_app
from polyclinic.config import Settings, load_settings
from polyclinic.db.engine import create_app_engine, create_sync_engine
from polyclinic.db.migrations import upgrade_shared
from polyclinic.db.scratch import scratch_database
from polyclinic.platform.lifecycle import clinic_provisioner
from polyclinic.tenancy.models import Tenant
from polyclinic.tenancy.provisioning import NewClinic, Provisioner
from tests.stripe_stand_in import StandInServer, StripeStandIn

BASE_DOMAIN = "clinics.test"
PLATFORM_HOST = f"admin.{BASE_DOMAIN}"
TRUSTED_PROXY = "10.9.8.7"
ADMIN_EMAIL = "root@platform.test"
ADMIN_PASSWORD = "a-long-test-password"
# Redis keys of one test run never meet another run's (lockout counters, rate limits).
RUN_NAMESPACE = f"polyclinic-test-{uuid.uuid4().hex[:8]}"
STRIPE_TEST_SECRET = "whsec_test_" + "s" * 32


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    with scratch_database("polyclinic_test") as url:
        yield url


def make_settings(database_url: str, **overrides: str) -> Settings:
    environ = {
        "DATABASE_URL": database_url,
        "BASE_DOMAIN": BASE_DOMAIN,
        "JWT_SIGNING_KEY": "test-signing-key-" + "x" * 32,
        "MFA_SEALING_KEYS": "test-mfa-sealing-key-" + "m" * 32,
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        "TRUSTED_PROXIES": TRUSTED_PROXY,
        "TENANT_CACHE_TTL": "60",
        "DB_POOL_SIZE": "5",
        "AUTH_RATE_LIMIT_PER_MINUTE": "100000",
        # Clinic fair-share limits far above anything the suite does (tested on their own).
        "CLINIC_RATE_LIMIT_PER_MINUTE": "1000000",
        "CLINIC_RATE_BURST": "100000",
        "CLINIC_REFUSAL_DELAY_MS": "0",
        "CLINIC_MAX_CONCURRENT_REQUESTS": "1000",
        "CLINIC_QUEUE_WAIT_MS": "60000",
        "CLINIC_STATEMENT_TIMEOUT_MS": "60000",
        "REDIS_NAMESPACE": RUN_NAMESPACE,
        "STRIPE_WEBHOOK_SECRET": STRIPE_TEST_SECRET,
        **overrides,
    }
    return load_settings(environ)


@pytest.fixture(scope="session")
def stripe_server() -> Iterator[StandInServer]:
    from polyclinic.billing.plans import DEFAULT_PLANS

    stand_in = StripeStandIn(known_prices={p["stripe_price_id"] for p in DEFAULT_PLANS})
    with StandInServer(stand_in) as server:
        yield server


@pytest.fixture
def stripe(stripe_server: StandInServer) -> StripeStandIn:
    """The Stripe stand-in the app's settings point at (state persists across tests;
    each test works with its own clinics' customers and subscriptions)."""
    stripe_server.stand_in.requests.clear()
    stripe_server.stand_in.refuse_next = None
    return stripe_server.stand_in


@pytest.fixture(scope="session")
def settings(database_url: str, stripe_server: StandInServer) -> Settings:
    settings = make_settings(
        database_url,
        STRIPE_API_KEY=stripe_server.stand_in.api_key,
        STRIPE_API_BASE=stripe_server.base,
    )
    engine = create_sync_engine(settings, pool_size=1)
    upgrade_shared(engine)
    engine.dispose()
    asyncio.run(_seed_plans(settings))
    return settings


async def _seed_plans(settings: Settings) -> None:
    from polyclinic.billing.plans import seed_default_plans
    from polyclinic.db.session import platform_session

    engine = create_app_engine(settings, pool_size=1)
    async with platform_session(engine) as session:
        await seed_default_plans(session)
    await engine.dispose()


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_app_engine(settings)
    yield engine
    await engine.dispose()


@pytest.fixture
def provisioner(engine: AsyncEngine, settings: Settings) -> Provisioner:
    return clinic_provisioner(engine, settings)


def unique_subdomain(prefix: str = "c") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


async def create_clinic(provisioner: Provisioner, name: str | None = None) -> Tenant:
    subdomain = unique_subdomain()
    return await provisioner.create(
        NewClinic(name or f"Clinic {subdomain}", subdomain, "Europe/Berlin", f"a@{subdomain}.test")
    )


@pytest.fixture
async def two_clinics(provisioner: Provisioner) -> tuple[Tenant, Tenant]:
    return (
        await create_clinic(provisioner, "Riverside Clinic"),
        await create_clinic(provisioner, "Hilltop Clinic"),
    )


class Client:
    """An HTTP client on the ASGI app that sends each request to a chosen host."""

    def __init__(self, app: object, client_ip: str = "192.0.2.10") -> None:
        transport = httpx.ASGITransport(app=app, client=(client_ip, 40000))  # type: ignore[arg-type]
        self.http = httpx.AsyncClient(transport=transport, base_url="http://testserver")

    async def request(self, method: str, path: str, host: str, **kwargs: object) -> httpx.Response:
        headers = {"host": host, **kwargs.pop("headers", {})}  # type: ignore[dict-item]
        return await self.http.request(method, path, headers=headers, **kwargs)  # type: ignore[arg-type]

    async def platform(
        self, method: str, path: str, token: str | None = None, **kwargs: object
    ) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))  # type: ignore[call-overload]
        if token:
            headers["authorization"] = f"Bearer {token}"
        return await self.request(method, path, PLATFORM_HOST, headers=headers, **kwargs)

    async def clinic(
        self, subdomain: str, path: str = "/api/v1/clinic", **kwargs: object
    ) -> httpx.Response:
        return await self.request("GET", path, f"{subdomain}.{BASE_DOMAIN}", **kwargs)


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[object]:
    app = create_app(settings)
    yield app
    runtime = app.state.runtime
    await runtime.mail.drain()
    await runtime.engine.dispose()
    if runtime.redis is not None:
        await runtime.redis.aclose()


@pytest.fixture
async def client(app: object) -> AsyncIterator[Client]:
    client = Client(app)
    yield client
    await client.http.aclose()


@pytest.fixture(scope="session")
async def super_admin(settings: Settings) -> tuple[str, str]:
    from polyclinic.db.session import platform_session
    from polyclinic.platform.services import PlatformUsers

    engine = create_app_engine(settings, pool_size=1)
    async with platform_session(engine) as session:
        await PlatformUsers(session).create_admin(ADMIN_EMAIL, ADMIN_PASSWORD)
    await engine.dispose()
    return ADMIN_EMAIL, ADMIN_PASSWORD


@pytest.fixture
async def admin_token(client: Client, super_admin: tuple[str, str]) -> str:
    email, password = super_admin
    response = await client.platform(
        "POST", "/platform/v1/auth/login", json={"email": email, "password": password}
    )
    assert response.status_code == 200, response.text
    return response.json()["data"]["accessToken"]
