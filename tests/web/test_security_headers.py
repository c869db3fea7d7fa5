"""Security headers on every response (errors included), HSTS only over https, and CORS
closed unless a clinic allows an origin, for that clinic only."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import msgspec
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.app import create_app
from polyclinic.config import Settings
from polyclinic.tenancy.models import Tenant
from tests.billing.test_stripe_billing import admin_of
from tests.conftest import BASE_DOMAIN, PLATFORM_HOST, TRUSTED_PROXY, Client
from tests.identity.conftest import ClinicApi, add_user

SITE_A = "https://www.riverside.example"
SITE_B = "https://book.hilltop.example"


def assert_protected(response: httpx.Response) -> None:
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff", response.request.url
    assert headers["referrer-policy"] == "strict-origin-when-cross-origin"
    assert headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in headers["content-security-policy"]


def host_of(tenant: Tenant) -> str:
    return f"{tenant.slug}.{BASE_DOMAIN}"


async def test_every_response_carries_the_security_headers_errors_included(
    client: Client, two_clinics: tuple[Tenant, Tenant]
) -> None:
    clinic = ClinicApi(client, two_clinics[0])
    responses = [
        await client.platform("GET", "/health"),
        await clinic.call("GET", "/clinic"),
        await clinic.call("GET", "/messaging/templates"),  # 401: no token
        await clinic.call("PUT", "/clinic/allowed-origins", json={"origins": 3}),  # 401
        await client.request("GET", "/api/v1/clinic", f"nobody.{BASE_DOMAIN}"),  # unknown host
        await client.platform("GET", "/no/such/path"),
        await client.request("GET", "/platform/v1/plans", host_of(two_clinics[0])),  # wrong host
    ]

    assert [r.status_code for r in responses] == [200, 200, 401, 401, 404, 404, 404]
    for response in responses:
        assert_protected(response)
        assert "strict-transport-security" not in response.headers  # plain http


async def test_hsts_is_sent_over_https_only_and_from_a_trusted_proxy_only(
    app: object, settings: Settings
) -> None:
    direct = Client(app)
    proxy = Client(app, client_ip=TRUSTED_PROXY)
    https = await direct.http.get(f"https://{PLATFORM_HOST}/health")
    plain = await direct.platform("GET", "/health")
    via_proxy = await proxy.platform("GET", "/health", headers={"x-forwarded-proto": "https"})
    spoofed = await direct.platform("GET", "/health", headers={"x-forwarded-proto": "https"})
    proxied_http = await proxy.platform("GET", "/health", headers={"x-forwarded-proto": "http"})

    expected = f"max-age={settings.hsts_max_age}"
    assert settings.hsts_max_age == 31_536_000
    assert https.headers["strict-transport-security"] == expected
    assert via_proxy.headers["strict-transport-security"] == expected
    for response in (plain, spoofed, proxied_http):
        assert "strict-transport-security" not in response.headers
    for response in (https, plain, via_proxy, spoofed, proxied_http):
        assert_protected(response)
    for each in (direct, proxy):
        await each.http.aclose()


@pytest.fixture
async def no_hsts_client(settings: Settings) -> AsyncIterator[Client]:
    app = create_app(msgspec.structs.replace(settings, hsts_max_age=0))
    client = Client(app)
    yield client
    await client.http.aclose()
    await app.state.runtime.engine.dispose()
    if app.state.runtime.redis is not None:
        await app.state.runtime.redis.aclose()


async def test_hsts_max_age_zero_turns_hsts_off(no_hsts_client: Client) -> None:
    response = await no_hsts_client.http.get(f"https://{PLATFORM_HOST}/health")

    assert response.status_code == 200
    assert "strict-transport-security" not in response.headers
    assert_protected(response)


def preflight(origin: str, method: str = "PUT") -> dict[str, str]:
    return {
        "origin": origin,
        "access-control-request-method": method,
        "access-control-request-headers": "authorization, content-type",
    }


async def test_cors_is_closed_by_default(
    client: Client, two_clinics: tuple[Tenant, Tenant]
) -> None:
    clinic = ClinicApi(client, two_clinics[0])

    simple = await clinic.call("GET", "/clinic", headers={"origin": SITE_A})
    refused = await client.request(
        "OPTIONS", "/api/v1/clinic", host_of(two_clinics[0]), headers=preflight(SITE_A)
    )
    platform = await client.request(
        "OPTIONS", "/platform/v1/plans", PLATFORM_HOST, headers=preflight(SITE_A, "GET")
    )
    platform_get = await client.platform("GET", "/platform/v1/plans", headers={"origin": SITE_A})

    assert simple.status_code == 200
    assert "access-control-allow-origin" not in simple.headers
    assert "Origin" in simple.headers["vary"]
    for response in (refused, platform):
        assert response.status_code == 403, response.text
        assert response.json()["success"] is False
        assert "access-control-allow-origin" not in response.headers
        assert "access-control-allow-methods" not in response.headers
        assert_protected(response)
    assert "access-control-allow-origin" not in platform_get.headers


async def test_a_clinic_admin_sets_its_origins_checked_and_normalized(
    client: Client, engine: AsyncEngine, two_clinics: tuple[Tenant, Tenant]
) -> None:
    clinic = ClinicApi(client, two_clinics[0])
    token = await admin_of(clinic, engine)
    path = "/clinic/allowed-origins"

    bad = [
        ("http://www.riverside.example", "https://"),
        ("https://*.riverside.example", "wildcard"),
        ("https://www.riverside.example/book", "no path"),
        ("https://www.riverside.example/", "trailing slash"),
        ("https://user:pw@www.riverside.example", "user name"),
        ("https://localhost", "domain"),
        ("https://www.riverside.example:99999", "port"),
        ("*", "wildcard"),
    ]
    for origin, problem in bad:
        answer = await clinic.call(
            "PUT", path, token, json={"origins": ["https://ok.example", origin]}
        )
        assert answer.status_code == 422, (origin, answer.text)
        [error] = answer.json()["errors"]
        assert error["field"] == "origins[1]"
        assert problem in error["message"], (origin, error)
    too_many = await clinic.call(
        "PUT", path, token, json={"origins": [f"https://s{i}.example" for i in range(21)]}
    )
    assert too_many.status_code == 422
    assert (await clinic.call("GET", path, token)).json()["data"] == {"origins": []}

    saved = await clinic.call(
        "PUT",
        path,
        token,
        json={"origins": ["https://WWW.Riverside.example:443", SITE_A, "https://app.example:8443"]},
    )

    assert saved.status_code == 200, saved.text
    assert saved.json()["data"] == {"origins": [SITE_A, "https://app.example:8443"]}
    assert (await clinic.call("GET", path, token)).json()["data"]["origins"] == [
        SITE_A,
        "https://app.example:8443",
    ]
    await add_user(engine, clinic.tenant, "desk@example.com", "receptionist")
    desk = (await clinic.login("desk@example.com"))["accessToken"]
    assert (await clinic.call("PUT", path, desk, json={"origins": []})).status_code == 403
    assert (await clinic.call("GET", path, desk)).status_code == 403


async def test_an_origin_a_clinic_allows_gets_cors_there_and_not_at_another_clinic(
    client: Client, engine: AsyncEngine, two_clinics: tuple[Tenant, Tenant]
) -> None:
    clinic_a, clinic_b = ClinicApi(client, two_clinics[0]), ClinicApi(client, two_clinics[1])
    for clinic, site in ((clinic_a, SITE_A), (clinic_b, SITE_B)):
        token = await admin_of(clinic, engine)
        saved = await clinic.call("PUT", "/clinic/allowed-origins", token, json={"origins": [site]})
        assert saved.status_code == 200, saved.text

    allowed = await clinic_a.call("GET", "/clinic", headers={"origin": SITE_A})
    allowed_error = await clinic_a.call("GET", "/messaging/templates", headers={"origin": SITE_A})
    allowed_preflight = await client.request(
        "OPTIONS", "/api/v1/clinic/allowed-origins", clinic_a.host, headers=preflight(SITE_A)
    )
    elsewhere = await clinic_b.call("GET", "/clinic", headers={"origin": SITE_A})
    elsewhere_preflight = await client.request(
        "OPTIONS", "/api/v1/clinic", clinic_b.host, headers=preflight(SITE_A)
    )
    own_b = await client.request(
        "OPTIONS", "/api/v1/clinic", clinic_b.host, headers=preflight(SITE_B, "GET")
    )
    b_on_a = await clinic_a.call("GET", "/clinic", headers={"origin": SITE_B})
    odd_method = await client.request(
        "OPTIONS", "/api/v1/clinic", clinic_a.host, headers=preflight(SITE_A, "TRACE")
    )

    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == SITE_A
    assert "Origin" in allowed.headers["vary"]
    assert "x-request-id" in allowed.headers["access-control-expose-headers"]
    assert "access-control-allow-credentials" not in allowed.headers
    assert allowed_error.status_code == 401  # the page can read why
    assert allowed_error.headers["access-control-allow-origin"] == SITE_A

    assert allowed_preflight.status_code == 204, allowed_preflight.text
    headers = allowed_preflight.headers
    assert headers["access-control-allow-origin"] == SITE_A
    assert {m.strip() for m in headers["access-control-allow-methods"].split(",")} == {
        "GET",
        "POST",
        "PUT",
        "PATCH",
        "DELETE",
    }
    assert {"authorization", "content-type"} <= {
        h.strip() for h in headers["access-control-allow-headers"].split(",")
    }
    assert "Origin" in headers["vary"] and int(headers["access-control-max-age"]) > 0
    assert_protected(allowed_preflight)

    assert own_b.status_code == 204
    assert own_b.headers["access-control-allow-origin"] == SITE_B
    for response in (elsewhere, b_on_a):
        assert response.status_code == 200
        assert "access-control-allow-origin" not in response.headers
    for response in (elsewhere_preflight, odd_method):
        assert response.status_code == 403
        assert "access-control-allow-origin" not in response.headers


async def test_a_removed_origin_is_refused_at_once(
    client: Client, engine: AsyncEngine, two_clinics: tuple[Tenant, Tenant]
) -> None:
    clinic = ClinicApi(client, two_clinics[0])
    token = await admin_of(clinic, engine)
    await clinic.call("PUT", "/clinic/allowed-origins", token, json={"origins": [SITE_A]})
    before = await clinic.call("GET", "/clinic", headers={"origin": SITE_A})

    await clinic.call("PUT", "/clinic/allowed-origins", token, json={"origins": []})
    after = await clinic.call("GET", "/clinic", headers={"origin": SITE_A})

    assert before.headers["access-control-allow-origin"] == SITE_A
    assert "access-control-allow-origin" not in after.headers
