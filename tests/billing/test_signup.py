"""Self-service onboarding: sign up, sign in at once, see the trial and its quota."""

from __future__ import annotations

import pytest

from polyclinic.tenancy import provisioning
from polyclinic.tenancy.migrations import render_tenant_ddl
from tests.conftest import Client, unique_subdomain
from tests.identity.conftest import ClinicApi


def signup_body(subdomain: str, **overrides: object) -> dict[str, object]:
    return {
        "clinicName": "Harbour Clinic",
        "subdomain": subdomain,
        "timezone": "Europe/Lisbon",
        "adminEmail": "Founder@Harbour.example",
        "adminPassword": "harbour-founder-words-1",
        "planCode": "growth",
        **overrides,
    }


async def test_a_clinic_signs_itself_up_and_its_admin_signs_in_at_once(client: Client) -> None:
    subdomain = unique_subdomain()
    free = await client.platform("GET", f"/platform/v1/subdomains/{subdomain}")
    assert free.json()["data"] == {"subdomain": subdomain, "available": True, "reason": None}

    signed_up = await client.platform("POST", "/platform/v1/signup", json=signup_body(subdomain))

    assert signed_up.status_code == 201, signed_up.text
    data = signed_up.json()["data"]
    assert data["clinic"]["status"] == "active" and data["url"].startswith(f"https://{subdomain}.")

    class Tenant:
        slug = subdomain

    clinic = ClinicApi(client, Tenant)  # type: ignore[arg-type]
    admin = await clinic.login("founder@harbour.example", "harbour-founder-words-1")
    assert admin["user"]["role"] == "clinic_admin"
    subscription = (await clinic.call("GET", "/billing/subscription", admin["accessToken"])).json()[
        "data"
    ]
    assert subscription["status"] == "trialing" and subscription["plan"]["code"] == "growth"
    assert subscription["quota"] == {"included": 1000, "used": 0, "remaining": 1000, "overage": 0}

    taken = await client.platform("GET", f"/platform/v1/subdomains/{subdomain}")
    assert (
        taken.json()["data"]["available"] is False
        and taken.json()["data"]["reason"] == "is already taken"
    )
    again = await client.platform("POST", "/platform/v1/signup", json=signup_body(subdomain))
    assert again.status_code == 409


async def test_bad_signups_change_nothing(client: Client) -> None:
    subdomain = unique_subdomain()
    cases = [
        (signup_body(subdomain, adminPassword="123456"), "adminPassword"),
        (signup_body(subdomain, planCode="platinum"), "planCode"),
        (signup_body(subdomain, timezone="Nowhere/Else"), "timezone"),
        (signup_body("www"), "subdomain"),
    ]
    for body, field in cases:
        response = await client.platform("POST", "/platform/v1/signup", json=body)
        assert response.status_code == 422, (field, response.text)
        assert response.json()["errors"][0]["field"] == field
    still_free = await client.platform("GET", f"/platform/v1/subdomains/{subdomain}")
    assert still_free.json()["data"]["available"] is True
    reserved = await client.platform("GET", "/platform/v1/subdomains/admin")
    assert reserved.json()["data"] == {
        "subdomain": "admin",
        "available": False,
        "reason": "is reserved by the platform",
    }


async def test_a_signup_on_a_subdomain_left_failed_keeps_its_plan_and_admin(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    head, ddl = render_tenant_ddl()
    subdomain = unique_subdomain()
    with monkeypatch.context() as patch:
        patch.setattr(provisioning, "render_tenant_ddl", lambda *_: (head, ddl + "\nSELECT 1/0;"))
        failed = await client.platform("POST", "/platform/v1/signup", json=signup_body(subdomain))
    assert failed.status_code >= 500

    resumed = await client.platform("POST", "/platform/v1/signup", json=signup_body(subdomain))

    assert resumed.status_code == 201, resumed.text

    class Tenant:
        slug = subdomain

    clinic = ClinicApi(client, Tenant)  # type: ignore[arg-type]
    admin = await clinic.login("founder@harbour.example", "harbour-founder-words-1")
    mine = await clinic.call("GET", "/billing/subscription", admin["accessToken"])
    assert mine.json()["data"]["plan"]["code"] == "growth"
