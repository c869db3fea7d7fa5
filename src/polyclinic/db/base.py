"""The two metadata objects: shared tables (explicit schema) and clinic tables (no schema)."""

from __future__ import annotations

import datetime
import uuid

from advanced_alchemy.base import CommonTableAttributes, create_registry
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy.ext.asyncio import AsyncAttrs
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

shared_registry = create_registry()
tenant_registry = create_registry()
shared_metadata = shared_registry.metadata
tenant_metadata = tenant_registry.metadata


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class SharedBase(CommonTableAttributes, AsyncAttrs, DeclarativeBase):
    """Tables of the `platform` and `billing` schemas; each model names its schema."""

    __abstract__ = True
    registry = shared_registry
    metadata = shared_metadata


class TenantBase(CommonTableAttributes, AsyncAttrs, DeclarativeBase):
    """Tables of a clinic schema; mapped to the clinic's schema per session, never named here."""

    __abstract__ = True
    registry = tenant_registry
    metadata = tenant_metadata


class UUIDKey:
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4, sort_order=-100)


class Timestamps:
    created_at: Mapped[datetime.datetime] = mapped_column(
        DateTimeUTC(timezone=True), default=utcnow, sort_order=3000
    )
    updated_at: Mapped[datetime.datetime] = mapped_column(
        DateTimeUTC(timezone=True), default=utcnow, onupdate=utcnow, sort_order=3001
    )
