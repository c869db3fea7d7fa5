"""Custom domains: added and removed by super-admins, resolved like the primary subdomain."""

from __future__ import annotations

import pytest

from polyclinic.tenancy.models import Tenant
from tests.conftest import BASE_DOMAIN, Client


async def test_custom_domain_lifecycle(
    client: Client, admin_token: str, two_clinics: tuple[Tenant, Tenant]
) -> None:
    a, b = two_clinics
    base = f"/platform/v1/clinics/{a.id}/domains"
    host = f"book.{a.slug}.example"

    added = await client.platform("POST", base, admin_token, json={"host": host.upper() + "."})
    assert added.status_code == 201, added.text
    domain = added.json()["data"]
    assert domain["host"] == host and domain["isPrimary"] is False
    assert (await client.request("GET", "/api/v1/clinic", host)).json()["data"]["name"] == a.name

    listed = await client.platform("GET", base, admin_token)
    assert [d["host"] for d in listed.json()["data"]] == [f"{a.slug}.{BASE_DOMAIN}", host]

    taken = await client.platform(
        "POST", f"/platform/v1/clinics/{b.id}/domains", admin_token, json={"host": host}
    )
    assert taken.status_code == 409

    wrong_clinic = await client.platform(
        "DELETE", f"/platform/v1/clinics/{b.id}/domains/{domain['id']}", admin_token
    )
    assert wrong_clinic.status_code == 404
    primary_id = listed.json()["data"][0]["id"]
    primary = await client.platform("DELETE", f"{base}/{primary_id}", admin_token)
    assert primary.status_code == 409

    removed = await client.platform("DELETE", f"{base}/{domain['id']}", admin_token)
    assert removed.status_code == 200
    assert (await client.request("GET", "/api/v1/clinic", host)).status_code == 404


@pytest.mark.parametrize(
    "host",
    ["localhost", "no spaces.example", "-bad.example", "10.0.0.1", f"x.{BASE_DOMAIN}", BASE_DOMAIN],
)
async def test_unusable_hosts_are_422(
    client: Client, admin_token: str, two_clinics: tuple[Tenant, Tenant], host: str
) -> None:
    a, _ = two_clinics
    response = await client.platform(
        "POST", f"/platform/v1/clinics/{a.id}/domains", admin_token, json={"host": host}
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "host"
