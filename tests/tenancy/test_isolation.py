"""Two clinics holding rows with the same ids never see each other's data."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.clinic.models import ClinicProfile
from polyclinic.db.base import utcnow
from polyclinic.db.context import TenantInfo
from polyclinic.db.session import clinic_session, clinic_transaction, platform_session
from polyclinic.tenancy.models import Tenant
from polyclinic.tenancy.resolver import tenant_info
from tests.conftest import Client

SHARED_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")


def info(tenant: Tenant) -> TenantInfo:
    bound = tenant_info(tenant)
    assert bound is not None
    return bound


async def add_profile(engine: AsyncEngine, tenant: Tenant, name: str) -> None:
    async with clinic_transaction(engine, info(tenant)) as session:
        now = utcnow()
        session.add(
            ClinicProfile(id=SHARED_ID, name=name, timezone="UTC", created_at=now, updated_at=now)
        )


async def names(engine: AsyncEngine, tenant: Tenant) -> set[str]:
    async with clinic_session(engine, info(tenant)) as session:
        return set((await session.execute(select(ClinicProfile.name))).scalars())


async def test_same_primary_keys_stay_apart_in_the_session_layer(
    engine: AsyncEngine, two_clinics: tuple[Tenant, Tenant]
) -> None:
    a, b = two_clinics
    await add_profile(engine, a, "A's twin row")
    await add_profile(engine, b, "B's twin row")

    assert await names(engine, a) == {"Riverside Clinic", "A's twin row"}
    assert await names(engine, b) == {"Hilltop Clinic", "B's twin row"}
    async with clinic_session(engine, info(a)) as session:
        row = await session.get(ClinicProfile, SHARED_ID)
        assert row is not None and row.name == "A's twin row"


async def test_api_shows_each_clinic_its_own_profile_under_concurrency(
    client: Client, engine: AsyncEngine, two_clinics: tuple[Tenant, Tenant]
) -> None:
    a, b = two_clinics
    for tenant in (a, b):  # both profiles get the same primary key
        async with clinic_transaction(engine, info(tenant)) as session:
            await session.execute(update(ClinicProfile).values(id=SHARED_ID))
    order = [a, b] * 60

    responses = await asyncio.gather(*(client.clinic(t.slug) for t in order))

    for tenant, response in zip(order, responses, strict=True):
        assert response.status_code == 200, response.text
        body = response.json()["data"]
        assert (body["name"], body["subdomain"]) == (tenant.name, tenant.slug)


async def test_interleaved_sessions_never_cross(
    engine: AsyncEngine, two_clinics: tuple[Tenant, Tenant]
) -> None:
    a, b = two_clinics

    async def read(tenant: Tenant) -> tuple[str, str]:
        async with clinic_session(engine, info(tenant)) as session:
            role = (await session.execute(text("SELECT current_user"))).scalar_one()
            await asyncio.sleep(0)
            name = (await session.execute(select(ClinicProfile.name))).scalar_one()
            return role, name

    results = await asyncio.gather(*(read(t) for t in [a, b] * 25))
    for tenant, result in zip([a, b] * 25, results, strict=True):
        assert result == (tenant.db_role, tenant.name)


async def test_naming_another_clinics_schema_is_refused_by_the_database(
    engine: AsyncEngine, two_clinics: tuple[Tenant, Tenant]
) -> None:
    a, b = two_clinics
    async with clinic_session(engine, info(a)) as session:
        with pytest.raises(ProgrammingError, match="permission denied for schema"):
            await session.execute(text(f'SELECT name FROM "{b.schema_name}".clinic_profile'))


async def test_a_clinic_reads_only_its_own_registry_row(
    engine: AsyncEngine, two_clinics: tuple[Tenant, Tenant]
) -> None:
    a, _ = two_clinics
    async with clinic_session(engine, info(a)) as session:
        slugs = (await session.execute(text("SELECT slug FROM platform.tenants"))).scalars().all()
        assert slugs == [a.slug]
        with pytest.raises(ProgrammingError, match="permission denied"):
            await session.execute(text("SELECT host FROM platform.domains"))


async def test_a_clinic_cannot_change_its_version_table(
    engine: AsyncEngine, two_clinics: tuple[Tenant, Tenant]
) -> None:
    a, _ = two_clinics
    async with clinic_session(engine, info(a)) as session:
        with pytest.raises(ProgrammingError, match="permission denied"):
            await session.execute(text("DELETE FROM alembic_version"))


async def test_rolled_back_savepoint_keeps_the_binding(
    engine: AsyncEngine, two_clinics: tuple[Tenant, Tenant]
) -> None:
    a, b = two_clinics
    async with clinic_session(engine, info(a)) as session:
        await session.execute(select(ClinicProfile.name))
        with pytest.raises(DBAPIError):
            async with session.begin_nested():
                await session.execute(text("SELECT 1/0"))
        role, path = (
            await session.execute(text("SELECT current_user, current_setting('search_path')"))
        ).one()
        assert role == a.db_role
        assert path == a.schema_name
        assert (await session.execute(select(ClinicProfile.name))).scalar_one() == a.name
        with pytest.raises(ProgrammingError, match="permission denied"):
            await session.execute(text(f'SELECT 1 FROM "{b.schema_name}".clinic_profile'))


async def test_binding_is_renewed_for_each_transaction(
    engine: AsyncEngine, two_clinics: tuple[Tenant, Tenant]
) -> None:
    a, _ = two_clinics
    async with clinic_session(engine, info(a)) as session:
        await session.execute(select(ClinicProfile.name))
        await session.commit()
        role = (await session.execute(text("SELECT current_user"))).scalar_one()
        assert role == a.db_role


async def test_outside_a_clinic_unqualified_clinic_tables_do_not_resolve(
    engine: AsyncEngine, two_clinics: tuple[Tenant, Tenant]
) -> None:
    async with platform_session(engine) as session:
        with pytest.raises(ProgrammingError, match="does not exist"):
            await session.execute(text("SELECT name FROM clinic_profile"))


async def test_pooled_connection_carries_nothing_into_the_next_clinic(
    settings: object, two_clinics: tuple[Tenant, Tenant]
) -> None:
    from polyclinic.db.engine import create_app_engine

    a, b = two_clinics
    single = create_app_engine(settings, pool_size=1)  # type: ignore[arg-type]
    try:
        assert await names(single, a) == {a.name}
        async with platform_session(single) as session:
            role = (await session.execute(text("SELECT current_user"))).scalar_one()
            assert role != a.db_role
        assert await names(single, b) == {b.name}
    finally:
        await single.dispose()
