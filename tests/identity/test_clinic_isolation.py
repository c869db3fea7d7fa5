"""The same email at two clinics is two unrelated accounts; tokens never cross clinics."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.db.session import clinic_session
from polyclinic.tenancy.resolver import tenant_info
from tests.conftest import Client
from tests.identity.conftest import CapturingMailer, ClinicApi

BODY = {"email": "same@example.com", "firstName": "Sam", "lastName": "Same"}


async def test_same_email_two_clinics_two_accounts(
    clinic_a: ClinicApi, clinic_b: ClinicApi, client: Client, mailer: CapturingMailer
) -> None:
    a_reg = await clinic_a.call(
        "POST", "/auth/register", json={**BODY, "password": "alpha-secret-words-1"}
    )
    b_reg = await clinic_b.call(
        "POST", "/auth/register", json={**BODY, "password": "bravo-secret-words-2"}
    )
    assert a_reg.status_code == b_reg.status_code == 201

    a = await clinic_a.login("same@example.com", "alpha-secret-words-1")
    b = await clinic_b.login("same@example.com", "bravo-secret-words-2")
    wrong = await clinic_b.call(
        "POST",
        "/auth/login",
        json={"email": "same@example.com", "password": "alpha-secret-words-1"},
    )
    assert wrong.status_code == 401

    # A token minted for one clinic is refused by the other, and by the platform.
    assert (await clinic_b.call("GET", "/auth/me", a["accessToken"])).status_code == 401
    assert (await clinic_a.call("GET", "/auth/me", b["accessToken"])).status_code == 401
    assert (
        await client.platform("GET", "/platform/v1/clinics", a["accessToken"])
    ).status_code == 401
    cross_refresh = await clinic_b.call(
        "POST", "/auth/refresh", json={"refreshToken": a["refreshToken"]}
    )
    assert cross_refresh.status_code == 401

    await clinic_a.call("POST", "/auth/logout-all", a["accessToken"])
    assert (await clinic_b.call("GET", "/auth/me", b["accessToken"])).json()["data"][
        "email"
    ] == "same@example.com"


async def test_auth_events_are_recorded_and_append_only(
    clinic_a: ClinicApi, engine: AsyncEngine, mailer: CapturingMailer
) -> None:
    from tests.identity.conftest import add_user

    await add_user(engine, clinic_a.tenant, "boss@example.com", "clinic_admin")
    await clinic_a.call(
        "POST",
        "/auth/login",
        json={"email": "boss@example.com", "password": "not-the-password"},
        headers={"x-request-id": "req-fail-1", "user-agent": "test-agent"},
    )
    admin = await clinic_a.login("boss@example.com")

    listed = await clinic_a.call("GET", "/auth-events?limit=10", admin["accessToken"])
    assert listed.status_code == 200
    kinds = [e["event"] for e in listed.json()["data"]]
    assert kinds[:2] == ["login_succeeded", "login_failed"]
    failed = next(e for e in listed.json()["data"] if e["event"] == "login_failed")
    assert failed["requestId"] == "req-fail-1" and failed["ip"] == "192.0.2.10"
    assert failed["email"] == "boss@example.com"

    info = tenant_info(clinic_a.tenant)
    assert info is not None
    async with clinic_session(engine, info) as session:
        for statement in ("UPDATE auth_events SET event = 'nothing'", "DELETE FROM auth_events"):
            with pytest.raises(ProgrammingError, match="permission denied"):
                await session.execute(text(statement))
            await session.rollback()
