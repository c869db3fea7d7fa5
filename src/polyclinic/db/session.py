"""Sessions bound to one clinic.

A clinic session compiles every statement once and qualifies it with the clinic's schema at
run time (`schema_translate_map`), and at each transaction begin switches to the clinic's
role and search_path in one round trip, so the database itself refuses anything outside the
clinic. One session serves one clinic and is never reused for another.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from polyclinic.db.context import TenantInfo

TENANT_INFO_KEY = "tenant"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def clinic_binding_sql(tenant: TenantInfo) -> str:
    return (
        f"SET LOCAL ROLE {quote_ident(tenant.db_role)}; "
        f"SET LOCAL search_path = {quote_ident(tenant.schema_name)}"
    )


@event.listens_for(Session, "after_begin")
def _bind_transaction_to_clinic(
    session: Session, transaction: SessionTransaction, connection: Connection
) -> None:
    tenant: TenantInfo | None = session.info.get(TENANT_INFO_KEY)
    if tenant is not None:
        # No parameters: psycopg sends both statements in one simple-protocol round trip.
        connection.exec_driver_sql(clinic_binding_sql(tenant))


def clinic_of(session: AsyncSession) -> TenantInfo:
    """The clinic a clinic session is bound to."""
    clinic: TenantInfo | None = session.info.get(TENANT_INFO_KEY)
    if clinic is None:
        raise RuntimeError("this needs a clinic session")
    return clinic


def clinic_session(engine: AsyncEngine, tenant: TenantInfo, **kwargs: Any) -> AsyncSession:
    bound = engine.execution_options(schema_translate_map={None: tenant.schema_name})
    return AsyncSession(
        bind=bound, info={TENANT_INFO_KEY: tenant}, expire_on_commit=False, **kwargs
    )


@asynccontextmanager
async def clinic_transaction(
    engine: AsyncEngine, tenant: TenantInfo
) -> AsyncIterator[AsyncSession]:
    """A clinic session whose transaction commits on success and rolls back on error."""
    async with clinic_session(engine, tenant) as session, session.begin():
        yield session


def platform_session(engine: AsyncEngine) -> AsyncSession:
    return AsyncSession(bind=engine, expire_on_commit=False)
