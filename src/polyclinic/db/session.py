"""Sessions bound to one clinic.

A clinic session compiles every statement once and qualifies it with the clinic's schema at
run time (`schema_translate_map`), and at each transaction begin switches to the clinic's
role and search_path in one round trip, so the database itself refuses anything outside the
clinic. One session serves one clinic and is never reused for another. A session opened while
`statement_timeout_ms` is set (during a clinic's request) also bounds each statement.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from polyclinic.db.context import TenantInfo

TENANT_INFO_KEY = "tenant"
STATEMENT_TIMEOUT_KEY = "statement_timeout_ms"

# Set for the length of a clinic's request, so no statement made on its behalf (guards and
# dependencies included) holds a connection for longer; jobs and commands set none (0).
statement_timeout_ms: ContextVar[int] = ContextVar("statement_timeout_ms", default=0)


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def clinic_binding_sql(tenant: TenantInfo, timeout_ms: int = 0) -> str:
    sql = (
        f"SET LOCAL ROLE {quote_ident(tenant.db_role)}; "
        f"SET LOCAL search_path = {quote_ident(tenant.schema_name)}"
    )
    if timeout_ms > 0:
        sql += f"; SET LOCAL statement_timeout = {int(timeout_ms)}"
    return sql


@event.listens_for(Session, "after_begin")
def _bind_transaction_to_clinic(
    session: Session, transaction: SessionTransaction, connection: Connection
) -> None:
    tenant: TenantInfo | None = session.info.get(TENANT_INFO_KEY)
    if tenant is not None:
        # No parameters: psycopg sends both statements in one simple-protocol round trip.
        timeout_ms: int = session.info.get(STATEMENT_TIMEOUT_KEY, 0)
        connection.exec_driver_sql(clinic_binding_sql(tenant, timeout_ms))


def clinic_of(session: AsyncSession) -> TenantInfo:
    """The clinic a clinic session is bound to."""
    clinic: TenantInfo | None = session.info.get(TENANT_INFO_KEY)
    if clinic is None:
        raise RuntimeError("this needs a clinic session")
    return clinic


def clinic_session(engine: AsyncEngine, tenant: TenantInfo, **kwargs: Any) -> AsyncSession:
    bound = engine.execution_options(schema_translate_map={None: tenant.schema_name})
    info = {TENANT_INFO_KEY: tenant, STATEMENT_TIMEOUT_KEY: statement_timeout_ms.get()}
    return AsyncSession(bind=bound, info=info, expire_on_commit=False, **kwargs)


@asynccontextmanager
async def clinic_transaction(
    engine: AsyncEngine, tenant: TenantInfo
) -> AsyncIterator[AsyncSession]:
    """A clinic session whose transaction commits on success and rolls back on error."""
    async with clinic_session(engine, tenant) as session, session.begin():
        yield session


def platform_session(engine: AsyncEngine) -> AsyncSession:
    return AsyncSession(bind=engine, expire_on_commit=False)
