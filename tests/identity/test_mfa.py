"""Two-factor sign-in: enrolment, sign-in with and without a code, recovery codes, policy."""

from __future__ import annotations

import base64
import time

from cryptography.hazmat.primitives.hashes import SHA1
from cryptography.hazmat.primitives.twofactor.totp import TOTP
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.app import create_app
from polyclinic.tenancy.models import Tenant
from tests.conftest import Client, make_settings
from tests.identity.conftest import PASSWORD, ClinicApi, add_user


def code_for(secret_b32: str, at: float | None = None) -> str:
    secret = base64.b32decode(secret_b32 + "=" * (-len(secret_b32) % 8))
    return (
        TOTP(secret, 6, SHA1(), 30, enforce_key_length=False)
        .generate(int(at or time.time()))
        .decode()
    )


async def enrol(clinic: ClinicApi, token: str) -> tuple[str, list[str]]:
    setup = await clinic.call("POST", "/auth/mfa/setup", token)
    assert setup.status_code == 200, setup.text
    secret = setup.json()["data"]["secret"]
    assert setup.json()["data"]["otpauthUri"].startswith("otpauth://totp/")
    wrong = await clinic.call("POST", "/auth/mfa/enable", token, json={"code": "000000"})
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "code"
    enabled = await clinic.call("POST", "/auth/mfa/enable", token, json={"code": code_for(secret)})
    assert enabled.status_code == 200, enabled.text
    return secret, enabled.json()["data"]["recoveryCodes"]


def login_body(email: str, **extra: object) -> dict[str, object]:
    return {"email": email, "password": PASSWORD, **extra}


async def test_enrol_then_sign_in_with_a_code_or_a_recovery_code(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    await add_user(engine, clinic_a.tenant, "mfa@example.com", "doctor")
    token = (await clinic_a.login("mfa@example.com"))["accessToken"]
    secret, recovery = await enrol(clinic_a, token)
    assert len(recovery) == 10 and len(set(recovery)) == 10

    without = await clinic_a.call("POST", "/auth/login", json=login_body("mfa@example.com"))
    assert without.status_code == 401
    assert without.json()["errors"] == [{"field": "totp", "message": "is required"}]
    wrong = await clinic_a.call(
        "POST", "/auth/login", json=login_body("mfa@example.com", totp="123456")
    )
    assert wrong.status_code == 401 and wrong.json()["errors"][0]["field"] == "totp"

    # The enrolment code's step is spent; the next step's code is good, and only once.
    next_code = code_for(secret, time.time() + 30)
    body = login_body("mfa@example.com", totp=next_code)
    with_code = await clinic_a.call("POST", "/auth/login", json=body)
    replayed = await clinic_a.call("POST", "/auth/login", json=body)
    assert with_code.status_code == 200
    assert with_code.json()["data"]["user"]["mfaEnabled"] is True
    assert replayed.status_code == 401

    first = await clinic_a.call(
        "POST", "/auth/login", json=login_body("mfa@example.com", totp=recovery[0])
    )
    reused = await clinic_a.call(
        "POST", "/auth/login", json=login_body("mfa@example.com", totp=recovery[0])
    )
    assert first.status_code == 200
    assert reused.status_code == 401

    session = with_code.json()["data"]["accessToken"]
    bad_password = await clinic_a.call(
        "POST",
        "/auth/mfa/disable",
        session,
        json={"password": "not-my-password", "code": recovery[1]},
    )
    bad_code = await clinic_a.call(
        "POST", "/auth/mfa/disable", session, json={"password": PASSWORD, "code": "123456"}
    )
    off = await clinic_a.call(
        "POST", "/auth/mfa/disable", session, json={"password": PASSWORD, "code": recovery[1]}
    )
    assert bad_password.status_code == bad_code.status_code == 422
    assert bad_code.json()["errors"][0]["field"] == "code"
    assert off.status_code == 200
    assert (
        await clinic_a.call("POST", "/auth/login", json=login_body("mfa@example.com"))
    ).status_code == 200


async def test_policy_holds_admins_to_enrolment_first(
    database_url: str, two_clinics: tuple[Tenant, Tenant]
) -> None:
    app = create_app(make_settings(database_url, MFA_REQUIRED_FOR_ADMINS="true"))
    clinic = ClinicApi(Client(app), two_clinics[0])
    engine = app.state.runtime.engine
    await add_user(engine, clinic.tenant, "policy-admin@example.com", "clinic_admin")
    await add_user(engine, clinic.tenant, "policy-doc@example.com", "doctor")

    admin = await clinic.login("policy-admin@example.com")
    doctor = await clinic.login("policy-doc@example.com")
    assert admin["mfaEnrolmentRequired"] is True and doctor["mfaEnrolmentRequired"] is False

    held = await clinic.call("GET", "/staff", admin["accessToken"])
    assert held.status_code == 403 and "two-factor" in held.json()["message"]
    assert (await clinic.call("GET", "/auth/me", admin["accessToken"])).status_code == 200

    secret, _ = await enrol(clinic, admin["accessToken"])
    assert (await clinic.call("GET", "/staff", admin["accessToken"])).status_code == 200
    again = await clinic.call(
        "POST",
        "/auth/login",
        json=login_body("policy-admin@example.com", totp=code_for(secret, time.time() + 30)),
    )
    assert again.json()["data"]["mfaEnrolmentRequired"] is False
    await engine.dispose()
    await app.state.runtime.redis.aclose()


async def test_a_secret_copied_to_another_user_does_not_decrypt(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    from sqlalchemy import select, update

    from polyclinic.db.session import clinic_transaction
    from polyclinic.identity.accounts.models import User
    from polyclinic.tenancy.resolver import tenant_info

    await add_user(engine, clinic_a.tenant, "owner-of-secret@example.com", "nurse")
    await add_user(engine, clinic_a.tenant, "thief@example.com", "nurse")
    token = (await clinic_a.login("owner-of-secret@example.com"))["accessToken"]
    secret, _ = await enrol(clinic_a, token)
    info = tenant_info(clinic_a.tenant)
    assert info is not None
    async with clinic_transaction(engine, info) as session:
        sealed = (
            await session.execute(
                select(User.mfa_secret).where(User.email == "owner-of-secret@example.com")
            )
        ).scalar_one()
        await session.execute(
            update(User)
            .where(User.email == "thief@example.com")
            .values(mfa_secret=sealed, mfa_enabled_at=User.created_at)
        )
    stolen = await clinic_a.call(
        "POST", "/auth/login", json=login_body("thief@example.com", totp=code_for(secret))
    )
    assert stolen.status_code == 409
    assert "unreadable" in stolen.json()["message"]


async def test_wrong_codes_count_towards_the_lockout(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    await add_user(engine, clinic_a.tenant, "guess-codes@example.com", "nurse")
    token = (await clinic_a.login("guess-codes@example.com"))["accessToken"]
    secret, _ = await enrol(clinic_a, token)
    guess = login_body("guess-codes@example.com", totp="111111")
    statuses = [
        (await clinic_a.call("POST", "/auth/login", json=guess)).status_code for _ in range(6)
    ]
    assert statuses == [401] * 5 + [429]
    good = login_body("guess-codes@example.com", totp=code_for(secret, time.time() + 30))
    assert (await clinic_a.call("POST", "/auth/login", json=good)).status_code == 429
