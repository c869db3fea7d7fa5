"""Engines: one per database cluster, with connections that start outside every clinic."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from polyclinic.config import Settings

# No clinic tables are reachable through this path: an unqualified statement outside a
# clinic transaction fails instead of landing in some schema.
NEUTRAL_SEARCH_PATH = "pg_catalog"
CONNECT_ARGS: dict[str, Any] = {"options": f"-c search_path={NEUTRAL_SEARCH_PATH}"}


def create_app_engine(settings: Settings, *, pool_size: int | None = None) -> AsyncEngine:
    engine = create_async_engine(
        settings.sqlalchemy_url,
        connect_args=CONNECT_ARGS,
        pool_size=pool_size or settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_recycle=settings.db_pool_recycle,
        pool_pre_ping=False,
    )
    limit_connection_uses(engine.sync_engine, settings.db_connection_max_uses)
    return engine


def create_sync_engine(settings: Settings, *, pool_size: int = 2) -> Engine:
    engine = create_engine(
        settings.sqlalchemy_url,
        connect_args=CONNECT_ARGS,
        pool_size=pool_size,
        max_overflow=0,
        pool_recycle=settings.db_pool_recycle,
    )
    limit_connection_uses(engine, settings.db_connection_max_uses)
    return engine


def limit_connection_uses(engine: Engine, max_uses: int) -> None:
    """Replace a pooled connection after `max_uses` checkouts.

    A backend caches the catalog of every clinic schema it touches; replacing connections
    keeps that memory bounded when requests go round-robin over thousands of clinics.
    """
    if max_uses <= 0:
        return

    @event.listens_for(engine, "checkout")
    def _count_use(dbapi_conn: Any, record: ConnectionPoolEntry, proxy: Any) -> None:
        uses = record.info.get("uses", 0) + 1
        record.info["uses"] = uses
        if uses > max_uses:
            record.info["uses"] = 0
            raise exc.DisconnectionError("connection reached its use limit")
