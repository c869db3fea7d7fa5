"""The clinic migration tree: the DDL script for new clinics and the runner for existing ones.

Migrations are written with no schema. They reach a clinic's schema through its
search_path, and each clinic keeps its own `alembic_version` table. The registry column
`platform.tenants.schema_version` mirrors it so one query finds the clinics behind head.
"""

from __future__ import annotations

import io
import logging
import multiprocessing
import os
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from alembic.migration import MigrationContext
from alembic.operations import Operations
from alembic.runtime.environment import EnvironmentContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, select, text, update

from polyclinic.config import Settings, to_sqlalchemy_url
from polyclinic.db.base import tenant_metadata
from polyclinic.db.engine import CONNECT_ARGS, create_sync_engine
from polyclinic.db.migrations import PROJECT_ROOT, alembic_config
from polyclinic.db.session import quote_ident
from polyclinic.tenancy.models import Tenant, TenantStatus

TENANT_MIGRATIONS = PROJECT_ROOT / "tenants_migrations"
logger = logging.getLogger("polyclinic.migrations")
MIGRATABLE_STATUSES = (TenantStatus.ACTIVE, TenantStatus.SUSPENDED)


@lru_cache(maxsize=8)
def tenant_script(location: Path = TENANT_MIGRATIONS) -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config(location))


def tenant_head(location: Path = TENANT_MIGRATIONS) -> str:
    head = tenant_script(location).get_current_head()
    if head is None:
        raise RuntimeError(f"{location} has no revisions")
    return head


def _upgrade_to(script: ScriptDirectory, head: str) -> Callable[[Any, Any], Iterable[Any]]:
    def steps(current: Any, _context: Any) -> Iterable[Any]:
        return script._upgrade_revs(head, current)

    return steps


@lru_cache(maxsize=8)
def render_tenant_ddl(location: Path = TENANT_MIGRATIONS) -> tuple[str, str]:
    """(head, DDL) building an empty clinic schema at head, version table stamped.

    Rendered once per head revision from the migrations themselves (alembic offline mode),
    so a new clinic gets exactly what migrating from scratch would give, in one round trip.
    The script has no schema names: it runs with the new clinic's search_path.
    """
    script = tenant_script(location)
    head = tenant_head(location)
    buffer = io.StringIO()
    with EnvironmentContext(
        alembic_config(location),
        script,
        fn=_upgrade_to(script, head),
        as_sql=True,
        destination_rev=head,
    ) as env:
        env.configure(
            dialect_name="postgresql",
            # Named parameters: the script is executed as is, so `%` must not be doubled.
            dialect_opts={"paramstyle": "named"},
            output_buffer=buffer,
            literal_binds=True,
            transactional_ddl=False,
            target_metadata=tenant_metadata,
        )
        env.run_migrations()
    return head, buffer.getvalue()


def upgrade_tenant_schema(connection: Connection, schema: str, location: Path, head: str) -> None:
    """Bring one clinic schema to `head` inside the caller's transaction."""
    connection.exec_driver_sql(f"SET LOCAL search_path = {quote_ident(schema)}")
    context = MigrationContext.configure(
        connection,
        opts={
            "version_table_schema": schema,
            "fn": _upgrade_to(tenant_script(location), head),
            "target_metadata": tenant_metadata,
        },
    )
    with Operations.context(context):
        context.run_migrations()


def run_tenant_env(context: Any) -> None:
    """Body of tenants_migrations/env.py for the alembic command (`-x schema=clinic_...`)."""
    schema = context.get_x_argument(as_dictionary=True).get("schema")
    if context.is_offline_mode():
        context.configure(
            dialect_name="postgresql", literal_binds=True, target_metadata=tenant_metadata
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    if not schema:
        raise SystemExit("pass the clinic schema to work on: alembic -x schema=clinic_... ")
    engine = create_engine(to_sqlalchemy_url(os.environ["DATABASE_URL"]), connect_args=CONNECT_ARGS)
    with engine.begin() as connection:
        connection.exec_driver_sql(f"SET LOCAL search_path = {quote_ident(schema)}")
        context.configure(
            connection=connection, target_metadata=tenant_metadata, version_table_schema=schema
        )
        context.run_migrations()
    engine.dispose()


@dataclass(frozen=True)
class TenantRef:
    id: uuid.UUID
    slug: str
    schema_name: str


@dataclass
class MigrationReport:
    head: str
    migrated: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    ahead: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


def tenants_behind(
    connection: Connection, location: Path, slug: str | None = None
) -> tuple[list[TenantRef], list[str]]:
    """(clinics on an older revision of this tree, subdomains on a revision it does not know).

    A clinic on an unknown revision was migrated by a newer release; it is left alone.
    """
    script = tenant_script(location)
    head = tenant_head(location)
    older = [rev.revision for rev in script.walk_revisions() if rev.revision != head]
    query = (
        select(Tenant.id, Tenant.slug, Tenant.schema_name, Tenant.schema_version)
        .where(Tenant.status.in_(MIGRATABLE_STATUSES))
        .where(Tenant.schema_version.is_distinct_from(head))
        .order_by(Tenant.slug)
    )
    if slug is not None:
        query = query.where(Tenant.slug == slug)
    behind, ahead = [], []
    for row in connection.execute(query):
        if row.schema_version is None or row.schema_version in older:
            behind.append(TenantRef(row.id, row.slug, row.schema_name))
        else:
            ahead.append(row.slug)
    return behind, ahead


def _migrate_one(engine: Engine, tenant: TenantRef, location: Path, head: str) -> str | None:
    """Migrate one clinic in its own transaction; return the error, or None."""
    try:
        with engine.begin() as connection:
            # One runner per clinic at a time; a second one waits, then finds nothing to do.
            connection.execute(
                text("SELECT pg_advisory_xact_lock(hashtextextended(:schema, 0))"),
                {"schema": tenant.schema_name},
            )
            upgrade_tenant_schema(connection, tenant.schema_name, location, head)
            connection.execute(
                update(Tenant)
                .where(Tenant.id == tenant.id)
                .values(schema_version=head, migration_failed=False, last_error=None)
            )
        return None
    except Exception as exc:
        error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:1000]
        try:
            with engine.begin() as connection:
                connection.execute(
                    update(Tenant)
                    .where(Tenant.id == tenant.id)
                    .values(migration_failed=True, last_error=error)
                )
        except Exception:
            logger.exception("could not record the failed migration of %s", tenant.slug)
        return error


_worker_engine: Engine | None = None


def _init_worker(settings: Settings) -> None:
    global _worker_engine
    _worker_engine = create_sync_engine(settings, pool_size=1)


def _migrate_in_worker(tenant: TenantRef, location: Path, head: str) -> tuple[str, str | None]:
    assert _worker_engine is not None
    return tenant.slug, _migrate_one(_worker_engine, tenant, location, head)


def migrate_tenants(
    settings: Settings,
    *,
    jobs: int = 2,
    slug: str | None = None,
    location: Path = TENANT_MIGRATIONS,
    on_result: Callable[[str, str | None], None] | None = None,
) -> MigrationReport:
    """Migrate every clinic behind head, `jobs` at a time, past failures.

    Each clinic commits on its own, so a rerun resumes with the clinics still behind.
    Alembic's `op` is process-global, hence processes rather than threads.
    """
    head = tenant_head(location)
    report = MigrationReport(head=head)
    engine = create_sync_engine(settings, pool_size=1)
    try:
        with engine.connect() as connection:
            pending, report.ahead = tenants_behind(connection, location, slug)
        if not pending:
            return report
        if jobs <= 1 or len(pending) == 1:
            results: Iterable[tuple[str, str | None]] = (
                (tenant.slug, _migrate_one(engine, tenant, location, head)) for tenant in pending
            )
            _collect(results, report, on_result)
        else:
            workers = min(jobs, len(pending))
            with ProcessPoolExecutor(
                max_workers=workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(settings,),
            ) as pool:
                results = pool.map(
                    _migrate_in_worker,
                    pending,
                    [location] * len(pending),
                    [head] * len(pending),
                    chunksize=max(1, min(32, len(pending) // (workers * 4))),
                )
                _collect(results, report, on_result)
    finally:
        engine.dispose()
    return report


def _collect(
    results: Iterable[tuple[str, str | None]],
    report: MigrationReport,
    on_result: Callable[[str, str | None], None] | None,
) -> None:
    for slug, error in results:
        if error is None:
            report.migrated.append(slug)
        else:
            report.failed[slug] = error
        if on_result is not None:
            on_result(slug, error)
