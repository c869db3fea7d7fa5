"""The tenant registry in the shared `platform` schema."""

from __future__ import annotations

import datetime
import enum
import uuid

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import Boolean, Enum, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from polyclinic.db.base import SharedBase, Timestamps, UUIDKey

PLATFORM_SCHEMA = "platform"


# `Tenant.suspended_by`: the platform's operators, or billing (its admin can still pay).
SUSPENDED_BY_PLATFORM = "platform"
SUSPENDED_BY_BILLING = "billing"
PLATFORM_SUSPENSION = (
    "This clinic's account is suspended; its administrator can contact the platform"
)


class TenantStatus(enum.StrEnum):
    PROVISIONING = "provisioning"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    DELETED = "deleted"
    FAILED = "failed"


class Tenant(UUIDKey, Timestamps, SharedBase):
    __tablename__ = "tenants"
    __table_args__ = {"schema": PLATFORM_SCHEMA}

    slug: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    schema_name: Mapped[str] = mapped_column(String(63), unique=True)
    db_role: Mapped[str] = mapped_column(String(63), unique=True)
    status: Mapped[TenantStatus] = mapped_column(
        Enum(
            TenantStatus,
            name="tenant_status",
            schema=PLATFORM_SCHEMA,
            values_callable=lambda e: [m.value for m in e],
        ),
        default=TenantStatus.PROVISIONING,
        index=True,
    )
    timezone: Mapped[str] = mapped_column(String(64))
    admin_email: Mapped[str] = mapped_column(String(320))
    schema_version: Mapped[str | None] = mapped_column(String(64), index=True)
    migration_failed: Mapped[bool] = mapped_column(Boolean, default=False)
    last_error: Mapped[str | None] = mapped_column(Text)
    deleted_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    purged_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    # Who suspended the clinic (`platform` or `billing`) and the reason its host answers with.
    suspended_by: Mapped[str | None] = mapped_column(String(20))
    suspension_reason: Mapped[str | None] = mapped_column(Text)

    domains: Mapped[list[Domain]] = relationship(back_populates="tenant", lazy="raise")


class Domain(UUIDKey, Timestamps, SharedBase):
    __tablename__ = "domains"
    __table_args__ = {"schema": PLATFORM_SCHEMA}

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey(f"{PLATFORM_SCHEMA}.tenants.id", ondelete="CASCADE"), index=True
    )
    host: Mapped[str] = mapped_column(String(253), unique=True)
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)

    tenant: Mapped[Tenant] = relationship(back_populates="domains", lazy="raise")
