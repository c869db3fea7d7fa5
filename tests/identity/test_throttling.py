"""Lockout after repeated failures and rate limits on the auth routes, against a real Redis."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.app import create_app
from polyclinic.tenancy.models import Tenant
from tests.conftest import Client, make_settings
from tests.identity.conftest import PASSWORD, ClinicApi, add_user


async def test_repeated_failures_lock_the_account_without_revealing_it(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    await add_user(engine, clinic_a.tenant, "target@example.com", "doctor")
    for _ in range(5):
        wrong = await clinic_a.call(
            "POST",
            "/auth/login",
            json={"email": "target@example.com", "password": "guess-guess-guess"},
        )
        assert wrong.status_code == 401

    locked = await clinic_a.call(
        "POST", "/auth/login", json={"email": "target@example.com", "password": PASSWORD}
    )
    assert locked.status_code == 429
    assert "try again in 15 minutes" in locked.json()["message"]

    for _ in range(5):
        await clinic_a.call(
            "POST",
            "/auth/login",
            json={"email": "nobody@example.com", "password": "guess-guess-guess"},
        )
    ghost = await clinic_a.call(
        "POST", "/auth/login", json={"email": "nobody@example.com", "password": "x" * 12}
    )
    assert ghost.status_code == 429
    assert ghost.json()["message"] == locked.json()["message"]


async def test_a_lock_at_one_clinic_does_not_touch_the_same_email_at_another(
    clinic_a: ClinicApi, clinic_b: ClinicApi, engine: AsyncEngine
) -> None:
    for clinic in (clinic_a, clinic_b):
        await add_user(engine, clinic.tenant, "shared@example.com", "nurse")
    for _ in range(5):
        await clinic_a.call(
            "POST",
            "/auth/login",
            json={"email": "shared@example.com", "password": "guess-guess-guess"},
        )
    assert (
        await clinic_a.call(
            "POST", "/auth/login", json={"email": "shared@example.com", "password": PASSWORD}
        )
    ).status_code == 429
    assert (await clinic_b.login("shared@example.com"))["user"]["role"] == "nurse"


async def test_success_clears_the_failure_count(clinic_a: ClinicApi, engine: AsyncEngine) -> None:
    await add_user(engine, clinic_a.tenant, "forgetful@example.com", "billing")
    for _ in range(3):
        for _ in range(4):
            await clinic_a.call(
                "POST",
                "/auth/login",
                json={"email": "forgetful@example.com", "password": "guess-guess-guess"},
            )
        await clinic_a.login("forgetful@example.com")


async def test_auth_routes_are_rate_limited_per_clinic_and_client(
    database_url: str, two_clinics: tuple[Tenant, Tenant]
) -> None:
    app = create_app(make_settings(database_url, AUTH_RATE_LIMIT_PER_MINUTE="3"))
    a, b = (ClinicApi(Client(app), t) for t in two_clinics)
    other_client = ClinicApi(Client(app, client_ip="198.51.100.7"), two_clinics[0])
    body = {"email": "someone@example.com"}

    statuses = [
        (await a.call("POST", "/auth/forgot-password", json=body)).status_code for _ in range(4)
    ]
    limited = await a.call("POST", "/auth/forgot-password", json=body)

    assert statuses == [200, 200, 200, 429]
    assert limited.json()["success"] is False and limited.json()["statusCode"] == 429
    assert (await b.call("POST", "/auth/forgot-password", json=body)).status_code == 200
    assert (await other_client.call("POST", "/auth/forgot-password", json=body)).status_code == 200
    assert (await a.client.clinic(two_clinics[0].slug)).status_code == 200  # only auth routes
    await app.state.runtime.engine.dispose()
    await app.state.runtime.redis.aclose()
