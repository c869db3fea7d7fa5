"""Registration, sign-in, email verification, password reset and change, on a clinic's host."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from tests.identity.conftest import PASSWORD, CapturingMailer, ClinicApi, add_user

PATIENT = {
    "email": "Ana.Patient@example.com",
    "password": PASSWORD,
    "firstName": "Ana",
    "lastName": "Silva",
    "phone": "+44 20 7946 0000",
    "dateOfBirth": "1990-04-01",
}


async def test_a_patient_registers_and_can_sign_in_at_once(
    clinic_a: ClinicApi, mailer: CapturingMailer
) -> None:
    registered = await clinic_a.call("POST", "/auth/register", json=PATIENT)

    assert registered.status_code == 201, registered.text
    assert registered.json()["data"] is None
    signed_in = await clinic_a.login("ana.patient@example.com")
    assert (
        signed_in["tokenType"] == "Bearer"
        and signed_in["accessToken"]
        and signed_in["refreshToken"]
    )
    user = signed_in["user"]
    assert user["email"] == "ana.patient@example.com"
    assert user["role"] == "patient" and user["emailVerified"] is False
    me = await clinic_a.call("GET", "/auth/me", signed_in["accessToken"])
    assert me.json()["data"]["firstName"] == "Ana"


async def test_registration_refuses_bad_input_and_reveals_no_account(
    clinic_a: ClinicApi, mailer: CapturingMailer
) -> None:
    cases = [
        ({**PATIENT, "email": "not-an-email"}, 422, "email"),
        ({**PATIENT, "password": "short"}, 422, "password"),
        ({**PATIENT, "password": "password123"}, 422, "password"),
        ({**PATIENT, "firstName": "  "}, 422, "firstName"),
        ({k: v for k, v in PATIENT.items() if k != "lastName"}, 422, "lastName"),
    ]
    for body, status, field in cases:
        response = await clinic_a.call("POST", "/auth/register", json=body)
        assert response.status_code == status, (field, response.text)
        assert response.json()["errors"][0]["field"] == field
    first = await clinic_a.call("POST", "/auth/register", json=PATIENT)
    again = await clinic_a.call(
        "POST",
        "/auth/register",
        json={**PATIENT, "email": "ANA.PATIENT@example.com", "password": "someone-elses-words-4"},
    )
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    await mailer.delivered()
    kinds = [m.kind for m in mailer.sent if m.to == "ana.patient@example.com"]
    assert kinds == ["email_verification", "already_registered"]
    # The second attempt changed nothing: the first password still signs in.
    await clinic_a.login("ana.patient@example.com")
    wrong = await clinic_a.call(
        "POST",
        "/auth/login",
        json={"email": "ana.patient@example.com", "password": "someone-elses-words-4"},
    )
    assert wrong.status_code == 401


async def test_wrong_password_and_unknown_email_answer_alike(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    await add_user(engine, clinic_a.tenant, "doc@example.com", "doctor")
    wrong = await clinic_a.call(
        "POST", "/auth/login", json={"email": "doc@example.com", "password": "nope-nope-nope"}
    )
    unknown = await clinic_a.call(
        "POST", "/auth/login", json={"email": "who@example.com", "password": "nope-nope-nope"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()


async def test_email_verification_is_single_use(
    clinic_a: ClinicApi, mailer: CapturingMailer
) -> None:
    await clinic_a.call("POST", "/auth/register", json=PATIENT)
    await mailer.delivered()
    token = mailer.token_for("ana.patient@example.com", "email_verification")

    verified = await clinic_a.call("POST", "/auth/verify-email", json={"token": token})
    again = await clinic_a.call("POST", "/auth/verify-email", json={"token": token})

    assert verified.status_code == 200 and verified.json()["data"]["emailVerified"] is True
    assert again.status_code == 422
    assert again.json()["errors"][0]["field"] == "token"


async def test_password_reset_reveals_nothing_and_ends_sessions(
    clinic_a: ClinicApi, engine: AsyncEngine, mailer: CapturingMailer
) -> None:
    await add_user(engine, clinic_a.tenant, "nurse@example.com", "nurse")
    session = await clinic_a.login("nurse@example.com")

    known = await clinic_a.call(
        "POST", "/auth/forgot-password", json={"email": "nurse@example.com"}
    )
    unknown = await clinic_a.call(
        "POST", "/auth/forgot-password", json={"email": "ghost@example.com"}
    )
    assert known.status_code == unknown.status_code == 200
    assert known.json() == unknown.json()
    await mailer.delivered()
    assert not any(m.to == "ghost@example.com" for m in mailer.sent)
    token = mailer.token_for("nurse@example.com", "password_reset")

    weak = await clinic_a.call(
        "POST", "/auth/reset-password", json={"token": token, "password": "123456"}
    )
    assert weak.status_code == 422
    reset = await clinic_a.call(
        "POST", "/auth/reset-password", json={"token": token, "password": "a-brand-new-secret-7"}
    )
    reused = await clinic_a.call(
        "POST", "/auth/reset-password", json={"token": token, "password": "another-new-secret-8"}
    )

    assert reset.status_code == 200
    assert reused.status_code == 422
    assert (await clinic_a.call("GET", "/auth/me", session["accessToken"])).status_code == 401
    await clinic_a.login("nurse@example.com", "a-brand-new-secret-7")


async def test_change_password_keeps_this_session_and_ends_the_others(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    await add_user(engine, clinic_a.tenant, "admin@example.com", "clinic_admin")
    here = await clinic_a.login("admin@example.com")
    elsewhere = await clinic_a.login("admin@example.com")

    wrong = await clinic_a.call(
        "POST",
        "/auth/change-password",
        here["accessToken"],
        json={"currentPassword": "not-mine-at-all", "newPassword": "fresh-secret-words-1"},
    )
    changed = await clinic_a.call(
        "POST",
        "/auth/change-password",
        here["accessToken"],
        json={"currentPassword": PASSWORD, "newPassword": "fresh-secret-words-1"},
    )

    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "currentPassword"
    assert changed.status_code == 200
    assert (await clinic_a.call("GET", "/auth/me", here["accessToken"])).status_code == 200
    assert (await clinic_a.call("GET", "/auth/me", elsewhere["accessToken"])).status_code == 401


async def test_update_me_changes_only_what_is_sent(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    await add_user(engine, clinic_a.tenant, "rec@example.com", "receptionist", phone="+1 555 0100")
    session = await clinic_a.login("rec@example.com")

    updated = await clinic_a.call(
        "PATCH", "/auth/me", session["accessToken"], json={"firstName": " Rita "}
    )
    refused = await clinic_a.call(
        "PATCH", "/auth/me", session["accessToken"], json={"role": "clinic_admin"}
    )

    assert updated.status_code == 200
    assert updated.json()["data"]["firstName"] == "Rita"
    assert updated.json()["data"]["phone"] == "+1 555 0100"
    assert refused.status_code == 422
    me = await clinic_a.call("GET", "/auth/me", session["accessToken"])
    assert me.json()["data"]["role"] == "receptionist"


async def test_reset_and_verification_tokens_expire(
    clinic_a: ClinicApi, engine: AsyncEngine, mailer: CapturingMailer
) -> None:
    import datetime

    from sqlalchemy import update

    from polyclinic.db.session import clinic_transaction
    from polyclinic.identity.accounts.models import UserToken
    from polyclinic.tenancy.resolver import tenant_info

    await clinic_a.call("POST", "/auth/register", json=PATIENT)
    await clinic_a.call("POST", "/auth/forgot-password", json={"email": PATIENT["email"]})
    await mailer.delivered()
    verify = mailer.token_for("ana.patient@example.com", "email_verification")
    reset = mailer.token_for("ana.patient@example.com", "password_reset")
    info = tenant_info(clinic_a.tenant)
    assert info is not None
    async with clinic_transaction(engine, info) as session:
        await session.execute(
            update(UserToken).values(
                expires_at=datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=1)
            )
        )

    late_verify = await clinic_a.call("POST", "/auth/verify-email", json={"token": verify})
    late_reset = await clinic_a.call(
        "POST", "/auth/reset-password", json={"token": reset, "password": "too-late-for-this-5"}
    )

    assert late_verify.status_code == late_reset.status_code == 422
    assert late_reset.json()["errors"] == [{"field": "token", "message": "is invalid or expired"}]
    await clinic_a.login("ana.patient@example.com")


async def test_wrong_current_passwords_count_towards_the_lockout(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    await add_user(engine, clinic_a.tenant, "stolen-token@example.com", "patient")
    token = (await clinic_a.login("stolen-token@example.com"))["accessToken"]
    guess = {"currentPassword": "guess-guess-guess", "newPassword": "new-secret-words-6"}
    statuses = [
        (await clinic_a.call("POST", "/auth/change-password", token, json=guess)).status_code
        for _ in range(6)
    ]
    assert statuses == [422] * 5 + [429]
