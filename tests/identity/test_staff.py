"""Invitations (including the first admin's, sent by provisioning) and staff management."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import Client, unique_subdomain
from tests.identity.conftest import PASSWORD, CapturingMailer, ClinicApi, add_user


async def accept(clinic: ClinicApi, token: str, password: str = "joining-secret-words-3"):  # type: ignore[no-untyped-def]
    return await clinic.call(
        "POST",
        "/auth/accept-invitation",
        json={"token": token, "password": password, "firstName": "New", "lastName": "Member"},
    )


async def test_a_new_clinic_invites_its_first_admin(
    client: Client, admin_token: str, mailer: CapturingMailer
) -> None:
    subdomain = unique_subdomain()
    created = await client.platform(
        "POST",
        "/platform/v1/clinics",
        admin_token,
        json={
            "name": "Lakeside",
            "subdomain": subdomain,
            "timezone": "UTC",
            "adminEmail": "Owner@Lakeside.example",
        },
    )
    assert created.status_code == 201
    await mailer.delivered()
    token = mailer.token_for("owner@lakeside.example", "staff_invitation")

    class Tenant:  # just what ClinicApi needs
        slug = subdomain

    clinic = ClinicApi(client, Tenant)  # type: ignore[arg-type]
    accepted = await accept(clinic, token)
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["data"]["role"] == "clinic_admin"
    assert accepted.json()["data"]["emailVerified"] is True
    assert (await accept(clinic, token)).status_code == 422
    signed_in = await clinic.login("owner@lakeside.example", "joining-secret-words-3")
    assert signed_in["user"]["role"] == "clinic_admin"


async def test_invite_accept_resend_revoke(
    clinic_a: ClinicApi, engine: AsyncEngine, mailer: CapturingMailer
) -> None:
    await add_user(engine, clinic_a.tenant, "head@example.com", "clinic_admin")
    admin = (await clinic_a.login("head@example.com"))["accessToken"]

    bad_role = await clinic_a.call(
        "POST", "/invitations", admin, json={"email": "x@example.com", "role": "patient"}
    )
    taken = await clinic_a.call(
        "POST", "/invitations", admin, json={"email": "head@example.com", "role": "doctor"}
    )
    assert bad_role.status_code == 422 and bad_role.json()["errors"][0]["field"] == "role"
    assert taken.status_code == 409

    invited = await clinic_a.call(
        "POST", "/invitations", admin, json={"email": "Doc@Example.com", "role": "doctor"}
    )
    assert invited.status_code == 201 and invited.json()["data"]["status"] == "pending"
    invitation_id = invited.json()["data"]["id"]
    await mailer.delivered()
    first_token = mailer.token_for("doc@example.com", "staff_invitation")

    resent = await clinic_a.call("POST", f"/invitations/{invitation_id}/resend", admin)
    assert resent.status_code == 200
    await mailer.delivered()
    second_token = mailer.token_for("doc@example.com", "staff_invitation")
    assert second_token != first_token
    assert (await accept(clinic_a, first_token)).status_code == 422

    accepted = await accept(clinic_a, second_token)
    assert accepted.status_code == 201 and accepted.json()["data"]["role"] == "doctor"
    doctor = await clinic_a.login("doc@example.com", "joining-secret-words-3")
    assert doctor["user"]["role"] == "doctor"

    other = await clinic_a.call(
        "POST", "/invitations", admin, json={"email": "nurse2@example.com", "role": "nurse"}
    )
    await mailer.delivered()
    nurse_token = mailer.token_for("nurse2@example.com", "staff_invitation")
    revoked = await clinic_a.call("DELETE", f"/invitations/{other.json()['data']['id']}", admin)
    assert revoked.json()["data"]["status"] == "revoked"
    assert (await accept(clinic_a, nurse_token)).status_code == 422

    listed = await clinic_a.call("GET", "/invitations", admin)
    statuses = {i["email"]: i["status"] for i in listed.json()["data"]}
    assert statuses == {
        clinic_a.tenant.admin_email: "pending",  # sent when the clinic was provisioned
        "doc@example.com": "accepted",
        "nurse2@example.com": "revoked",
    }
    assert listed.json()["meta"]["total"] == 3


async def test_role_change_and_deactivation_apply_at_once(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    boss = await add_user(engine, clinic_a.tenant, "boss2@example.com", "clinic_admin")
    doc = await add_user(engine, clinic_a.tenant, "doc3@example.com", "doctor")
    await add_user(engine, clinic_a.tenant, "pat3@example.com", "patient")
    admin = (await clinic_a.login("boss2@example.com"))["accessToken"]
    doctor = (await clinic_a.login("doc3@example.com"))["accessToken"]

    staff = await clinic_a.call("GET", "/staff", admin)
    assert {u["email"] for u in staff.json()["data"]} == {"boss2@example.com", "doc3@example.com"}

    # Promoted: the very next request of the same token may do what admins do.
    assert (await clinic_a.call("GET", "/staff", doctor)).status_code == 403
    promoted = await clinic_a.call(
        "PATCH", f"/staff/{doc.id}", admin, json={"role": "clinic_admin"}
    )
    assert promoted.json()["data"]["role"] == "clinic_admin"
    assert (await clinic_a.call("GET", "/staff", doctor)).status_code == 200
    await clinic_a.call("PATCH", f"/staff/{doc.id}", admin, json={"role": "doctor"})

    deactivated = await clinic_a.call("POST", f"/staff/{doc.id}/deactivate", admin)
    assert deactivated.json()["data"]["isActive"] is False
    assert (await clinic_a.call("GET", "/auth/me", doctor)).status_code == 401
    login = await clinic_a.call(
        "POST", "/auth/login", json={"email": "doc3@example.com", "password": PASSWORD}
    )
    assert login.status_code == 401

    last_admin = await clinic_a.call("POST", f"/staff/{boss.id}/deactivate", admin)
    demote_last = await clinic_a.call("PATCH", f"/staff/{boss.id}", admin, json={"role": "nurse"})
    assert last_admin.status_code == demote_last.status_code == 409

    await clinic_a.call("POST", f"/staff/{doc.id}/reactivate", admin)
    assert (await clinic_a.login("doc3@example.com"))["user"]["isActive"] is True

    events = await clinic_a.call("GET", "/auth-events?event=role_changed", admin)
    assert events.json()["meta"]["total"] == 2
