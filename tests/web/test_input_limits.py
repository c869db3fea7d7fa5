"""Input limits: a hostile request gets a clear 4xx in the envelope, naming what is wrong, and
nothing is written. Each attack is tried on public, clinic and platform routes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from litestar import Litestar
from litestar.routes import HTTPRoute
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.app import create_app
from polyclinic.config import Settings
from polyclinic.web.limits import MAX_JSON_DEPTH, InputLimits, nests_deeper_than
from tests.conftest import BASE_DOMAIN, PLATFORM_HOST, Client, make_settings
from tests.identity.conftest import PASSWORD, ClinicApi, clinic_a, clinic_b, mailer  # noqa: F401
from tests.scheduling.conftest import bookable

HUGE = 10**20
INT32_OVER = 2**31
BIGINT_OVER = 2**63
POISON = "POISON"
JSON = {"content-type": "application/json"}
NO_ID = "00000000-0000-0000-0000-000000000000"


@dataclass
class Scene:
    """A clinic ready to book, its admin, and a signed-in super-admin."""

    client: Client
    clinic: ClinicApi
    engine: AsyncEngine
    admin: str  # the clinic admin's token
    patient: str
    platform: str  # the super-admin's token
    practitioner_id: str
    service_id: str
    plan_id: str

    def host(self, where: str) -> str:
        return PLATFORM_HOST if where.startswith("platform") else self.clinic.host

    def token(self, where: str) -> str | None:
        return {"platform": self.platform, "clinic": self.admin, "patient": self.patient}.get(where)

    async def send(
        self, where: str, method: str, path: str, *, json_body: Any = None, **kwargs: Any
    ) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if token := self.token(where):
            headers["authorization"] = f"Bearer {token}"
        if json_body is not None:
            kwargs["content"] = json.dumps(json_body).encode()
            headers["content-type"] = "application/json"
        path = path.format(service=self.service_id, plan=self.plan_id)
        return await self.client.request(method, path, self.host(where), headers=headers, **kwargs)

    async def counts(self) -> dict[str, int]:
        """Rows a refused request must not have added or changed."""
        schema = self.clinic.tenant.schema_name
        queries = {
            "tenants": "SELECT count(*) FROM platform.tenants",
            "plans": "SELECT count(*) FROM billing.plans",
            "default plans": "SELECT count(*) FROM billing.plans WHERE is_default",
            "users": f'SELECT count(*) FROM "{schema}".users',
            "services": f'SELECT count(*) FROM "{schema}".services',
            "locations": f'SELECT count(*) FROM "{schema}".locations',
            "channels": f'SELECT count(*) FROM "{schema}".channel_settings',
            "appointments": f'SELECT count(*) FROM "{schema}".appointments',
        }
        async with self.engine.connect() as connection:
            return {
                name: (await connection.scalar(text(sql))) or 0 for name, sql in queries.items()
            }


@pytest.fixture
async def scene(
    client: Client,
    clinic_a: ClinicApi,  # noqa: F811
    engine: AsyncEngine,
    admin_token: str,
    mailer: object,  # noqa: F811
) -> Scene:
    ready = await bookable(clinic_a, engine)
    plans = await client.platform("GET", "/platform/v1/plans")
    return Scene(
        client=client,
        clinic=clinic_a,
        engine=engine,
        admin=ready.admin,
        patient=ready.patient,
        platform=admin_token,
        practitioner_id=ready.practitioner_id,
        service_id=ready.service_id,
        plan_id=plans.json()["data"][0]["id"],
    )


def refused(response: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False and body["statusCode"] == status
    if field is not None:
        assert [e["field"] for e in body["errors"]] == [field], body
    return body


# --- paging ------------------------------------------------------------------------------

CLINIC_LISTS = [
    "/api/v1/patients",
    "/api/v1/auth-events",
    "/api/v1/invitations",
    "/api/v1/staff",
    "/api/v1/billing/usage",
    "/api/v1/practitioners",
    "/api/v1/services",
    "/api/v1/locations",
    "/api/v1/messaging/deliveries",
    "/api/v1/appointments",
    "/api/v1/audit",
    "/api/v1/audit/emergency-access",
]
PATIENT_LISTS = ["/api/v1/me/access-log"]
PLATFORM_LISTS = ["/platform/v1/clinics"]


def test_the_paged_lists_here_are_every_paged_list(app: Litestar) -> None:
    paged = {
        route.path
        for route in app.routes
        if isinstance(route, HTTPRoute)
        for handler in route.route_handlers
        if {"limit", "offset"} <= handler.parsed_fn_signature.parameters.keys()
    }
    assert paged == set(CLINIC_LISTS + PATIENT_LISTS + PLATFORM_LISTS)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        (f"offset={HUGE}", "offset"),  # past bigint: PostgreSQL would refuse it
        (f"offset={INT32_OVER}", "offset"),
        ("offset=-1", "offset"),
        (f"limit={HUGE}", "limit"),
        ("limit=0", "limit"),
        ("limit=ten", "limit"),
    ],
)
async def test_every_paged_list_refuses_paging_out_of_bounds_with_400(
    scene: Scene, query: str, field: str
) -> None:
    for path in CLINIC_LISTS:
        refused(await scene.send("clinic", "GET", f"{path}?{query}"), 400, field)
    for path in PATIENT_LISTS:
        refused(await scene.send("patient", "GET", f"{path}?{query}"), 400, field)
    for path in PLATFORM_LISTS:
        refused(await scene.send("platform", "GET", f"{path}?{query}"), 400, field)


async def test_the_largest_offset_is_still_answered(scene: Scene) -> None:
    response = await scene.send("clinic", "GET", f"/api/v1/patients?offset={INT32_OVER - 1}")
    assert response.status_code == 200
    assert response.json()["data"] == []


# --- query and path parameters ------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "path", "field"),
    [
        ("clinic", "/api/v1/appointments?date=not-a-date", "date"),
        ("clinic", "/api/v1/appointments?date=9999-12-31&view=week", "date"),
        ("clinic", "/api/v1/appointments?date=0001-01-01", "date"),
        ("clinic", "/api/v1/appointments?view=month", "view"),
        ("clinic", "/api/v1/appointments?practitionerId=nobody", "practitionerId"),
        (
            "clinic",
            f"/api/v1/slots?practitionerId={NO_ID}&serviceId={NO_ID}&from=today&to=2030-01-01",
            "from",
        ),
        ("clinic", f"/api/v1/slots?practitionerId={NO_ID}&serviceId={NO_ID}&from=2030-01-01", "to"),
        ("clinic", "/api/v1/appointments?status=%00", "status"),
        ("clinic", "/api/v1/patients?q=a%00b", "q"),
        ("clinic", "/api/v1/auth-events?event=%00", "event"),
        ("clinic", "/api/v1/messaging/templates?locale=en%00", "locale"),
        ("clinic", "/api/v1/messaging/templates/x%00/email", "kind"),
        ("clinic", "/api/v1/messaging/channels/%00", "channel"),
        ("platform", "/platform/v1/clinics?status=%00", "status"),
        ("platform", "/platform/v1/clinics?status=gone", "status"),
        ("platform public", "/platform/v1/subdomains/a%00b", "subdomain"),
    ],
)
async def test_an_invalid_query_or_path_parameter_is_400_naming_it(
    scene: Scene, where: str, path: str, field: str
) -> None:
    refused(await scene.send(where, "GET", path), 400, field)


# --- JSON bodies: routes to attack ------------------------------------------------------

# (where, method, path, a body with one string field set to POISON, that field's name)
BODY_ROUTES = {
    "platform login": (
        "platform public",
        "POST",
        "/platform/v1/auth/login",
        {"email": POISON, "password": "whatever-it-is"},
        "email",
    ),
    "clinic register": (
        "clinic public",
        "POST",
        "/api/v1/auth/register",
        {"email": "new@patient.test", "password": PASSWORD, "firstName": POISON, "lastName": "B"},
        "firstName",
    ),
    "clinic login": (
        "clinic public",
        "POST",
        "/api/v1/auth/login",
        {"email": POISON, "password": PASSWORD},
        "email",
    ),
    "signup": (
        "platform public",
        "POST",
        "/platform/v1/signup",
        {
            "clinicName": POISON,
            "subdomain": "fresh-clinic",
            "timezone": "Europe/Berlin",
            "adminEmail": "owner@fresh.test",
            "adminPassword": PASSWORD,
        },
        "clinicName",
    ),
    "services": (
        "clinic",
        "POST",
        "/api/v1/services",
        {"name": POISON, "durationMinutes": 30, "priceMinor": 100, "currency": "EUR"},
        "name",
    ),
    "locations": ("clinic", "POST", "/api/v1/locations", {"name": POISON, "kind": "room"}, "name"),
    "channel settings": (
        "clinic",
        "PUT",
        "/api/v1/messaging/channels/email",
        {
            "provider": "smtp",
            "settings": {"host": POISON, "port": 25, "security": "none", "fromAddress": "a@b.c"},
        },
        "settings.host",
    ),
    "plans": (
        "platform",
        "POST",
        "/platform/v1/plans",
        {
            "code": "poisoned",
            "name": POISON,
            "priceMinor": 100,
            "currency": "EUR",
            "interval": "month",
            "overagePolicy": "block",
        },
        "name",
    ),
}


def raw_body(body: dict[str, Any], replacement: bytes) -> bytes:
    """The body as JSON with the POISON string's inside replaced by raw bytes."""
    return json.dumps(body).encode().replace(POISON.encode(), replacement)


@pytest.mark.parametrize("route", BODY_ROUTES)
async def test_a_nul_character_in_any_json_string_is_422_naming_the_field(
    scene: Scene, route: str
) -> None:
    where, method, path, body, field = BODY_ROUTES[route]
    before = await scene.counts()
    for nul in (rb"a\u0000b", rb"\u0000", rb"end\u0000"):
        response = await scene.send(where, method, path, content=raw_body(body, nul), headers=JSON)
        answer = refused(response, 422, field)
        assert answer["errors"][0]["message"] == "must not contain a NUL character"
    assert await scene.counts() == before


async def test_a_nul_character_in_a_key_or_a_list_is_named_too(scene: Scene) -> None:
    before = await scene.counts()
    refused(
        await scene.send(
            "clinic",
            "PUT",
            "/api/v1/messaging/channels/email",
            json_body={"provider": "smtp", "settings": {"ho\x00st": "x"}},
        ),
        422,
        "settings.ho\x00st",
    )
    refused(
        await scene.send(
            "clinic",
            "PUT",
            "/api/v1/me/preferences",
            json_body={"channels": ["email", "s\x00ms"]},
        ),
        422,
        "channels[1]",
    )
    assert await scene.counts() == before


@pytest.mark.parametrize("route", BODY_ROUTES)
async def test_an_unpaired_surrogate_is_400(scene: Scene, route: str) -> None:
    where, method, path, body, _ = BODY_ROUTES[route]
    before = await scene.counts()
    for surrogate in (rb"\ud800", rb"\udc00", rb"\ud800x", rb"\ud800\u0041"):
        response = await scene.send(
            where, method, path, content=raw_body(body, surrogate), headers=JSON
        )
        assert refused(response, 400)["message"] == "The request body is not valid JSON"
    assert await scene.counts() == before


@pytest.mark.parametrize("route", BODY_ROUTES)
async def test_a_body_that_is_not_utf8_is_400(scene: Scene, route: str) -> None:
    where, method, path, body, _ = BODY_ROUTES[route]
    before = await scene.counts()
    for bad in (b"\xff", b"\xed\xa0\x80", b"\xc3"):  # a stray byte, an encoded surrogate, a cut
        for content_type in ("application/json", "text/plain"):
            response = await scene.send(
                where,
                method,
                path,
                content=raw_body(body, bad),
                headers={"content-type": content_type},
            )
            assert refused(response, 400)["message"] == "The request body is not valid UTF-8"
    assert await scene.counts() == before


@pytest.mark.parametrize("route", BODY_ROUTES)
async def test_json_nested_100000_deep_is_400_before_it_is_decoded(
    scene: Scene, route: str
) -> None:
    where, method, path, body, _ = BODY_ROUTES[route]
    for opener, closer in ((b"[", b"]"), (b'{"a":', b"}")):
        deep = opener * 100_000 + b"1" + closer * 100_000
        for content in (deep, raw_body(body, b'", "x": ' + deep + b', "y": "')):
            response = await scene.send(where, method, path, content=content, headers=JSON)
            assert f"more than {MAX_JSON_DEPTH} deep" in refused(response, 400)["message"]


async def test_json_as_deep_as_the_limit_is_read(scene: Scene) -> None:
    nested: Any = "x"
    for _ in range(MAX_JSON_DEPTH - 2):  # inside the body object and `settings`
        nested = [nested]
    response = await scene.send(
        "clinic",
        "PUT",
        "/api/v1/messaging/channels/email",
        json_body={"provider": "smtp", "settings": {"host": nested}},
    )
    assert response.status_code == 422, response.text  # read, then refused for what it says


def test_nesting_is_counted_on_the_raw_text_with_strings_skipped() -> None:
    def nested(depth: int) -> bytes:
        return b"[" * depth + b"]" * depth

    assert not nests_deeper_than(nested(32), 32)
    assert nests_deeper_than(nested(33), 32)
    assert not nests_deeper_than(b"[" + b"[]," * 50_000 + b"[]]", 32)
    assert not nests_deeper_than(b'{"a": "' + b"[" * 100 + b'"}', 32)
    assert not nests_deeper_than(b'["\\"' + b"[" * 100 + b'"]', 32)
    assert nests_deeper_than(b'{"a\\\\": ' + nested(40) + b"}", 32)
    assert not nests_deeper_than(b'["open' + b"[" * 100, 32)  # one unclosed string, no depth
    assert not nests_deeper_than(b"]]]][[", 32)  # unbalanced: the parser refuses it


# --- numbers and booleans -------------------------------------------------------------

# (where, method, path, body, field): every one a number past its column or a mistyped value
TYPED_CASES = {
    "service price past bigint": (
        "clinic",
        "POST",
        "/api/v1/services",
        {"name": "X", "durationMinutes": 30, "priceMinor": BIGINT_OVER, "currency": "EUR"},
        "priceMinor",
    ),
    "service price past integer": (
        "clinic",
        "POST",
        "/api/v1/services",
        {"name": "X", "durationMinutes": 30, "priceMinor": INT32_OVER, "currency": "EUR"},
        "priceMinor",
    ),
    "service price changed past integer": (
        "clinic",
        "PATCH",
        "/api/v1/services/{service}",
        {"priceMinor": INT32_OVER},
        "priceMinor",
    ),
    "service duration far past its bounds": (
        "clinic",
        "POST",
        "/api/v1/services",
        {"name": "X", "durationMinutes": BIGINT_OVER, "priceMinor": 1, "currency": "EUR"},
        "durationMinutes",
    ),
    "booking policy horizon past bigint": (
        "clinic",
        "PATCH",
        "/api/v1/booking-policy",
        {"horizonDays": BIGINT_OVER},
        "horizonDays",
    ),
    "series occurrences past bigint": (
        "clinic",
        "POST",
        "/api/v1/appointments/series",
        {
            "practitionerId": "00000000-0000-0000-0000-000000000000",
            "serviceId": "00000000-0000-0000-0000-000000000000",
            "startsAt": "2100-01-01T09:00:00Z",
            "occurrences": BIGINT_OVER,
        },
        "occurrences",
    ),
    "plan price past bigint": (
        "platform",
        "POST",
        "/platform/v1/plans",
        {
            "code": "too-dear",
            "name": "Too dear",
            "priceMinor": BIGINT_OVER,
            "currency": "EUR",
            "interval": "month",
            "overagePolicy": "block",
        },
        "priceMinor",
    ),
    "plan staff limit past integer": (
        "platform",
        "PATCH",
        "/platform/v1/plans/{plan}",
        {"maxStaff": INT32_OVER},
        "maxStaff",
    ),
    "plan quota past integer": (
        "platform",
        "PATCH",
        "/platform/v1/plans/{plan}",
        {"appointmentsIncluded": INT32_OVER},
        "appointmentsIncluded",
    ),
    "plan overage price past integer": (
        "platform",
        "PATCH",
        "/platform/v1/plans/{plan}",
        {"overagePriceMinor": INT32_OVER},
        "overagePriceMinor",
    ),
    "plan made default with 0": (
        "platform",
        "PATCH",
        "/platform/v1/plans/{plan}",
        {"isDefault": 0},
        "isDefault",
    ),
    "plan made default with 1": (
        "platform",
        "PATCH",
        "/platform/v1/plans/{plan}",
        {"isDefault": 1},
        "isDefault",
    ),
    "plan made default with a string": (
        "platform",
        "PATCH",
        "/platform/v1/plans/{plan}",
        {"isDefault": "true"},
        "isDefault",
    ),
    "plan feature given as 1": (
        "platform",
        "PATCH",
        "/platform/v1/plans/{plan}",
        {"features": {"sms": 1}},
        "features.sms",
    ),
    "service retired with a string": (
        "clinic",
        "PATCH",
        "/api/v1/services/{service}",
        {"isActive": "false"},
        "isActive",
    ),
    "service duration as a string": (
        "clinic",
        "POST",
        "/api/v1/services",
        {"name": "X", "durationMinutes": "30", "priceMinor": 1, "currency": "EUR"},
        "durationMinutes",
    ),
    "clinic sign-in asking cookies with 1": (
        "clinic public",
        "POST",
        "/api/v1/auth/login",
        {"email": "someone@x.test", "password": PASSWORD, "useCookies": 1},
        "useCookies",
    ),
}


@pytest.mark.parametrize("case", TYPED_CASES)
async def test_numbers_past_their_column_and_mistyped_values_are_422_naming_the_field(
    scene: Scene, case: str
) -> None:
    where, method, path, body, field = TYPED_CASES[case]
    before = await scene.counts()
    plan_before = await scene.send("platform", "GET", "/platform/v1/plans/{plan}")
    refused(await scene.send(where, method, path, json_body=body), 422, field)
    assert await scene.counts() == before
    plan_after = await scene.send("platform", "GET", "/platform/v1/plans/{plan}")
    assert plan_after.json()["data"] == plan_before.json()["data"]


async def test_the_largest_integer_a_column_holds_is_taken(scene: Scene) -> None:
    response = await scene.send(
        "clinic",
        "POST",
        "/api/v1/services",
        json_body={
            "name": "Costly",
            "durationMinutes": 30,
            "priceMinor": INT32_OVER - 1,
            "currency": "EUR",
        },
    )
    assert response.status_code == 201, response.text
    assert response.json()["data"]["priceMinor"] == INT32_OVER - 1


async def test_an_unknown_or_missing_field_is_named(scene: Scene) -> None:
    unknown = await scene.send(
        "clinic", "POST", "/api/v1/locations", json_body={"name": "R", "kind": "room", "floor": 2}
    )
    assert (
        refused(unknown, 422, "floor")["errors"][0]["message"] == "is not a field of this request"
    )
    missing = await scene.send("clinic", "POST", "/api/v1/locations", json_body={"name": "R"})
    assert refused(missing, 422, "kind")["errors"][0]["message"] == "is required"


def test_every_json_body_is_read_strictly(app: Litestar) -> None:
    limits = app.plugins.get(InputLimits)
    with_body = [
        (route.path, handler.handler_name)
        for route in app.routes
        if isinstance(route, HTTPRoute)
        for handler in route.route_handlers
        if "data" in handler.parsed_fn_signature.parameters
    ]
    assert with_body
    not_strict = [
        (path, name)
        for path, name in with_body
        if next(
            limits.decoders[h]
            for r in app.routes
            if isinstance(r, HTTPRoute) and r.path == path
            for h in r.route_handlers
            if h.handler_name == name
        )
        is None
    ]
    assert not_strict == []


def test_no_route_replaces_the_input_checks(app: Litestar) -> None:
    hook = app.before_request
    assert hook is not None
    for route in app.routes:
        if isinstance(route, HTTPRoute):
            for handler in route.route_handlers:
                assert handler.resolve_before_request() is hook, route.path


# --- body size ---------------------------------------------------------------------------


@pytest.mark.parametrize("route", BODY_ROUTES)
async def test_a_body_over_the_limit_is_413_in_the_envelope(scene: Scene, route: str) -> None:
    where, method, path, body, _ = BODY_ROUTES[route]
    before = await scene.counts()
    padded = raw_body(body, b"x" * (1024 * 1024))
    response = await scene.send(where, method, path, content=padded, headers=JSON)
    assert "1048576 bytes" in refused(response, 413)["message"]
    assert await scene.counts() == before


async def test_the_body_limit_is_a_setting(database_url: str, settings: Settings) -> None:
    """`settings`: the database is migrated and seeded."""
    app = create_app(make_settings(database_url, MAX_REQUEST_BODY_BYTES="2048"))
    client = Client(app)
    try:
        small = {"email": "a@b.test", "password": "x" * 1000}
        large = {"email": "a@b.test", "password": "x" * 3000}
        ok = await client.platform("POST", "/platform/v1/auth/login", json=small)
        too_large = await client.platform("POST", "/platform/v1/auth/login", json=large)
    finally:
        await client.http.aclose()
        await app.state.runtime.engine.dispose()
        if app.state.runtime.redis is not None:
            await app.state.runtime.redis.aclose()
    assert ok.status_code == 401, ok.text
    assert "2048 bytes" in refused(too_large, 413)["message"]


# --- headers and methods ----------------------------------------------------------------


async def test_two_host_headers_are_400(scene: Scene, clinic_b: ClinicApi) -> None:  # noqa: F811
    for path, hosts in [
        ("/api/v1/clinic", [scene.clinic.host, clinic_b.host]),
        ("/api/v1/clinic", [scene.clinic.host, scene.clinic.host]),
        ("/platform/v1/plans", [PLATFORM_HOST, f"{scene.clinic.tenant.slug}.{BASE_DOMAIN}"]),
    ]:
        response = await scene.client.http.request(
            "GET", path, headers=[("host", host) for host in hosts]
        )
        refused(response, 400, "host")


@pytest.mark.parametrize(
    ("where", "method", "path", "allowed"),
    [
        ("clinic", "PUT", "/api/v1/patients", {"GET", "OPTIONS", "POST"}),
        ("clinic public", "GET", "/api/v1/auth/register", {"POST", "OPTIONS"}),
        ("platform", "DELETE", "/platform/v1/plans", {"GET", "POST", "OPTIONS"}),
        ("platform public", "PUT", "/platform/v1/signup", {"POST", "OPTIONS"}),
    ],
)
async def test_405_lists_the_allowed_methods(
    scene: Scene, where: str, method: str, path: str, allowed: set[str]
) -> None:
    response = await scene.send(where, method, path)
    refused(response, 405)
    assert {m.strip() for m in response.headers["allow"].split(",")} == allowed


# --- the published document --------------------------------------------------------------


async def test_the_openapi_document_states_the_bounds(client: Client) -> None:
    document = (await client.request("GET", "/schema/openapi.json", PLATFORM_HOST)).json()
    for path in CLINIC_LISTS + PATIENT_LISTS + PLATFORM_LISTS:
        parameters = {p["name"]: p["schema"] for p in document["paths"][path]["get"]["parameters"]}
        assert parameters["offset"]["maximum"] == INT32_OVER - 1, path
        assert parameters["limit"]["maximum"] == 100, path
        assert "400" in document["paths"][path]["get"]["responses"], path
    for path, method in [
        ("/api/v1/services", "post"),
        ("/api/v1/auth/register", "post"),
        ("/platform/v1/signup", "post"),
        ("/platform/v1/plans/{plan_id}", "patch"),
    ]:
        responses = document["paths"][path][method]["responses"]
        assert {"400", "413", "422"} <= responses.keys(), (path, method)
    schemas = document["components"]["schemas"]
    assert schemas["ServiceCreate"]["properties"]["priceMinor"]["maximum"] == INT32_OVER - 1
