"""The clinic migration runner: bounded parallel, past failures, resumable."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.config import Settings
from polyclinic.tenancy.migrations import TENANT_MIGRATIONS, migrate_tenants, render_tenant_ddl
from polyclinic.tenancy.models import Tenant
from polyclinic.tenancy.provisioning import Provisioner
from tests.conftest import create_clinic

NEXT_REVISION = '''"""Short clinic names, and a fax number.

Revision ID: t9001
Revises: {head}
"""

import sqlalchemy as sa
from alembic import op

revision = "t9001"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("clinic_profile", sa.Column("fax", sa.String(40), nullable=True))
    op.create_index("ix_clinic_profile_fax", "clinic_profile", ["fax"])
    op.create_check_constraint(
        "ck_clinic_profile_short_name", "clinic_profile", "length(name) <= 60"
    )


def downgrade() -> None:
    op.drop_constraint("ck_clinic_profile_short_name", "clinic_profile")
    op.drop_index("ix_clinic_profile_fax", "clinic_profile")
    op.drop_column("clinic_profile", "fax")
'''


@pytest.fixture
def next_tree(tmp_path: Path) -> Path:
    """The real tenant tree plus one more revision, as a release would bring."""
    tree = tmp_path / "tenants_migrations"
    shutil.copytree(TENANT_MIGRATIONS, tree, ignore=shutil.ignore_patterns("__pycache__"))
    head = render_tenant_ddl()[0]
    (tree / "versions" / "20990101_t9001_short_names.py").write_text(
        NEXT_REVISION.format(head=head)
    )
    return tree


async def versions(
    engine: AsyncEngine, tenants: list[Tenant]
) -> dict[str, tuple[str, str | None, bool]]:
    out = {}
    async with engine.connect() as connection:
        for tenant in tenants:
            stamped = await connection.scalar(
                text(f'SELECT version_num FROM "{tenant.schema_name}".alembic_version')
            )
            row = (
                await connection.execute(
                    select(Tenant.schema_version, Tenant.migration_failed).where(
                        Tenant.id == tenant.id
                    )
                )
            ).one()
            out[tenant.slug] = (stamped, row.schema_version, row.migration_failed)
    return out


async def test_runner_goes_past_a_failing_clinic_and_resumes_after_the_fix(
    settings: Settings, engine: AsyncEngine, provisioner: Provisioner, next_tree: Path
) -> None:
    clinics = [await create_clinic(provisioner) for _ in range(4)]
    broken = await create_clinic(provisioner, "A clinic whose name is far too long " * 3)
    everyone = [*clinics, broken]
    slugs = {c.slug for c in everyone}
    seen: list[str] = []

    first = migrate_tenants(
        settings, jobs=2, location=next_tree, on_result=lambda s, e: seen.append(s)
    )

    assert first.head == "t9001"
    assert slugs <= set(seen)
    assert set(first.failed) == {broken.slug}
    assert "ck_clinic_profile_short_name" in first.failed[broken.slug]
    after_first = await versions(engine, everyone)
    for clinic in clinics:
        assert after_first[clinic.slug] == ("t9001", "t9001", False)
    old_head = render_tenant_ddl()[0]
    assert after_first[broken.slug] == (old_head, old_head, True)
    async with engine.connect() as connection:
        columns = (
            (
                await connection.execute(
                    text(
                        "SELECT table_schema FROM information_schema.columns "
                        "WHERE table_name = 'clinic_profile' AND column_name = 'fax' "
                        "AND table_schema = ANY(:schemas)"
                    ),
                    {"schemas": [c.schema_name for c in everyone]},
                )
            )
            .scalars()
            .all()
        )
    assert sorted(columns) == sorted(c.schema_name for c in clinics)

    async with engine.begin() as connection:
        await connection.execute(
            text(f'UPDATE "{broken.schema_name}".clinic_profile SET name = :n'), {"n": "Short"}
        )
    second = migrate_tenants(settings, jobs=2, location=next_tree)

    assert second.ok
    assert broken.slug in second.migrated
    assert slugs.isdisjoint(set(second.migrated) - {broken.slug})
    assert (await versions(engine, [broken]))[broken.slug] == ("t9001", "t9001", False)

    third = migrate_tenants(settings, jobs=2, location=next_tree)
    assert third.migrated == [] and third.ok


async def test_runner_can_target_one_clinic(
    settings: Settings, engine: AsyncEngine, provisioner: Provisioner, next_tree: Path
) -> None:
    target, other = await create_clinic(provisioner), await create_clinic(provisioner)

    report = migrate_tenants(settings, jobs=1, slug=target.slug, location=next_tree)

    assert report.migrated == [target.slug]
    state = await versions(engine, [target, other])
    assert state[target.slug][0] == "t9001"
    assert state[other.slug][0] == render_tenant_ddl()[0]
    migrate_tenants(settings, jobs=1, location=next_tree)


async def test_provisioned_schema_matches_one_built_by_migrations(
    engine: AsyncEngine, provisioner: Provisioner
) -> None:
    """The rendered DDL and the migrations must give the same tables, columns and indexes."""
    from sqlalchemy import create_engine

    from polyclinic.tenancy.migrations import upgrade_tenant_schema

    provisioned = await create_clinic(provisioner)
    sync = create_engine(engine.url.render_as_string(hide_password=False))
    with sync.begin() as connection:
        connection.exec_driver_sql("CREATE SCHEMA migrated_from_scratch")
        upgrade_tenant_schema(
            connection, "migrated_from_scratch", TENANT_MIGRATIONS, render_tenant_ddl()[0]
        )

    def shape(schema: str) -> list[tuple[str, ...]]:
        with sync.connect() as connection:
            cols = connection.execute(
                text(
                    "SELECT table_name, column_name, data_type, is_nullable "
                    "FROM information_schema.columns WHERE table_schema = :s ORDER BY 1, 2"
                ),
                {"s": schema},
            ).all()
            idx = connection.execute(
                text(
                    "SELECT tablename, replace(indexdef, :s, '') FROM pg_indexes "
                    "WHERE schemaname = :s ORDER BY 1, 2"
                ),
                {"s": schema},
            ).all()
        return [tuple(r) for r in cols] + [tuple(r) for r in idx]

    try:
        assert shape(provisioned.schema_name) == shape("migrated_from_scratch")
    finally:
        with sync.begin() as connection:
            connection.exec_driver_sql("DROP SCHEMA migrated_from_scratch CASCADE")
        sync.dispose()


async def test_clinics_on_a_newer_release_are_left_alone(
    settings: Settings, engine: AsyncEngine, provisioner: Provisioner, next_tree: Path
) -> None:
    """Rolling back to an older release must not try to 'migrate' clinics ahead of it."""
    ahead = await create_clinic(provisioner)
    migrate_tenants(settings, jobs=1, slug=ahead.slug, location=next_tree)

    report = migrate_tenants(settings, jobs=1, slug=ahead.slug)

    assert report.ok and report.migrated == [] and report.ahead == [ahead.slug]
    assert (await versions(engine, [ahead]))[ahead.slug] == ("t9001", "t9001", False)
