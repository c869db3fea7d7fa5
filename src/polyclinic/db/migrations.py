"""The shared migration tree (`platform` and `billing` schemas)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, text

from polyclinic.config import to_sqlalchemy_url
from polyclinic.db.base import shared_metadata
from polyclinic.db.engine import CONNECT_ARGS

PROJECT_ROOT = Path(__file__).resolve().parents[3]
SHARED_MIGRATIONS = PROJECT_ROOT / "shared_migrations"
SHARED_SCHEMAS = ("platform", "billing")
SHARED_VERSION_SCHEMA = "platform"
# Serialises concurrent `db upgrade` runs (several pods starting at once).
_SHARED_MIGRATION_LOCK = 7_301_001


def alembic_config(script_location: Path, connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location))
    config.attributes["connection"] = connection
    return config


def upgrade_shared(engine: Engine, revision: str = "head") -> None:
    with engine.begin() as connection:
        connection.execute(
            text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SHARED_MIGRATION_LOCK}
        )
        command.upgrade(alembic_config(SHARED_MIGRATIONS, connection), revision)


def _include_shared(name: str | None, type_: str, parent_names: Any) -> bool:
    if type_ == "schema":
        return name in SHARED_SCHEMAS
    return True


def run_shared_env(context: Any) -> None:
    """Body of shared_migrations/env.py, for `polyclinic db upgrade` and the alembic command.
    The env imports the model registry first, so the metadata holds every table."""
    connection: Connection | None = context.config.attributes.get("connection")
    if connection is None:
        engine = create_engine(
            to_sqlalchemy_url(os.environ["DATABASE_URL"]), connect_args=CONNECT_ARGS
        )
        with engine.begin() as own_connection:
            _run_shared(context, own_connection)
        engine.dispose()
    else:
        _run_shared(context, connection)


def _run_shared(context: Any, connection: Connection) -> None:
    connection.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {SHARED_VERSION_SCHEMA}")
    context.configure(
        connection=connection,
        target_metadata=shared_metadata,
        version_table_schema=SHARED_VERSION_SCHEMA,
        include_schemas=True,
        include_name=_include_shared,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
