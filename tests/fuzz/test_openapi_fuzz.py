"""Schemathesis over the published OpenAPI document, against the app served on a real port.

Every operation is called with generated input, valid and invalid, as a clinic admin on a
clinic's host and as a super-admin on the platform's host. Whatever it sends, the app must
not answer 5xx, every error must be the error envelope, and every response must be one the
operation declares, in the shape it declares. The document is the snapshot that
`tests/web/test_openapi_snapshot.py` keeps equal to the app's, so the operations are known
when the tests are collected. `FUZZ_EXAMPLES` sets how many cases each operation gets.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import hypothesis
import hypothesis.errors
import pytest
import requests
import schemathesis
import uvicorn
from hypothesis import HealthCheck, Phase
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from polyclinic.app import create_app
from polyclinic.config import Settings
from polyclinic.db.engine import create_app_engine
from polyclinic.db.session import platform_session
from polyclinic.platform.lifecycle import clinic_provisioner
from polyclinic.platform.services import PlatformUsers
from polyclinic.tenancy.models import Tenant
from tests.conftest import BASE_DOMAIN, PLATFORM_HOST, create_clinic
from tests.identity.conftest import PASSWORD, add_user

SNAPSHOT = Path(__file__).parents[1] / "web" / "openapi.json"
SCHEMA = schemathesis.openapi.from_path(SNAPSHOT)
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
# Operations that end the caller's own sessions run last, so the others keep their token.
ENDS_OWN_SESSION = {"/api/v1/auth/logout", "/api/v1/auth/logout-all"}


def _cases() -> list[tuple[schemathesis.APIOperation, GenerationMode]]:
    operations = [result.ok() for result in SCHEMA.get_all_operations()]
    operations.sort(key=lambda op: op.path in ENDS_OWN_SESSION)
    cases = []
    for operation in operations:
        cases.append((operation, GenerationMode.POSITIVE))
        # Invalid input needs an input to spoil: a path, query or body.
        if operation.path_parameters or operation.query or operation.body:
            cases.append((operation, GenerationMode.NEGATIVE))
    return cases


@schemathesis.check
def errors_are_enveloped(ctx: object, response: schemathesis.Response, case: object) -> bool:
    if response.status_code < 400:
        return True
    body = response.json()
    assert isinstance(body, dict), f"error body is not an object: {response.text[:200]}"
    assert body.get("success") is False, f"error outside the envelope: {response.text[:200]}"
    assert body.get("statusCode") == response.status_code, response.text[:200]
    assert isinstance(body.get("message"), str), response.text[:200]
    assert isinstance(body.get("errors"), list), response.text[:200]
    return True


CHECKS = [
    not_a_server_error,
    errors_are_enveloped,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@dataclass(frozen=True)
class Target:
    base_url: str
    clinic_host: str
    clinic_token: str
    platform_token: str

    def headers_for(self, path: str) -> dict[str, str]:
        if path.startswith("/api/"):
            return {"host": self.clinic_host, "authorization": f"Bearer {self.clinic_token}"}
        if path.startswith("/platform/"):
            return {"host": PLATFORM_HOST, "authorization": f"Bearer {self.platform_token}"}
        return {"host": PLATFORM_HOST}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def served(settings: Settings) -> Iterator[str]:
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the app did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


async def _clinic_and_super_admin(settings: Settings, email: str) -> Tenant:
    """A clinic with its admin, and a super-admin of the fuzz run's own: failed password
    checks the fuzzer makes lock only accounts that no other test signs in with."""
    engine = create_app_engine(settings, pool_size=1)
    try:
        clinic = await create_clinic(clinic_provisioner(engine, settings))
        await add_user(engine, clinic, email, "clinic_admin")
        async with platform_session(engine) as session:
            await PlatformUsers(session).create_admin(email, PASSWORD)
        return clinic
    finally:
        await engine.dispose()


def _login(base_url: str, host: str, path: str, email: str, password: str) -> str:
    response = requests.post(
        f"{base_url}{path}",
        json={"email": email, "password": password},
        headers={"host": host},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["data"]["accessToken"])


@pytest.fixture(scope="module")
def target(served: str, settings: Settings) -> Target:
    email = f"fuzz-admin-{uuid.uuid4().hex[:8]}@example.com"
    clinic = asyncio.run(_clinic_and_super_admin(settings, email))
    clinic_host = f"{clinic.slug}.{BASE_DOMAIN}"
    return Target(
        base_url=served,
        clinic_host=clinic_host,
        clinic_token=_login(served, clinic_host, "/api/v1/auth/login", email, PASSWORD),
        platform_token=_login(served, PLATFORM_HOST, "/platform/v1/auth/login", email, PASSWORD),
    )


@pytest.mark.parametrize(
    ("operation", "mode"), _cases(), ids=lambda x: x.label if hasattr(x, "label") else x.value
)
def test_no_server_error_and_every_response_as_declared(
    operation: schemathesis.APIOperation, mode: GenerationMode, target: Target
) -> None:
    session = requests.Session()
    headers = target.headers_for(operation.path)

    @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
    @hypothesis.settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def call(case: schemathesis.Case) -> None:
        response = case.call(base_url=target.base_url, session=session, headers=headers)
        case.validate_response(response, checks=CHECKS, headers=headers)

    try:
        call()
    except hypothesis.errors.Unsatisfiable:
        if mode is GenerationMode.POSITIVE:
            raise
        # Every invalid value of its inputs is filtered out (enum path parameters, say):
        # a request with one would not reach this operation.
        pytest.skip("no invalid input can be sent to this operation")
