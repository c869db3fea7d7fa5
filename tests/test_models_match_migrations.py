"""The ORM models and the migration trees describe the same tables."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine
from sqlalchemy.ext.asyncio import AsyncEngine

import polyclinic.models  # noqa: F401  (imports every model)
from polyclinic.db.base import shared_metadata, tenant_metadata
from polyclinic.db.migrations import _include_shared
from polyclinic.tenancy.provisioning import Provisioner
from tests.conftest import create_clinic


def _differences(url: str, metadata: object, **options: object) -> list[object]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            search_path = options.pop("search_path", None)
            if search_path:
                connection.exec_driver_sql(f'SET search_path = "{search_path}"')
            context = MigrationContext.configure(connection, opts={"compare_type": True, **options})
            return list(compare_metadata(context, metadata))  # type: ignore[arg-type]
    finally:
        engine.dispose()


def test_shared_models_match_shared_migrations(database_url: str, settings: object) -> None:
    def include(name: str | None, kind: str, parents: object) -> bool:
        return _include_shared(name, kind, parents) and name != "alembic_version"

    differences = _differences(
        database_url, shared_metadata, include_schemas=True, include_name=include
    )
    assert differences == []


async def test_clinic_models_match_clinic_migrations(
    database_url: str, engine: AsyncEngine, provisioner: Provisioner
) -> None:
    clinic = await create_clinic(provisioner)
    differences = _differences(
        database_url,
        tenant_metadata,
        search_path=clinic.schema_name,
        include_name=lambda name, kind, _: kind != "table" or name != "alembic_version",
    )
    assert differences == []
