"""Creating, suspending, reactivating, deleting and purging clinics through the API."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.tenancy import provisioning
from polyclinic.tenancy.migrations import render_tenant_ddl
from polyclinic.tenancy.provisioning import Provisioner
from tests.conftest import Client, unique_subdomain


def clinic_body(subdomain: str, **overrides: str) -> dict[str, str]:
    return {
        "name": "Riverside Clinic",
        "subdomain": subdomain,
        "timezone": "Europe/Berlin",
        "adminEmail": f"owner@{subdomain}.example",
        **overrides,
    }


async def schema_and_role_exist(engine: AsyncEngine, name: str) -> tuple[bool, bool]:
    async with engine.connect() as connection:
        schema = await connection.scalar(
            text("SELECT count(*) FROM pg_namespace WHERE nspname = :n"), {"n": name}
        )
        role = await connection.scalar(
            text("SELECT count(*) FROM pg_roles WHERE rolname = :n"), {"n": name}
        )
    return bool(schema), bool(role)


async def create_failing_clinic(
    client: Client, admin_token: str, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, str, httpx.Response]:
    """POST a clinic whose build fails after its role, schema and tables were created."""
    head, ddl = render_tenant_ddl()
    subdomain = unique_subdomain()
    with monkeypatch.context() as patch:
        patch.setattr(provisioning, "render_tenant_ddl", lambda *_: (head, ddl + "\nSELECT 1/0;"))
        response = await client.platform(
            "POST", "/platform/v1/clinics", admin_token, json=clinic_body(subdomain)
        )
    listed = await client.platform(
        "GET", "/platform/v1/clinics?status=failed&limit=100", admin_token
    )
    clinic_id = next(c["id"] for c in listed.json()["data"] if c["subdomain"] == subdomain)
    return subdomain, clinic_id, response


async def test_created_clinic_answers_on_its_subdomain_at_once(
    client: Client, admin_token: str
) -> None:
    subdomain = unique_subdomain()
    response = await client.platform(
        "POST", "/platform/v1/clinics", admin_token, json=clinic_body(subdomain)
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["success"] is True and body["statusCode"] == 201
    data = body["data"]
    assert {k: data[k] for k in ("name", "subdomain", "status", "timezone")} == {
        "name": "Riverside Clinic",
        "subdomain": subdomain,
        "status": "active",
        "timezone": "Europe/Berlin",
    }
    assert data["id"] and data["createdAt"]
    clinic = await client.clinic(subdomain)
    assert clinic.status_code == 200
    assert clinic.json()["data"] == {
        "name": "Riverside Clinic",
        "subdomain": subdomain,
        "timezone": "Europe/Berlin",
        "phone": None,
        "address": None,
        "contactEmail": None,
    }
    fetched = await client.platform("GET", f"/platform/v1/clinics/{data['id']}", admin_token)
    assert fetched.json()["data"]["schemaVersion"] == render_tenant_ddl()[0]


async def test_taken_subdomain_is_409(client: Client, admin_token: str) -> None:
    subdomain = unique_subdomain()
    first = await client.platform(
        "POST", "/platform/v1/clinics", admin_token, json=clinic_body(subdomain)
    )
    again = await client.platform(
        "POST", "/platform/v1/clinics", admin_token, json=clinic_body(subdomain, name="Other")
    )
    assert first.status_code == 201
    assert again.status_code == 409
    assert again.json()["errors"] == [{"field": "subdomain", "message": "is already taken"}]


@pytest.mark.parametrize(
    ("subdomain", "reason"),
    [
        ("www", "is reserved by the platform"),
        ("admin", "is reserved by the platform"),
        ("platform", "is reserved by the platform"),
        ("ab", "must be 3 to 40 characters long"),
        ("a" * 41, "must be 3 to 40 characters long"),
        ("-river", "may not start or end with a hyphen"),
        ("river-", "may not start or end with a hyphen"),
        ("River", "lowercase letters"),
        ("river_side", "lowercase letters"),
        ("xn--rvrsde-bva", "xn--"),
    ],
)
async def test_bad_subdomains_are_422_with_the_reason(
    client: Client, admin_token: str, subdomain: str, reason: str
) -> None:
    response = await client.platform(
        "POST", "/platform/v1/clinics", admin_token, json=clinic_body(subdomain)
    )
    assert response.status_code == 422
    body = response.json()
    assert body["errors"][0]["field"] == "subdomain"
    assert reason in body["errors"][0]["message"]


async def test_bad_fields_are_422_and_name_the_field(client: Client, admin_token: str) -> None:
    cases = [
        (clinic_body(unique_subdomain(), timezone="Mars/Olympus"), "timezone"),
        (clinic_body(unique_subdomain(), adminEmail="not-an-email"), "adminEmail"),
        ({"name": "No subdomain", "timezone": "UTC", "adminEmail": "a@b.example"}, "subdomain"),
        (clinic_body(unique_subdomain(), name=""), "name"),
        (clinic_body(unique_subdomain(), name="   "), "name"),
    ]
    for body, field in cases:
        response = await client.platform("POST", "/platform/v1/clinics", admin_token, json=body)
        assert response.status_code == 422, (field, response.text)
        assert response.json()["errors"][0]["field"] == field
    listed = await client.platform("GET", "/platform/v1/clinics?limit=100", admin_token)
    assert "No subdomain" not in {c["name"] for c in listed.json()["data"]}


async def test_failure_half_way_rolls_back_and_a_retry_succeeds(
    client: Client, admin_token: str, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    subdomain, clinic_id, failed = await create_failing_clinic(client, admin_token, monkeypatch)

    assert failed.status_code == 500
    assert "retry" in failed.json()["message"]
    schema = "clinic_" + clinic_id.replace("-", "")[:12]
    assert await schema_and_role_exist(engine, schema) == (False, False)
    assert (await client.clinic(subdomain)).status_code == 404

    retried = await client.platform("POST", f"/platform/v1/clinics/{clinic_id}/retry", admin_token)

    assert retried.status_code == 200, retried.text
    assert retried.json()["data"]["status"] == "active"
    assert await schema_and_role_exist(engine, schema) == (True, True)
    assert (await client.clinic(subdomain)).json()["data"]["name"] == "Riverside Clinic"


async def test_posting_a_failed_subdomain_again_resumes_it(
    client: Client, admin_token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    subdomain, _, failed = await create_failing_clinic(client, admin_token, monkeypatch)
    assert failed.status_code == 500

    again = await client.platform(
        "POST", "/platform/v1/clinics", admin_token, json=clinic_body(subdomain)
    )

    assert again.status_code == 201
    assert again.json()["data"]["status"] == "active"


async def test_suspend_reactivate_delete(client: Client, admin_token: str) -> None:
    subdomain = unique_subdomain()
    created = await client.platform(
        "POST", "/platform/v1/clinics", admin_token, json=clinic_body(subdomain)
    )
    clinic_id = created.json()["data"]["id"]
    base = f"/platform/v1/clinics/{clinic_id}"

    suspended = await client.platform("POST", f"{base}/suspend", admin_token)
    assert suspended.json()["data"]["status"] == "suspended"
    assert (await client.clinic(subdomain)).status_code == 403
    assert (await client.platform("POST", f"{base}/suspend", admin_token)).status_code == 409

    reactivated = await client.platform("POST", f"{base}/reactivate", admin_token)
    assert reactivated.json()["data"]["status"] == "active"
    assert (await client.clinic(subdomain)).status_code == 200

    deleted = await client.platform("DELETE", base, admin_token)
    assert deleted.status_code == 200
    assert deleted.json()["data"]["status"] == "deleted"
    assert deleted.json()["data"]["deletedAt"]
    assert (await client.clinic(subdomain)).status_code == 404
    assert (await client.platform("POST", f"{base}/reactivate", admin_token)).status_code == 409
    assert (await client.platform("DELETE", base, admin_token)).status_code == 409


async def test_unknown_clinic_id_is_404(client: Client, admin_token: str) -> None:
    missing = "00000000-0000-4000-8000-00000000dead"
    for method, path in [
        ("GET", f"/platform/v1/clinics/{missing}"),
        ("POST", f"/platform/v1/clinics/{missing}/suspend"),
        ("DELETE", f"/platform/v1/clinics/{missing}"),
    ]:
        response = await client.platform(method, path, admin_token)
        assert response.status_code == 404, path
    bad = await client.platform("GET", "/platform/v1/clinics/not-a-uuid", admin_token)
    assert bad.status_code in (400, 404, 422)
    assert bad.json()["success"] is False


async def test_listing_pages_and_filters_by_status(client: Client, admin_token: str) -> None:
    for _ in range(3):
        await client.platform(
            "POST", "/platform/v1/clinics", admin_token, json=clinic_body(unique_subdomain())
        )

    first = await client.platform("GET", "/platform/v1/clinics?limit=2&offset=0", admin_token)
    second = await client.platform("GET", "/platform/v1/clinics?limit=2&offset=2", admin_token)
    too_big = await client.platform("GET", "/platform/v1/clinics?limit=1000", admin_token)
    bad_status = await client.platform("GET", "/platform/v1/clinics?status=sleeping", admin_token)

    meta = first.json()["meta"]
    assert meta["limit"] == 2 and meta["offset"] == 0 and meta["total"] >= 3 and meta["hasMore"]
    assert len(first.json()["data"]) == 2
    assert {c["id"] for c in first.json()["data"]}.isdisjoint(
        {c["id"] for c in second.json()["data"]}
    )
    assert too_big.status_code in (400, 422)
    assert bad_status.status_code in (400, 422)
    active = await client.platform(
        "GET", "/platform/v1/clinics?status=active&limit=100", admin_token
    )
    assert {c["status"] for c in active.json()["data"]} == {"active"}


async def test_purge_archives_then_drops_schema_and_role(
    client: Client,
    admin_token: str,
    engine: AsyncEngine,
    provisioner: Provisioner,
    tmp_path: object,
) -> None:
    subdomain = unique_subdomain()
    created = await client.platform(
        "POST", "/platform/v1/clinics", admin_token, json=clinic_body(subdomain)
    )
    clinic_id = created.json()["data"]["id"]
    schema = "clinic_" + clinic_id.replace("-", "")[:12]

    with pytest.raises(Exception, match="Only a deleted clinic"):
        await provisioner.purge(uuid.UUID(clinic_id), Path(str(tmp_path)))
    await client.platform("DELETE", f"/platform/v1/clinics/{clinic_id}", admin_token)

    archive = await provisioner.purge(uuid.UUID(clinic_id), Path(str(tmp_path)))

    assert archive.exists() and archive.stat().st_size > 0
    assert await schema_and_role_exist(engine, schema) == (False, False)
    listed = await client.platform("GET", f"/platform/v1/clinics/{clinic_id}", admin_token)
    assert listed.json()["data"]["status"] == "deleted"


async def test_concurrent_retries_build_the_clinic_once(
    client: Client, admin_token: str, provisioner: Provisioner, monkeypatch: pytest.MonkeyPatch
) -> None:
    subdomain, clinic_id, _ = await create_failing_clinic(client, admin_token, monkeypatch)

    outcomes = await asyncio.gather(
        *(provisioner.build(uuid.UUID(clinic_id)) for _ in range(4)), return_exceptions=True
    )

    built = [o for o in outcomes if not isinstance(o, BaseException)]
    refused = [o for o in outcomes if isinstance(o, BaseException)]
    assert built and all(t.status == "active" for t in built)
    assert all("being provisioned" in str(e) for e in refused), refused
    fetched = await client.platform("GET", f"/platform/v1/clinics/{clinic_id}", admin_token)
    assert fetched.json()["data"]["status"] == "active"
    assert (await client.clinic(subdomain)).status_code == 200


async def test_concurrent_delete_and_suspend_cannot_revive_a_deleted_clinic(
    client: Client, admin_token: str
) -> None:

    for _ in range(5):
        subdomain = unique_subdomain()
        created = await client.platform(
            "POST", "/platform/v1/clinics", admin_token, json=clinic_body(subdomain)
        )
        base = f"/platform/v1/clinics/{created.json()['data']['id']}"
        await asyncio.gather(
            client.platform("DELETE", base, admin_token),
            client.platform("POST", f"{base}/suspend", admin_token),
        )
        await client.platform("POST", f"{base}/reactivate", admin_token)
        final = (await client.platform("GET", base, admin_token)).json()["data"]
        assert final["status"] in ("deleted", "active")
        if final["deletedAt"]:
            assert final["status"] == "deleted"


async def test_a_clinic_whose_provisioning_failed_can_be_deleted_and_purged(
    client: Client,
    admin_token: str,
    provisioner: Provisioner,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    _, clinic_id, _ = await create_failing_clinic(client, admin_token, monkeypatch)
    deleted = await client.platform("DELETE", f"/platform/v1/clinics/{clinic_id}", admin_token)
    assert deleted.status_code == 200

    archive = await provisioner.purge(uuid.UUID(clinic_id), tmp_path)

    assert archive is None
    with pytest.raises(Exception, match="not yet purged"):
        await provisioner.purge(uuid.UUID(clinic_id), tmp_path)
