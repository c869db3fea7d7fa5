"""A clinic whose setup failed keeps its subdomain for whoever asked for it: the same admin
email resumes it through the public signup, and so may the platform's super-admin; a public
signup by anyone else finds the subdomain taken (409) and changes nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.db.session import platform_session
from polyclinic.tenancy import provisioning
from polyclinic.tenancy.migrations import render_tenant_ddl
from polyclinic.tenancy.models import Tenant
from tests.billing.test_signup import signup_body
from tests.conftest import Client, unique_subdomain


async def failed_signup(client: Client, monkeypatch: pytest.MonkeyPatch) -> str:
    """A public signup whose build fails: the clinic is left `failed` with its subdomain."""
    head, ddl = render_tenant_ddl()
    subdomain = unique_subdomain()
    with monkeypatch.context() as patch:
        patch.setattr(provisioning, "render_tenant_ddl", lambda *_: (head, ddl + "\nSELECT 1/0;"))
        failed = await client.platform("POST", "/platform/v1/signup", json=signup_body(subdomain))
    assert failed.status_code == 500, failed.text
    return subdomain


async def registry_row(engine: AsyncEngine, subdomain: str) -> tuple[object, ...]:
    async with platform_session(engine) as session:
        tenant = await session.scalar(select(Tenant).where(Tenant.slug == subdomain))
        assert tenant is not None
        return (
            tenant.id,
            str(tenant.status),
            tenant.name,
            tenant.timezone,
            tenant.admin_email,
            tenant.updated_at,
        )


async def test_someone_else_cannot_take_over_a_failed_signup(
    client: Client, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    subdomain = await failed_signup(client, monkeypatch)
    before = await registry_row(engine, subdomain)
    assert before[1] == "failed" and before[4] == "founder@harbour.example"

    other = await client.platform(
        "POST",
        "/platform/v1/signup",
        json=signup_body(subdomain, clinicName="Pirate Clinic", adminEmail="someone@else.example"),
    )

    assert other.status_code == 409, other.text
    body = other.json()
    assert body["success"] is False and body["statusCode"] == 409
    assert body["errors"] == [{"field": "subdomain", "message": "is already taken"}]
    assert await registry_row(engine, subdomain) == before
    assert (await client.clinic(subdomain)).status_code == 404

    # The one who asked first still can (the email's case does not matter).
    mine = await client.platform(
        "POST",
        "/platform/v1/signup",
        json=signup_body(subdomain, adminEmail="FOUNDER@harbour.example"),
    )
    assert mine.status_code == 201, mine.text
    assert mine.json()["data"]["clinic"]["adminEmail"] == "founder@harbour.example"
    assert mine.json()["data"]["clinic"]["id"] == str(before[0])


async def test_the_super_admin_may_resume_a_failed_signup_for_another_admin(
    client: Client, admin_token: str, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    subdomain = await failed_signup(client, monkeypatch)
    before = await registry_row(engine, subdomain)

    resumed = await client.platform(
        "POST",
        "/platform/v1/clinics",
        admin_token,
        json={
            "name": "Harbour Clinic",
            "subdomain": subdomain,
            "timezone": "Europe/Lisbon",
            "adminEmail": "new-owner@harbour.example",
        },
    )

    assert resumed.status_code == 201, resumed.text
    data = resumed.json()["data"]
    assert data["id"] == str(before[0])
    assert data["status"] == "active" and data["adminEmail"] == "new-owner@harbour.example"
    assert (await client.clinic(subdomain)).status_code == 200
