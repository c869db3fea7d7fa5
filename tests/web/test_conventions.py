"""Envelope, request ids, errors that leak nothing, health, readiness and the OpenAPI schema."""

from __future__ import annotations

import re

import pytest
from litestar import Litestar
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.app import create_app
from polyclinic.tenancy.models import Tenant
from tests.conftest import BASE_DOMAIN, PLATFORM_HOST, TRUSTED_PROXY, Client, make_settings


async def test_every_response_carries_a_request_id(
    client: Client, two_clinics: tuple[Tenant, Tenant]
) -> None:
    a, _ = two_clinics
    responses = [
        await client.clinic(a.slug),
        await client.request("GET", "/api/v1/nothing-here", f"{a.slug}.{BASE_DOMAIN}"),
        await client.request("GET", "/api/v1/clinic", f"ghost.{BASE_DOMAIN}"),
        await client.platform("GET", "/platform/v1/clinics"),
        await client.request("DELETE", "/health", PLATFORM_HOST),
    ]
    ids = [r.headers.get("x-request-id") for r in responses]
    assert all(i and re.fullmatch(r"[0-9a-f]{32}", i) for i in ids), ids
    assert len(set(ids)) == len(ids)
    assert [r.json()["success"] for r in responses] == [True, False, False, False, False]
    assert [r.json()["statusCode"] for r in responses] == [200, 404, 404, 401, 405]


async def test_a_sane_incoming_request_id_is_echoed(client: Client) -> None:
    echoed = await client.request(
        "GET", "/health", PLATFORM_HOST, headers={"x-request-id": "trace-42"}
    )
    replaced = await client.request(
        "GET", "/health", PLATFORM_HOST, headers={"x-request-id": "bad id\x7f"}
    )
    assert echoed.headers["x-request-id"] == "trace-42"
    assert replaced.headers["x-request-id"] != "bad id\x7f"


async def test_internal_errors_leak_nothing_and_are_logged_with_request_and_clinic(
    client: Client,
    engine: AsyncEngine,
    two_clinics: tuple[Tenant, Tenant],
    caplog: pytest.LogCaptureFixture,
) -> None:
    a, _ = two_clinics
    async with engine.begin() as connection:
        await connection.execute(text(f'DROP TABLE "{a.schema_name}".clinic_profile'))

    response = await client.clinic(a.slug)

    assert response.status_code == 500
    body = response.json()
    assert body["success"] is False and body["errors"] == []
    assert response.headers["x-request-id"] in body["message"]
    for leak in ("clinic_profile", "SELECT", "Traceback", "psycopg", a.schema_name):
        assert leak not in response.text
    logged = [r for r in caplog.records if r.name == "polyclinic.errors"]
    assert logged, "the failure was not logged"
    assert logged[-1].request_id == response.headers["x-request-id"]  # type: ignore[attr-defined]
    assert logged[-1].clinic == a.slug  # type: ignore[attr-defined]


async def test_malformed_json_is_a_clear_4xx(client: Client, admin_token: str) -> None:
    response = await client.platform(
        "POST",
        "/platform/v1/clinics",
        admin_token,
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert 400 <= response.status_code < 500
    assert response.json()["success"] is False
    assert "Traceback" not in response.text


async def test_health_and_ready(client: Client) -> None:
    health = await client.request("GET", "/health", "anything.example")
    ready = await client.request("GET", "/ready", PLATFORM_HOST)
    assert health.json()["data"] == {"status": "up"}
    assert ready.status_code == 200
    assert ready.json()["data"] == {"database": "ok", "redis": "ok"}


async def test_ready_is_503_when_redis_is_unreachable(database_url: str) -> None:
    app = create_app(make_settings(database_url, REDIS_URL="redis://127.0.0.1:1/0"))
    response = await Client(app).request("GET", "/ready", PLATFORM_HOST)
    assert response.status_code == 503
    body = response.json()
    assert body["success"] is False and body["message"] == "Not ready"
    assert [e["field"] for e in body["errors"]] == ["redis"]
    assert body["errors"][0]["message"].startswith("unreachable")
    await app.state.runtime.engine.dispose()
    await app.state.runtime.redis.aclose()


async def test_openapi_covers_every_route(app: Litestar, client: Client) -> None:
    response = await client.request("GET", "/schema/openapi.json", PLATFORM_HOST)
    assert response.status_code == 200
    documented = set(response.json()["paths"])
    routes = {
        re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
        for route in app.routes
        if not route.path.startswith("/schema")
    }
    assert routes <= documented, routes - documented
    for path, operations in response.json()["paths"].items():
        for method, operation in operations.items():
            for code, spec in operation["responses"].items():
                if int(code) >= 400:
                    schema = spec["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorEnvelope"}, (
                        path,
                        method,
                        code,
                    )
    page = await client.request("GET", "/schema", PLATFORM_HOST)
    assert page.status_code == 200 and "<html" in page.text.lower()


async def test_tls_is_allowed_only_for_live_clinic_hosts_and_only_asked_by_the_proxy(
    app: Litestar, client: Client, two_clinics: tuple[Tenant, Tenant]
) -> None:
    a, _ = two_clinics
    proxy = Client(app, client_ip=TRUSTED_PROXY)
    path = f"/tls/allowed?domain={a.slug}.{BASE_DOMAIN}"
    known = await proxy.request("GET", path, "api")
    unknown = await proxy.request("GET", "/tls/allowed?domain=evil.example", "api")
    from_outside = await client.request("GET", path, "api")
    assert known.status_code == 200
    assert unknown.status_code == 404
    assert from_outside.status_code == 404


def test_env_example_documents_every_setting() -> None:
    from pathlib import Path

    import msgspec

    from polyclinic.config import Settings

    documented = {
        line.split("=", 1)[0]
        for line in (Path(__file__).parents[2] / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert documented == {f.name.upper() for f in msgspec.structs.fields(Settings)}
