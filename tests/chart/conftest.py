"""Clinics with staff of every role and patients, for the chart's tests."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.db.context import TenantInfo
from polyclinic.identity.accounts.models import User
from polyclinic.identity.permissions.guards import Principal
from polyclinic.identity.permissions.roles import Role
from polyclinic.tenancy.resolver import tenant_info
from tests.identity.conftest import ClinicApi, add_user, clinic_a, clinic_b, mailer  # noqa: F401

STAFF = (Role.CLINIC_ADMIN, Role.DOCTOR, Role.NURSE, Role.RECEPTIONIST, Role.BILLING)


@dataclass
class Clinic:
    """One clinic's API, a signed-in user of each staff role, and two patients."""

    api: ClinicApi
    users: dict[str, User]
    tokens: dict[str, str]

    async def call(self, method: str, path: str, as_: str, **kwargs: object):  # type: ignore[no-untyped-def]
        return await self.api.call(method, path, self.tokens[as_], **kwargs)


async def staffed(api: ClinicApi, engine: AsyncEngine, same_ids_as: Clinic | None = None) -> Clinic:
    users: dict[str, User] = {}
    tokens: dict[str, str] = {}
    for name, role in [(r.value, r.value) for r in STAFF] + [
        ("ann", Role.PATIENT),
        ("bob", Role.PATIENT),
    ]:
        fields: dict[str, object] = {}
        if same_ids_as is not None:
            fields["id"] = same_ids_as.users[name].id
        email = f"{name}@{api.tenant.slug}.example"
        users[name] = await add_user(engine, api.tenant, email, role, **fields)
        tokens[name] = (await api.login(email))["accessToken"]
    return Clinic(api, users, tokens)


@pytest.fixture
async def clinic(clinic_a: ClinicApi, engine: AsyncEngine) -> Clinic:  # noqa: F811
    return await staffed(clinic_a, engine)


@pytest.fixture
async def twin(clinic: Clinic, clinic_b: ClinicApi, engine: AsyncEngine) -> Clinic:  # noqa: F811
    """Another clinic whose users have the very same ids."""
    return await staffed(clinic_b, engine, same_ids_as=clinic)


def schema_of(clinic: Clinic) -> str:
    return clinic.api.tenant.schema_name


async def superuser_rows(engine: AsyncEngine, clinic: Clinic, sql: str) -> list[dict[str, object]]:
    """Rows of a statement run by the database owner on the clinic's schema, outside any
    clinic role (`{s}` is the schema)."""
    async with engine.begin() as connection:
        result = await connection.execute(text(sql.format(s=f'"{schema_of(clinic)}"')))
        return [dict(row._mapping) for row in result] if result.returns_rows else []


async def entries(engine: AsyncEngine, clinic: Clinic) -> list[dict[str, object]]:
    return await superuser_rows(engine, clinic, "SELECT * FROM {s}.audit_entries ORDER BY seq")


async def tamper(engine: AsyncEngine, clinic: Clinic, sql: str) -> None:
    """Change the trail as someone able to switch its triggers off would."""
    async with engine.begin() as connection:
        await connection.exec_driver_sql("SET LOCAL session_replication_role = replica")
        await connection.exec_driver_sql(sql.format(s=f'"{schema_of(clinic)}"'))


def info(clinic: Clinic) -> TenantInfo:
    found = tenant_info(clinic.api.tenant)
    assert found is not None
    return found


def principal(clinic: Clinic, name: str) -> Principal:
    user = clinic.users[name]
    return Principal(user_id=user.id, role=user.role, session_id=uuid.uuid4())
