"""Clinic users for the identity tests, and a mail sender that keeps what it is given."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from litestar import Litestar
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.db.session import clinic_transaction
from polyclinic.identity.accounts.models import User
from polyclinic.identity.accounts.passwords import hash_password
from polyclinic.tenancy.models import Tenant
from polyclinic.tenancy.resolver import tenant_info
from polyclinic.worker.mail import MailMessage, MailQueue
from tests.conftest import BASE_DOMAIN, Client

PASSWORD = "correct-horse-battery-9"


class CapturingMailer:
    def __init__(self) -> None:
        self.sent: list[MailMessage] = []
        self.queue: MailQueue | None = None

    async def send(self, message: MailMessage, event_id: uuid.UUID) -> None:
        self.sent.append(message)

    async def delivered(self) -> None:
        """Wait until everything the app queued so far has been handed over."""
        assert self.queue is not None
        await self.queue.drain()

    def token_for(self, to: str, kind: str) -> str:
        message = next(m for m in reversed(self.sent) if m.to == to and m.kind == kind)
        assert message.token is not None, message
        return message.token


@pytest.fixture
async def mailer(app: Litestar) -> AsyncIterator[CapturingMailer]:
    captured = CapturingMailer()
    runtime = app.state.runtime
    runtime.mail = captured.queue = MailQueue(captured, engine=runtime.engine)
    yield captured
    await runtime.mail.drain()


@dataclass
class ClinicApi:
    """Requests to one clinic's host."""

    client: Client
    tenant: Tenant

    @property
    def host(self) -> str:
        return f"{self.tenant.slug}.{BASE_DOMAIN}"

    async def call(self, method: str, path: str, token: str | None = None, **kwargs: object):  # type: ignore[no-untyped-def]
        headers = dict(kwargs.pop("headers", {}))  # type: ignore[call-overload]
        if token:
            headers["authorization"] = f"Bearer {token}"
        return await self.client.request(
            method, f"/api/v1{path}", self.host, headers=headers, **kwargs
        )

    async def login(self, email: str, password: str = PASSWORD) -> dict:  # type: ignore[type-arg]
        response = await self.call(
            "POST", "/auth/login", json={"email": email, "password": password}
        )
        assert response.status_code == 200, response.text
        return response.json()["data"]


@pytest.fixture
def clinic_a(client: Client, two_clinics: tuple[Tenant, Tenant]) -> ClinicApi:
    return ClinicApi(client, two_clinics[0])


@pytest.fixture
def clinic_b(client: Client, two_clinics: tuple[Tenant, Tenant]) -> ClinicApi:
    return ClinicApi(client, two_clinics[1])


_HASH = hash_password(PASSWORD)


async def add_user(
    engine: AsyncEngine, tenant: Tenant, email: str, role: str, **fields: object
) -> User:
    info = tenant_info(tenant)
    assert info is not None
    async with clinic_transaction(engine, info) as session:
        user = User(
            email=email,
            password_hash=_HASH,
            first_name="Test",
            last_name=role.title(),
            role=role,
            is_active=True,
            **fields,
        )
        session.add(user)
    return user
