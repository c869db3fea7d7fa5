"""A record the desk made becomes the patient's own account: by the staff's invitation, or
when the patient registers with the address the record already has."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncEngine

from tests.chart.test_patients import WALK_IN, add_patient, register, token_for, users_in
from tests.identity.conftest import PASSWORD, CapturingMailer, ClinicApi


async def claim(clinic: ClinicApi, token: str, password: str = PASSWORD):  # type: ignore[no-untyped-def]
    return await clinic.call(
        "POST", "/auth/claim-account", json={"token": token, "password": password}
    )


async def test_staff_invite_a_patient_who_claims_the_record(
    clinic_a: ClinicApi, engine: AsyncEngine, mailer: CapturingMailer
) -> None:
    _, desk = await token_for(clinic_a, engine, "receptionist")
    made = await register(clinic_a, desk, email="Ana.Morgan@x.example")
    assert made["email"] == "ana.morgan@x.example"

    invited = await clinic_a.call("POST", f"/patients/{made['id']}/invite", desk)
    assert invited.status_code == 200, invited.text
    await mailer.delivered()
    message = mailer.sent[-1]
    assert (message.kind, message.to, message.recipient_id) == (
        "account_claim",
        "ana.morgan@x.example",
        uuid.UUID(made["id"]),
    )
    token = mailer.token_for("ana.morgan@x.example", "account_claim")

    weak = await claim(clinic_a, token, "password")
    assert weak.status_code == 422 and weak.json()["errors"][0]["field"] == "password"
    claimed = await claim(clinic_a, token)
    assert claimed.status_code == 200, claimed.text
    assert claimed.json()["data"]["id"] == made["id"]
    assert claimed.json()["data"]["emailVerified"] is True

    # One patient: the same record signs in, with everything the desk entered.
    session = await clinic_a.login("ana.morgan@x.example")
    me = await clinic_a.call("GET", f"/patients/{made['id']}", session["accessToken"])
    assert me.status_code == 200
    assert me.json()["data"]["hasAccount"] is True
    assert me.json()["data"]["insurance"] == WALK_IN["insurance"]

    again = await claim(clinic_a, token)
    assert again.status_code == 422 and again.json()["errors"][0]["field"] == "token"
    reinvite = await clinic_a.call("POST", f"/patients/{made['id']}/invite", desk)
    assert reinvite.status_code == 409


async def test_an_invitation_needs_an_email_and_follows_its_changes(
    clinic_a: ClinicApi, engine: AsyncEngine, mailer: CapturingMailer
) -> None:
    _, desk = await token_for(clinic_a, engine, "receptionist")
    made = await register(clinic_a, desk)
    path = f"/patients/{made['id']}"

    no_email = await clinic_a.call("POST", f"{path}/invite", desk)
    assert no_email.status_code == 422 and no_email.json()["errors"][0]["field"] == "email"
    assert (await clinic_a.call("PATCH", path, desk, json={"email": "old@x.example"})).is_success
    assert (await clinic_a.call("POST", f"{path}/invite", desk)).status_code == 200
    await mailer.delivered()
    old_link = mailer.token_for("old@x.example", "account_claim")

    # The address was wrong: the link sent there stops working.
    assert (await clinic_a.call("PATCH", path, desk, json={"email": "new@x.example"})).is_success
    stale = await claim(clinic_a, old_link)
    assert stale.status_code == 422 and stale.json()["errors"][0]["field"] == "token"
    assert (await clinic_a.call("POST", f"{path}/invite", desk)).status_code == 200
    await mailer.delivered()
    assert (await claim(clinic_a, mailer.token_for("new@x.example", "account_claim"))).is_success
    await clinic_a.login("new@x.example")


async def test_registering_with_the_address_of_a_desk_record_links_to_it(
    clinic_a: ClinicApi, engine: AsyncEngine, mailer: CapturingMailer
) -> None:
    """No second, silent record: the registration is answered as usual, and the address is
    sent the link to claim the record the clinic keeps (so only its holder gets it)."""
    _, desk = await token_for(clinic_a, engine, "receptionist")
    made = await register(clinic_a, desk, email="walk.in@x.example")
    before = await users_in(engine, clinic_a.tenant)
    fresh = await clinic_a.call(
        "POST",
        "/auth/register",
        json={
            "email": "fresh@x.example",
            "password": PASSWORD,
            "firstName": "Fresh",
            "lastName": "Person",
        },
    )
    registered = await clinic_a.call(
        "POST",
        "/auth/register",
        json={
            "email": "Walk.In@x.example",
            "password": PASSWORD,
            "firstName": "Ana",
            "lastName": "Morgan",
        },
    )
    assert registered.status_code == fresh.status_code == 201
    assert registered.json() == fresh.json()
    assert await users_in(engine, clinic_a.tenant) == before + 1  # only the fresh one

    await mailer.delivered()
    kinds = [m.kind for m in mailer.sent if m.to == "walk.in@x.example"]
    assert kinds == ["account_claim"]
    # The password given at registration does not open the record: the address must be proven.
    refused = await clinic_a.call(
        "POST", "/auth/login", json={"email": "walk.in@x.example", "password": PASSWORD}
    )
    assert refused.status_code == 401
    assert (
        await claim(clinic_a, mailer.token_for("walk.in@x.example", "account_claim"))
    ).is_success
    session = await clinic_a.login("walk.in@x.example")
    me = await clinic_a.call("GET", "/auth/me", session["accessToken"])
    assert me.json()["data"]["id"] == made["id"]


async def test_a_link_from_one_clinic_claims_nothing_at_another(
    clinic_a: ClinicApi, clinic_b: ClinicApi, engine: AsyncEngine, mailer: CapturingMailer
) -> None:
    _, desk_a = await token_for(clinic_a, engine, "receptionist")
    _, desk_b = await token_for(clinic_b, engine, "receptionist")
    made = await register(clinic_a, desk_a, email="same@x.example")
    # Clinic B keeps a record of the same id and address.
    await add_patient(engine, clinic_b.tenant, id=uuid.UUID(made["id"]), email="same@x.example")
    assert (await clinic_a.call("POST", f"/patients/{made['id']}/invite", desk_a)).is_success
    await mailer.delivered()
    token = mailer.token_for("same@x.example", "account_claim")

    at_b = await claim(clinic_b, token)
    assert at_b.status_code == 422
    shown_b = (await clinic_b.call("GET", f"/patients/{made['id']}", desk_b)).json()["data"]
    assert shown_b["hasAccount"] is False
    assert (await claim(clinic_a, token)).is_success
    shown_b = (await clinic_b.call("GET", f"/patients/{made['id']}", desk_b)).json()["data"]
    assert shown_b["hasAccount"] is False
