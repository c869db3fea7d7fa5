"""Throwaway databases for tests and benchmarks, dropped with the clinic roles they made."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, make_url, text

from polyclinic.config import to_sqlalchemy_url
from polyclinic.db.migrations import PROJECT_ROOT


def server_url() -> str:
    """DATABASE_URL's server when set, else the embedded PostgreSQL of `polyclinic dev`."""
    url = os.environ.get("DATABASE_URL")
    if url:
        return to_sqlalchemy_url(url)
    from polyclinic.db.embedded import embedded_postgres_url

    return to_sqlalchemy_url(embedded_postgres_url(PROJECT_ROOT / "var" / "pgdata", "postgres"))


@contextmanager
def scratch_database(prefix: str) -> Iterator[str]:
    """Create `<prefix>_<random>` on the server; yield its URL; drop it and its clinic roles."""
    server = make_url(server_url())
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = server.set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        roles = _clinic_roles(url)
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
            for role in roles:
                connection.exec_driver_sql(f'DROP ROLE IF EXISTS "{role}"')
        admin.dispose()


def _clinic_roles(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            exists = connection.scalar(text("SELECT to_regclass('platform.tenants') IS NOT NULL"))
            if not exists:
                return []
            return list(connection.execute(text("SELECT db_role FROM platform.tenants")).scalars())
    finally:
        engine.dispose()
