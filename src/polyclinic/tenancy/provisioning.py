"""Creating and removing clinics.

Provisioning is a small state machine, `provisioning -> active | failed`. A new clinic is
registered as `provisioning` and built in one transaction: registry row, role, schema,
grants, tables at head (the rendered DDL script, version stamped), the domains' `create`
hooks (`lifecycle.py`), then `active`; their `created` hooks run after the commit.
A failure rolls all of it back and records the clinic as `failed`, keeping its subdomain;
nothing is left behind that blocks a retry. A retry first claims the failed clinic (back to
`provisioning`, committed, so two retries cannot race) and then builds it the same way.
A new request for a failed clinic's subdomain resumes it only when it comes from the same
admin email, or from the platform's operators; anyone else finds the subdomain taken.
"""

from __future__ import annotations

import datetime
import logging
import uuid
from pathlib import Path

from sqlalchemy import ColumnElement, and_, delete, func, insert, or_, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from polyclinic.config import Settings
from polyclinic.db.base import utcnow
from polyclinic.db.session import platform_session, quote_ident
from polyclinic.errors import Conflict, DomainError, FieldError, NotFound
from polyclinic.tenancy.archive import dump_schema
from polyclinic.tenancy.lifecycle import ClinicCreation, ClinicLifecycle, NewClinic
from polyclinic.tenancy.migrations import TENANT_MIGRATIONS, render_tenant_ddl
from polyclinic.tenancy.models import Domain, Tenant, TenantStatus
from polyclinic.tenancy.naming import check_subdomain, check_timezone, clinic_host, schema_name_for
from polyclinic.tenancy.resolver import tenant_info

logger = logging.getLogger("polyclinic.provisioning")

CLINIC_GROUP_ROLE = "polyclinic_clinic"
# A clinic still `provisioning` after this long was left by a crash and may be claimed again.
STUCK_AFTER = datetime.timedelta(minutes=5)
NO_PARAMETERS = {"no_parameters": True}
_DROP_BATCH = 50


class ProvisioningFailed(DomainError):
    status_code = 500


class _SubdomainTaken(Exception):
    pass


def clinic_setup_sql(schema: str, role: str, ddl: str) -> str:
    """Role, schema, grants and tables of one clinic as one script (one round trip)."""
    s, r = quote_ident(schema), quote_ident(role)
    return f"""
CREATE ROLE {r} NOLOGIN IN ROLE {CLINIC_GROUP_ROLE};
GRANT {r} TO CURRENT_USER;
CREATE SCHEMA {s};
GRANT USAGE ON SCHEMA {s} TO {r};
ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {r};
ALTER DEFAULT PRIVILEGES IN SCHEMA {s} GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {r};
SET LOCAL search_path = {s};
{ddl}
REVOKE ALL ON TABLE {s}.alembic_version FROM {r};
"""


class Provisioner:
    def __init__(
        self,
        engine: AsyncEngine,
        settings: Settings,
        lifecycle: ClinicLifecycle,
        *,
        migrations: Path = TENANT_MIGRATIONS,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.lifecycle = lifecycle
        self.migrations = migrations

    def primary_host(self, subdomain: str) -> str:
        return clinic_host(self.settings, subdomain)

    async def create(self, clinic: NewClinic, *, by_operator: bool = False) -> Tenant:
        """Register and build a clinic in one transaction.

        A clinic left `failed` under the same subdomain is taken up again (retried) when the
        request names the same admin email, or comes from an operator (`by_operator`: the
        platform API, the CLI); otherwise the subdomain is taken (409) and nothing changes.
        """
        check_subdomain(clinic.subdomain, self.settings.platform_subdomains)
        check_timezone(clinic.timezone)
        async with self.engine.connect() as connection:
            await self.lifecycle.check(connection, clinic)
        tenant = self._new_tenant(clinic)
        head, ddl = render_tenant_ddl(self.migrations)
        try:
            async with self.engine.begin() as connection:
                try:
                    async with connection.begin_nested():
                        await self._register(connection, tenant)
                except IntegrityError:
                    raise _SubdomainTaken from None
                creation = await self._build_schema(connection, tenant, head, ddl, clinic)
        except _SubdomainTaken:
            return await self._resume_failed(clinic, by_operator=by_operator)
        except Exception as exc:
            await self._record_failure(tenant, exc, registered=False)
            raise self._failed(tenant.id) from exc
        await self.lifecycle.created(creation)
        return tenant

    def _new_tenant(self, clinic: NewClinic) -> Tenant:
        tenant_id = uuid.uuid4()
        schema = schema_name_for(tenant_id)
        now = utcnow()
        return Tenant(
            id=tenant_id,
            slug=clinic.subdomain,
            name=clinic.name,
            schema_name=schema,
            db_role=schema,
            status=TenantStatus.PROVISIONING,
            timezone=clinic.timezone,
            admin_email=clinic.admin_email,
            migration_failed=False,
            created_at=now,
            updated_at=now,
        )

    async def _register(self, connection: AsyncConnection, tenant: Tenant) -> None:
        values = {c.key: getattr(tenant, c.key) for c in Tenant.__table__.columns}
        await connection.execute(insert(Tenant).values(values))
        await connection.execute(
            insert(Domain).values(
                id=uuid.uuid4(),
                tenant_id=tenant.id,
                host=self.primary_host(tenant.slug),
                is_primary=True,
                created_at=tenant.created_at,
                updated_at=tenant.created_at,
            )
        )

    async def _build_schema(
        self,
        connection: AsyncConnection,
        tenant: Tenant,
        head: str,
        ddl: str,
        clinic: NewClinic,
    ) -> ClinicCreation:
        """Role, schema, grants, tables at head, the domains' `create` hooks, then `active`:
        all or nothing."""
        await connection.exec_driver_sql(
            clinic_setup_sql(tenant.schema_name, tenant.db_role, ddl),
            execution_options=NO_PARAMETERS,
        )
        translated = await connection.execution_options(
            schema_translate_map={None: tenant.schema_name}
        )
        info = tenant_info(tenant)
        if info is None:
            raise Conflict("The clinic changed while it was being provisioned")
        creation = ClinicCreation(clinic=info, request=clinic, shared=connection, schema=translated)
        await self.lifecycle.create(creation)
        now = utcnow()
        activated = await connection.execute(
            update(Tenant)
            .where(Tenant.id == tenant.id, Tenant.status == TenantStatus.PROVISIONING)
            .values(
                status=TenantStatus.ACTIVE,
                schema_version=head,
                last_error=None,
                migration_failed=False,
                updated_at=now,
            )
        )
        if activated.rowcount != 1:
            raise Conflict("The clinic changed while it was being provisioned")
        tenant.status = TenantStatus.ACTIVE
        tenant.schema_version = head
        tenant.last_error = None
        tenant.updated_at = now
        creation.clinic = tenant_info(tenant) or info
        return creation

    async def _resume_failed(self, clinic: NewClinic, *, by_operator: bool) -> Tenant:
        which = Tenant.slug == clinic.subdomain
        if not by_operator:
            # Someone else's failed signup is not theirs to take over, with their own admin.
            which = and_(which, func.lower(Tenant.admin_email) == clinic.admin_email.lower())
        claimed = await self._claim(
            which,
            name=clinic.name,
            timezone=clinic.timezone,
            admin_email=clinic.admin_email,
        )
        if claimed is None:
            raise _taken(clinic.subdomain)
        return await self._build_claimed(claimed, clinic)

    async def build(self, tenant_id: uuid.UUID) -> Tenant:
        """Build a clinic whose provisioning failed; an active clinic is returned as it is."""
        claimed = await self._claim(Tenant.id == tenant_id)
        if claimed is None:
            tenant = await load_tenant(self.engine, tenant_id)
            if tenant.status == TenantStatus.ACTIVE:
                return tenant
            if tenant.status == TenantStatus.PROVISIONING:
                raise Conflict("This clinic is being provisioned right now")
            raise Conflict(f"A {tenant.status} clinic cannot be provisioned again")
        return await self._build_claimed(claimed, _request_of(claimed))

    async def _claim(self, which: ColumnElement[bool], **changes: str) -> Tenant | None:
        """Move a failed clinic (or one stuck in `provisioning` by a crash) back to
        `provisioning`, so exactly one caller builds it."""
        stale = utcnow() - STUCK_AFTER
        claimable = or_(
            Tenant.status == TenantStatus.FAILED,
            and_(Tenant.status == TenantStatus.PROVISIONING, Tenant.updated_at < stale),
        )
        async with platform_session(self.engine) as session:
            claimed = (
                await session.execute(
                    update(Tenant)
                    .where(which, claimable)
                    .values(status=TenantStatus.PROVISIONING, updated_at=utcnow(), **changes)
                    .returning(Tenant)
                )
            ).scalar_one_or_none()
            await session.commit()
        return claimed

    async def _build_claimed(self, tenant: Tenant, clinic: NewClinic) -> Tenant:
        """Build a claimed clinic: as a new signup asked (its plan, its admin), or, a retry
        by id, as the registry has it (the default plan, the admin invited)."""
        head, ddl = render_tenant_ddl(self.migrations)
        try:
            async with self.engine.begin() as connection:
                await self.lifecycle.check(connection, clinic)
                creation = await self._build_schema(connection, tenant, head, ddl, clinic)
        except Exception as exc:
            await self._record_failure(tenant, exc, registered=True)
            raise self._failed(tenant.id) from exc
        await self.lifecycle.created(creation)
        return tenant

    async def _record_failure(self, tenant: Tenant, exc: Exception, *, registered: bool) -> None:
        """The clinic stays visible as `failed`, keeping its subdomain for the retry."""
        logger.error("provisioning clinic %s failed", tenant.id, exc_info=exc)
        error = f"provisioning failed ({type(exc).__name__}); see the service log"
        async with self.engine.begin() as connection:
            if registered:
                await connection.execute(
                    update(Tenant)
                    .where(Tenant.id == tenant.id, Tenant.status == TenantStatus.PROVISIONING)
                    .values(status=TenantStatus.FAILED, last_error=error, updated_at=utcnow())
                )
                return
            tenant.status, tenant.last_error = TenantStatus.FAILED, error
            try:
                async with connection.begin_nested():
                    await self._register(connection, tenant)
            except IntegrityError:
                pass  # someone registered this subdomain meanwhile; nothing of ours to record

    @staticmethod
    def _failed(tenant_id: uuid.UUID) -> ProvisioningFailed:
        return ProvisioningFailed(
            f"Setting up clinic {tenant_id} failed and was rolled back; "
            f"retry with POST /platform/v1/clinics/{tenant_id}/retry"
        )

    async def purge(self, tenant_id: uuid.UUID, archive_dir: Path) -> Path | None:
        """Archive a deleted clinic's schema with pg_dump, then drop its tables, schema and role.

        Returns the archive, or None when the clinic never got a schema (its provisioning failed).
        """
        tenant = await load_tenant(self.engine, tenant_id)
        if tenant.status != TenantStatus.DELETED or tenant.purged_at is not None:
            raise Conflict("Only a deleted clinic that is not yet purged can be purged")
        async with self.engine.connect() as connection:
            version = int(await connection.scalar(text("SHOW server_version_num")) or 0)
            has_schema = await connection.scalar(
                text("SELECT to_regnamespace(:schema) IS NOT NULL"), {"schema": tenant.schema_name}
            )
        archive = None
        if has_schema:
            stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
            archive = archive_dir / f"{tenant.slug}-{tenant.schema_name}-{stamp}.dump"
            await dump_schema(
                self.settings.database_url, tenant.schema_name, version // 10000, archive
            )
            await self._drop_tables(tenant.schema_name)
        await self._drop_schema_and_role(tenant.schema_name, tenant.db_role)
        async with self.engine.begin() as connection:
            await connection.execute(delete(Domain).where(Domain.tenant_id == tenant_id))
            await connection.execute(
                update(Tenant)
                .where(Tenant.id == tenant_id)
                .values(purged_at=utcnow(), updated_at=utcnow())
            )
        return archive

    async def _drop_tables(self, schema: str) -> None:
        # Tables go in batches so no single transaction holds thousands of locks.
        async with self.engine.connect() as connection:
            tables = (
                (
                    await connection.execute(
                        text("SELECT tablename FROM pg_tables WHERE schemaname = :schema"),
                        {"schema": schema},
                    )
                )
                .scalars()
                .all()
            )
        for start in range(0, len(tables), _DROP_BATCH):
            batch = ", ".join(
                f"{quote_ident(schema)}.{quote_ident(t)}"
                for t in tables[start : start + _DROP_BATCH]
            )
            async with self.engine.begin() as connection:
                await connection.exec_driver_sql(f"DROP TABLE IF EXISTS {batch} CASCADE")

    async def _drop_schema_and_role(self, schema: str, role: str) -> None:
        async with self.engine.begin() as connection:
            await connection.exec_driver_sql(f"DROP SCHEMA IF EXISTS {quote_ident(schema)} CASCADE")
            role_exists = await connection.scalar(
                text("SELECT count(*) FROM pg_roles WHERE rolname = :role"), {"role": role}
            )
            if role_exists:
                await connection.exec_driver_sql(
                    f"DROP OWNED BY {quote_ident(role)}; DROP ROLE {quote_ident(role)}",
                    execution_options=NO_PARAMETERS,
                )


async def load_tenant(engine: AsyncEngine, tenant_id: uuid.UUID) -> Tenant:
    async with platform_session(engine) as session:
        tenant = await session.get(Tenant, tenant_id)
    if tenant is None:
        raise NotFound("No clinic with this id")
    return tenant


def _request_of(tenant: Tenant) -> NewClinic:
    return NewClinic(tenant.name, tenant.slug, tenant.timezone, tenant.admin_email)


def _taken(subdomain: str) -> Conflict:
    return Conflict(
        f"The subdomain {subdomain!r} is already taken",
        [FieldError("subdomain", "is already taken")],
    )
