"""The sign-in lockout counts failures in the database, so it holds with and without Redis
(a bare `polyclinic dev` has none), across processes, and per clinic."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from litestar import Litestar
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.app import create_app
from polyclinic.db.base import utcnow
from polyclinic.db.session import clinic_transaction, platform_session
from polyclinic.identity.sessions.models import LoginFailure
from polyclinic.platform.models import PlatformLoginFailure
from polyclinic.platform.services import PlatformUsers
from polyclinic.tenancy.models import Tenant
from polyclinic.tenancy.resolver import tenant_info
from tests.conftest import Client, make_settings
from tests.identity.conftest import PASSWORD, ClinicApi, add_user

WRONG = "guess-guess-guess"


def new_app(database_url: str, redis: bool, **overrides: str) -> Litestar:
    # An empty REDIS_URL is no Redis at all, as under a bare `polyclinic dev`.
    return create_app(
        make_settings(database_url, **({} if redis else {"REDIS_URL": ""}), **overrides)
    )


async def closed(app: Litestar) -> None:
    runtime = app.state.runtime
    await runtime.engine.dispose()
    if runtime.redis is not None:
        await runtime.redis.aclose()


@pytest.fixture(params=[False, True], ids=["without-redis", "with-redis"])
async def app(request: pytest.FixtureRequest, database_url: str) -> AsyncIterator[Litestar]:
    app = new_app(database_url, request.param)
    assert (app.state.runtime.redis is not None) is request.param
    yield app
    await closed(app)


async def sign_in(clinic: ClinicApi, email: str, password: str) -> int:
    response = await clinic.call("POST", "/auth/login", json={"email": email, "password": password})
    return response.status_code


async def test_failures_lock_the_account_and_success_starts_the_count_again(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    email = f"lock-{uuid.uuid4().hex[:6]}@example.com"
    await add_user(engine, clinic_a.tenant, email, "doctor")

    # Four wrong, then right: the count starts again each time, so nothing locks.
    for _ in range(3):
        assert [await sign_in(clinic_a, email, WRONG) for _ in range(4)] == [401] * 4
        assert await sign_in(clinic_a, email, PASSWORD) == 200

    assert [await sign_in(clinic_a, email, WRONG) for _ in range(5)] == [401] * 5
    locked = await clinic_a.call("POST", "/auth/login", json={"email": email, "password": PASSWORD})
    assert locked.status_code == 429
    assert "try again in 15 minutes" in locked.json()["message"]


async def test_a_lock_ends_with_its_window(clinic_a: ClinicApi, engine: AsyncEngine) -> None:
    email = f"window-{uuid.uuid4().hex[:6]}@example.com"
    await add_user(engine, clinic_a.tenant, email, "nurse")
    for _ in range(5):
        await sign_in(clinic_a, email, WRONG)
    assert await sign_in(clinic_a, email, PASSWORD) == 429

    info = tenant_info(clinic_a.tenant)
    assert info is not None
    async with clinic_transaction(engine, info) as session:  # the window has passed
        await session.execute(
            update(LoginFailure).values(locked_until=utcnow(), expires_at=utcnow())
        )
    assert await sign_in(clinic_a, email, PASSWORD) == 200


async def test_two_clinics_with_the_same_email_lock_apart(
    clinic_a: ClinicApi, clinic_b: ClinicApi, engine: AsyncEngine
) -> None:
    email = f"same-{uuid.uuid4().hex[:6]}@example.com"
    for clinic in (clinic_a, clinic_b):
        await add_user(engine, clinic.tenant, email, "receptionist")
    for _ in range(5):
        await sign_in(clinic_a, email, WRONG)

    assert await sign_in(clinic_a, email, PASSWORD) == 429
    assert await sign_in(clinic_b, email, PASSWORD) == 200
    # And B's own count starts from nothing: four failures there lock nothing.
    assert [await sign_in(clinic_b, email, WRONG) for _ in range(4)] == [401] * 4
    assert await sign_in(clinic_b, email, PASSWORD) == 200


async def test_the_count_is_shared_by_every_process_without_redis(
    database_url: str, two_clinics: tuple[Tenant, Tenant], engine: AsyncEngine
) -> None:
    email = f"two-processes-{uuid.uuid4().hex[:6]}@example.com"
    await add_user(engine, two_clinics[0], email, "billing")
    first, second = new_app(database_url, False), new_app(database_url, False)
    try:
        one, other = (ClinicApi(Client(app), two_clinics[0]) for app in (first, second))
        assert [await sign_in(one, email, WRONG) for _ in range(3)] == [401] * 3
        assert [await sign_in(other, email, WRONG) for _ in range(2)] == [401] * 2
        assert await sign_in(one, email, PASSWORD) == 429
        assert await sign_in(other, email, PASSWORD) == 429
    finally:
        await closed(first)
        await closed(second)


async def test_one_address_is_turned_away_after_many_failures(
    database_url: str, two_clinics: tuple[Tenant, Tenant], engine: AsyncEngine
) -> None:
    app = new_app(database_url, False, LOGIN_MAX_FAILURES_PER_ADDRESS="3")
    try:
        guesser = ClinicApi(Client(app, client_ip="198.51.100.20"), two_clinics[1])
        bystander = ClinicApi(Client(app, client_ip="198.51.100.21"), two_clinics[1])
        email = f"bystander-{uuid.uuid4().hex[:6]}@example.com"
        await add_user(engine, two_clinics[1], email, "doctor")
        for n in range(3):
            assert await sign_in(guesser, f"someone-{n}@example.com", WRONG) == 401
        turned_away = await guesser.call(
            "POST", "/auth/login", json={"email": email, "password": PASSWORD}
        )
        assert turned_away.status_code == 429
        assert "from your address" in turned_away.json()["message"]
        assert await sign_in(bystander, email, PASSWORD) == 200
    finally:
        await closed(app)


async def test_a_super_admin_locks_without_redis(database_url: str, engine: AsyncEngine) -> None:
    email, password = f"ops-{uuid.uuid4().hex[:8]}@platform.test", "a-long-admin-password"
    async with platform_session(engine) as session:
        await PlatformUsers(session).create_admin(email, password)
    app = new_app(database_url, False)
    try:
        client = Client(app)

        async def platform_sign_in(password: str) -> int:
            response = await client.platform(
                "POST", "/platform/v1/auth/login", json={"email": email, "password": password}
            )
            return response.status_code

        assert [await platform_sign_in(WRONG) for _ in range(5)] == [401] * 5
        assert await platform_sign_in(password) == 429
        async with platform_session(engine) as session:  # the window has passed
            await session.execute(
                update(PlatformLoginFailure)
                .where(PlatformLoginFailure.key == f"account:{email}")
                .values(locked_until=utcnow(), expires_at=utcnow())
            )
            await session.commit()
        assert await platform_sign_in(password) == 200
    finally:
        await closed(app)
