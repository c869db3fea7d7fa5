"""Host -> clinic resolution, and which routes answer on which host."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import insert, update
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.app import create_app
from polyclinic.db.base import utcnow
from polyclinic.tenancy.models import Domain, Tenant, TenantStatus
from polyclinic.tenancy.resolver import normalize_host
from tests.conftest import BASE_DOMAIN, PLATFORM_HOST, TRUSTED_PROXY, Client


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Riverside.Clinics.Test", "riverside.clinics.test"),
        ("riverside.clinics.test:8443", "riverside.clinics.test"),
        ("riverside.clinics.test.", "riverside.clinics.test"),
        ("RIVERSIDE.clinics.test.:80", "riverside.clinics.test"),
        ("[::1]:8000", "[::1]"),
    ],
)
def test_host_normalisation(raw: str, expected: str) -> None:
    assert normalize_host(raw) == expected


async def test_port_case_and_trailing_dot_reach_the_clinic(
    client: Client, two_clinics: tuple[Tenant, Tenant]
) -> None:
    a, _ = two_clinics
    for host in (
        f"{a.slug}.{BASE_DOMAIN}:8000",
        f"{a.slug.upper()}.{BASE_DOMAIN.upper()}",
        f"{a.slug}.{BASE_DOMAIN}.",
    ):
        response = await client.request("GET", "/api/v1/clinic", host)
        assert response.status_code == 200, (host, response.text)
        assert response.json()["data"]["name"] == a.name


async def test_custom_domain_reaches_its_clinic(
    client: Client, engine: AsyncEngine, two_clinics: tuple[Tenant, Tenant]
) -> None:
    _, b = two_clinics
    host = f"book.{b.slug}-hilltop.example"
    async with engine.begin() as connection:
        now = utcnow()
        await connection.execute(
            insert(Domain).values(
                id=uuid.uuid4(),
                tenant_id=b.id,
                host=host,
                is_primary=False,
                created_at=now,
                updated_at=now,
            )
        )
    response = await client.request("GET", "/api/v1/clinic", host.upper() + ":443")
    assert response.status_code == 200
    assert response.json()["data"]["name"] == "Hilltop Clinic"


async def test_unknown_host_is_404_in_the_envelope(client: Client) -> None:
    response = await client.request("GET", "/api/v1/clinic", f"nobody.{BASE_DOMAIN}")
    assert response.status_code == 404
    assert response.json() == {
        "success": False,
        "statusCode": 404,
        "message": "No clinic answers at this address",
        "errors": [],
    }


async def _set_status(engine: AsyncEngine, tenant: Tenant, status: TenantStatus) -> None:
    async with engine.begin() as connection:
        await connection.execute(update(Tenant).where(Tenant.id == tenant.id).values(status=status))


async def test_suspended_clinic_is_403_and_deleted_is_404(
    settings: object, engine: AsyncEngine, two_clinics: tuple[Tenant, Tenant]
) -> None:
    a, b = two_clinics
    await _set_status(engine, a, TenantStatus.SUSPENDED)
    await _set_status(engine, b, TenantStatus.DELETED)
    app = create_app(settings)  # type: ignore[arg-type]
    client = Client(app)

    suspended = await client.clinic(a.slug)
    deleted = await client.clinic(b.slug)

    assert suspended.status_code == 403
    assert "suspended" in suspended.json()["message"]
    assert deleted.status_code == 404
    await app.state.runtime.engine.dispose()


async def test_platform_routes_only_on_the_platform_host(
    client: Client, two_clinics: tuple[Tenant, Tenant]
) -> None:
    a, _ = two_clinics
    body = {"email": "x@y.test", "password": "whatever"}
    on_clinic = await client.request(
        "POST", "/platform/v1/auth/login", f"{a.slug}.{BASE_DOMAIN}", json=body
    )
    assert on_clinic.status_code == 404
    assert on_clinic.json()["message"] == "The platform API answers only on the platform host"
    for host in (PLATFORM_HOST, BASE_DOMAIN):
        on_platform = await client.request("POST", "/platform/v1/auth/login", host, json=body)
        assert on_platform.status_code == 401, host


async def test_clinic_routes_only_on_clinic_hosts(client: Client) -> None:
    for host in (PLATFORM_HOST, BASE_DOMAIN, f"{BASE_DOMAIN}:8000"):
        response = await client.request("GET", "/api/v1/clinic", host)
        assert response.status_code == 404
        assert response.json()["message"] == "The clinic API answers only on a clinic's own address"


async def test_forwarded_host_is_ignored_from_untrusted_clients(
    app: object, two_clinics: tuple[Tenant, Tenant]
) -> None:
    a, b = two_clinics
    untrusted = Client(app, client_ip="203.0.113.5")
    trusted = Client(app, client_ip=TRUSTED_PROXY)
    forwarded = {"x-forwarded-host": f"{b.slug}.{BASE_DOMAIN}"}

    spoofed = await untrusted.clinic(a.slug, headers=forwarded)
    proxied = await trusted.request("GET", "/api/v1/clinic", "internal-lb.local", headers=forwarded)

    assert spoofed.json()["data"]["name"] == a.name
    assert proxied.status_code == 200
    assert proxied.json()["data"]["name"] == b.name


async def test_a_suspension_reaches_every_process_at_once(
    settings: object, two_clinics: tuple[Tenant, Tenant], admin_token: str, client: Client
) -> None:
    """Another process that cached the clinic as active hears of the change through Redis."""
    import asyncio

    a, _ = two_clinics
    other_app = create_app(settings)  # type: ignore[arg-type]
    listening = asyncio.Event()
    listener = asyncio.create_task(other_app.state.runtime.resolver.listen(listening))
    await asyncio.wait_for(listening.wait(), 5)
    other = Client(other_app)
    assert (await other.clinic(a.slug)).status_code == 200

    suspended = await client.platform("POST", f"/platform/v1/clinics/{a.id}/suspend", admin_token)
    assert suspended.status_code == 200

    statuses = []
    for _ in range(50):
        statuses.append((await other.clinic(a.slug)).status_code)
        if statuses[-1] == 403:
            break
        await asyncio.sleep(0.02)
    listener.cancel()
    await other_app.state.runtime.engine.dispose()
    await other_app.state.runtime.redis.aclose()
    assert statuses[-1] == 403, statuses
