"""Patients managed by staff: registration at the desk, validation, changes, search, role by
role, and the same person at two clinics."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.db.session import clinic_transaction
from polyclinic.identity.accounts.models import User
from polyclinic.messaging.preferences.services import reach_for
from polyclinic.tenancy.models import Tenant
from polyclinic.tenancy.resolver import tenant_info
from tests.identity.conftest import ClinicApi, add_user

WALK_IN: dict[str, Any] = {
    "firstName": "Ana",
    "lastName": "Morgan",
    "dateOfBirth": "1984-03-02",
    "sex": "female",
    "phone": "+43 664 123-4567",
    "address": {
        "line1": "Hauptstrasse 1",
        "city": "Graz",
        "postalCode": "8010",
        "country": "AT",
    },
    "preferredLanguage": "de-AT",
    "emergencyContact": {"name": "Bo Morgan", "relation": "brother", "phone": "+43 660 555 1212"},
    "insurance": {"payer": "OeGK", "memberId": "1234 020384", "group": "G-7"},
}


async def token_for(clinic: ClinicApi, engine: AsyncEngine, role: str) -> tuple[uuid.UUID, str]:
    email = f"{role}-{uuid.uuid4().hex[:8]}@example.com"
    user = await add_user(engine, clinic.tenant, email, role)
    return user.id, (await clinic.login(email))["accessToken"]


async def register(clinic: ClinicApi, token: str, **fields: Any) -> dict[str, Any]:
    response = await clinic.call("POST", "/patients", token, json={**WALK_IN, **fields})
    assert response.status_code == 201, response.text
    return response.json()["data"]


async def add_patient(engine: AsyncEngine, tenant: Tenant, **fields: Any) -> User:
    """A patient row written straight to a clinic's schema (self-registered or imported)."""
    info = tenant_info(tenant)
    assert info is not None
    values: dict[str, Any] = {"first_name": "Test", "last_name": "Patient", "is_active": True}
    async with clinic_transaction(engine, info) as session:
        user = User(role="patient", **{**values, **fields})
        session.add(user)
    return user


async def users_in(engine: AsyncEngine, tenant: Tenant) -> int:
    info = tenant_info(tenant)
    assert info is not None
    async with clinic_transaction(engine, info) as session:
        return int(await session.scalar(select(func.count()).select_from(User)) or 0)


async def test_reception_registers_a_walk_in_without_email_or_account(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    desk_id, desk = await token_for(clinic_a, engine, "receptionist")
    made = await register(clinic_a, desk)

    assert made["email"] is None and made["hasAccount"] is False
    assert made["role"] == "patient" and made["isActive"] is True
    assert made["registeredBy"] == str(desk_id) and made["mergedIntoId"] is None
    assert made["dateOfBirth"] == "1984-03-02" and made["sex"] == "female"
    assert made["preferredLanguage"] == "de-AT"
    assert made["messagePreferences"]["locale"] == "de-AT"
    assert made["address"] == {
        "line1": "Hauptstrasse 1",
        "line2": None,
        "city": "Graz",
        "postalCode": "8010",
        "region": None,
        "country": "AT",
    }
    assert made["emergencyContact"] == WALK_IN["emergencyContact"]
    assert made["insurance"] == WALK_IN["insurance"]

    shown = await clinic_a.call("GET", f"/patients/{made['id']}", desk)
    assert shown.status_code == 200 and shown.json()["data"] == made

    # A second walk-in without an email: emails are optional, not shared.
    other = await register(clinic_a, desk, firstName="Ben", phone="0316 777 888")
    assert other["email"] is None and other["id"] != made["id"]


async def test_search_by_name_phone_and_date_of_birth(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    _, desk = await token_for(clinic_a, engine, "receptionist")
    ana = await register(clinic_a, desk)
    await register(
        clinic_a, desk, firstName="Ben", phone="+1 (555) 010-9999", dateOfBirth="1990-01-01"
    )
    await add_patient(engine, clinic_a.tenant, email="carla@self.example", first_name="Carla")

    async def ids(query: str) -> list[str]:
        response = await clinic_a.call("GET", f"/patients?{query}", desk)
        assert response.status_code == 200, response.text
        return [p["id"] for p in response.json()["data"]]

    assert await ids("q=morgan%20ana") == await ids("q=Ana") == [ana["id"]] * 1
    assert len(await ids("q=morgan")) == 2
    assert await ids("phone=6641234567") == [ana["id"]]
    assert await ids("phone=%2B43%20664%20123") == [ana["id"]]  # separators do not matter
    assert await ids("dateOfBirth=1984-03-02") == [ana["id"]]
    assert await ids("dateOfBirth=1984-03-02&q=ben") == []
    assert len(await ids("q=carla@SELF")) == 1  # the email search keeps working
    assert await ids("q=%25") == []  # LIKE wildcards are matched literally

    too_short = await clinic_a.call("GET", "/patients?phone=12", desk)
    assert too_short.status_code == 422
    assert too_short.json()["errors"][0]["field"] == "phone"
    bad_date = await clinic_a.call("GET", "/patients?dateOfBirth=yesterday", desk)
    assert bad_date.status_code == 400  # an unreadable query parameter
    nul = await clinic_a.call("GET", "/patients?q=an%00a", desk)
    assert nul.status_code == 400 and nul.json()["errors"][0]["field"] == "q"


async def test_bad_input_names_the_field_and_writes_nothing(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    _, desk = await token_for(clinic_a, engine, "receptionist")
    before = await users_in(engine, clinic_a.tenant)
    tomorrow = (datetime.date.today() + datetime.timedelta(days=1)).isoformat()
    cases: list[tuple[dict[str, Any], str]] = [
        ({"dateOfBirth": tomorrow}, "dateOfBirth"),
        ({"dateOfBirth": "1700-01-01"}, "dateOfBirth"),
        ({"phone": "call me"}, "phone"),
        ({"email": "not-an-email"}, "email"),
        ({"sex": "robot"}, "sex"),
        ({"preferredLanguage": "English"}, "preferredLanguage"),
        ({"emergencyContact": {"name": "Bo"}}, "emergencyContact.phone"),
        ({"insurance": {"payer": "OeGK"}}, "insurance.memberId"),
        ({"address": {"country": "Austria"}}, "address.country"),
        ({"firstName": "  "}, "firstName"),
        ({"lastName": "Mor\u0000gan"}, "lastName"),  # PostgreSQL refuses NUL in text
        ({"insurance": {"payer": "O\u0000", "memberId": "1"}}, "insurance.payer"),
    ]
    for change, field in cases:
        response = await clinic_a.call("POST", "/patients", desk, json={**WALK_IN, **change})
        assert response.status_code == 422, (change, response.text)
        body = response.json()
        assert body["success"] is False
        assert [e["field"] for e in body["errors"]] == [field], (change, body)
    missing = {k: v for k, v in WALK_IN.items() if k != "dateOfBirth"}
    response = await clinic_a.call("POST", "/patients", desk, json=missing)
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "dateOfBirth"
    assert await users_in(engine, clinic_a.tenant) == before

    # An email already used at the clinic (by anyone) is refused, naming it.
    await add_user(engine, clinic_a.tenant, "taken@example.com", "patient")
    taken = await clinic_a.call(
        "POST", "/patients", desk, json={**WALK_IN, "email": "Taken@example.com"}
    )
    assert taken.status_code == 409 and taken.json()["errors"][0]["field"] == "email"


async def test_patch_changes_only_the_fields_sent(clinic_a: ClinicApi, engine: AsyncEngine) -> None:
    _, desk = await token_for(clinic_a, engine, "receptionist")
    made = await register(clinic_a, desk)
    path = f"/patients/{made['id']}"

    changed = await clinic_a.call("PATCH", path, desk, json={"insurance": {"group": "G-8"}})
    assert changed.status_code == 200, changed.text
    data = changed.json()["data"]
    assert data["insurance"] == {**WALK_IN["insurance"], "group": "G-8"}
    assert {k: data[k] for k in ("firstName", "phone", "address", "emergencyContact")} == {
        k: made[k] for k in ("firstName", "phone", "address", "emergencyContact")
    }

    cleared = await clinic_a.call(
        "PATCH",
        path,
        desk,
        json={"address": None, "lastName": "Morgan-Lee", "email": "ana@x.example"},
    )
    data = cleared.json()["data"]
    assert data["address"] is None and data["lastName"] == "Morgan-Lee"
    assert data["email"] == "ana@x.example" and data["insurance"]["group"] == "G-8"

    for change, field in [
        ({"dateOfBirth": "2999-01-01"}, "dateOfBirth"),
        ({"emergencyContact": {"phone": None}}, "emergencyContact.phone"),
        ({"sex": "x"}, "sex"),
    ]:
        refused = await clinic_a.call("PATCH", path, desk, json=change)
        assert refused.status_code == 422, refused.text
        assert [e["field"] for e in refused.json()["errors"]] == [field]
    after = (await clinic_a.call("GET", path, desk)).json()["data"]
    assert after == data

    nobody = await clinic_a.call("PATCH", f"/patients/{uuid.uuid4()}", desk, json={})
    assert nobody.status_code == 404


async def test_a_patient_changes_only_their_own_contact_details(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    _, desk = await token_for(clinic_a, engine, "receptionist")
    me_id, me = await token_for(clinic_a, engine, "patient")
    other = await register(clinic_a, desk)

    mine = await clinic_a.call(
        "PATCH",
        f"/patients/{me_id}",
        me,
        json={
            "phone": "+49 30 1234567",
            "address": {"line1": "Am Ufer 2", "city": "Berlin", "country": "DE"},
            "emergencyContact": {"name": "Kim", "phone": "+49 30 7654321"},
        },
    )
    assert mine.status_code == 200, mine.text
    assert mine.json()["data"]["address"]["city"] == "Berlin"
    assert mine.json()["data"]["hasAccount"] is True

    for field, value in [("lastName", "Else"), ("insurance", {"payer": "X", "memberId": "1"})]:
        refused = await clinic_a.call("PATCH", f"/patients/{me_id}", me, json={field: value})
        assert refused.status_code == 403, refused.text
        assert refused.json()["errors"][0]["field"] == field
    # The email a patient signs in with is not changed through this route, not even by staff.
    by_desk = await clinic_a.call(
        "PATCH", f"/patients/{me_id}", desk, json={"email": "new@x.example"}
    )
    assert by_desk.status_code == 409 and by_desk.json()["errors"][0]["field"] == "email"

    someone_else = await clinic_a.call(
        "PATCH", f"/patients/{other['id']}", me, json={"phone": "+1 555 0100"}
    )
    assert someone_else.status_code == 404
    assert (await clinic_a.call("GET", f"/patients/{other['id']}", desk)).json()["data"][
        "phone"
    ] == WALK_IN["phone"]


async def test_role_by_role(clinic_a: ClinicApi, engine: AsyncEngine) -> None:
    """Reception and admins handle demographics and insurance; doctors, nurses and billing
    read them; a patient reads only their own record."""
    _, desk = await token_for(clinic_a, engine, "receptionist")
    made = await register(clinic_a, desk)
    path = f"/patients/{made['id']}"
    expect = {
        "clinic_admin": (201, 200, 200, 200),
        "receptionist": (201, 200, 200, 200),
        "doctor": (403, 200, 200, 403),
        "nurse": (403, 200, 200, 403),
        "billing": (403, 200, 200, 403),
        "patient": (403, 403, 404, 404),
    }
    for role, (create, listing, read, change) in expect.items():
        _, token = await token_for(clinic_a, engine, role)
        got = (
            (await clinic_a.call("POST", "/patients", token, json=WALK_IN)).status_code,
            (await clinic_a.call("GET", "/patients?q=morgan", token)).status_code,
            (await clinic_a.call("GET", path, token)).status_code,
            (await clinic_a.call("PATCH", path, token, json={"phone": "+43 1 234567"})).status_code,
        )
        assert got == (create, listing, read, change), role
        if role == "billing":
            shown = (await clinic_a.call("GET", path, token)).json()["data"]
            assert shown["insurance"]["memberId"] == "1234 020384"
        merge = await clinic_a.call(
            "POST", f"{path}/merge", token, json={"duplicateId": str(uuid.uuid4())}
        )
        invite = await clinic_a.call("POST", f"{path}/invite", token)
        if role in ("clinic_admin", "receptionist"):
            assert merge.status_code == 404 and invite.status_code == 422
        else:
            assert merge.status_code == invite.status_code == 403, role


async def test_the_same_person_at_two_clinics_is_two_unrelated_patients(
    clinic_a: ClinicApi, clinic_b: ClinicApi, engine: AsyncEngine
) -> None:
    _, desk_a = await token_for(clinic_a, engine, "receptionist")
    _, desk_b = await token_for(clinic_b, engine, "receptionist")
    at_a = await register(clinic_a, desk_a, email="ana@two.example")
    # Clinic B holds a patient with the same id and the same email, made another way.
    await add_patient(
        engine,
        clinic_b.tenant,
        id=uuid.UUID(at_a["id"]),
        email="ana@two.example",
        first_name="Ana",
        last_name="Other",
    )
    at_b = await register(clinic_b, desk_b, email="ana2@two.example", phone="+43 664 123-4567")

    changed = await clinic_a.call(
        "PATCH", f"/patients/{at_a['id']}", desk_a, json={"lastName": "Changed"}
    )
    assert changed.status_code == 200
    seen_at_b = (await clinic_b.call("GET", f"/patients/{at_a['id']}", desk_b)).json()["data"]
    assert seen_at_b["lastName"] == "Other" and seen_at_b["insurance"] is None
    listed_b = (await clinic_b.call("GET", "/patients?phone=6641234567", desk_b)).json()["data"]
    assert [p["id"] for p in listed_b] == [at_b["id"]]
    listed_a = (await clinic_a.call("GET", "/patients?q=ana@two", desk_a)).json()["data"]
    assert [(p["id"], p["lastName"]) for p in listed_a] == [(at_a["id"], "Changed")]
    # A's staff cannot reach B's record of the same id, nor B's other patient.
    assert (await clinic_a.call("GET", f"/patients/{at_b['id']}", desk_a)).status_code == 404


def test_a_walk_in_without_email_is_told_of_visits_by_text_only() -> None:
    walk_in = User(
        email=None, role="patient", phone="+43 664 123-4567", message_channels=["email", "sms"]
    )
    reaches = {r.channel: r for r in reach_for(walk_in)}
    assert reaches["email"].refused == "the patient has no email address"
    assert reaches["sms"].sendable and reaches["sms"].address == "+436641234567"


async def test_every_read_and_write_of_a_patient_is_in_the_audit_trail(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    _, admin = await token_for(clinic_a, engine, "clinic_admin")
    _, desk = await token_for(clinic_a, engine, "receptionist")
    _, doctor = await token_for(clinic_a, engine, "doctor")
    made = await register(clinic_a, desk)
    path = f"/patients/{made['id']}"
    assert (await clinic_a.call("PATCH", path, desk, json={"phone": "+43 1 999"})).is_success
    refused = await clinic_a.call("PATCH", path, desk, json={"sex": "robot"})
    assert refused.status_code == 422  # changes nothing, so records nothing
    assert (await clinic_a.call("GET", path, doctor)).is_success
    assert (await clinic_a.call("GET", "/patients?q=morgan", desk)).is_success

    trail = await clinic_a.call("GET", f"/audit?patientId={made['id']}&limit=50", admin)
    assert trail.status_code == 200, trail.text
    seen = sorted((e["action"], e["resource"], e["actorRole"]) for e in trail.json()["data"])
    assert seen == [
        ("create", "patient", "receptionist"),
        ("list", "patient", "receptionist"),
        ("read", "patient", "doctor"),
        ("update", "patient", "receptionist"),
    ]
