"""Platform operators (super-admins), in the shared `platform` schema."""

from __future__ import annotations

import datetime

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import BigInteger, Boolean, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from polyclinic.db.base import SharedBase, Timestamps, UUIDKey
from polyclinic.identity.sessions.models import FailureCounter
from polyclinic.tenancy.models import PLATFORM_SCHEMA


class PlatformUser(UUIDKey, Timestamps, SharedBase):
    __tablename__ = "users"
    __table_args__ = {"schema": PLATFORM_SCHEMA}

    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    mfa_secret: Mapped[str | None] = mapped_column(String(255))
    mfa_enabled_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    mfa_recovery_hashes: Mapped[list[str] | None] = mapped_column(JSONB)
    mfa_last_step: Mapped[int | None] = mapped_column(BigInteger)


class PlatformLoginFailure(FailureCounter, SharedBase):
    """Super-admins' failed sign-ins (the same lockout as a clinic's)."""

    __tablename__ = "login_failures"
    __table_args__ = {"schema": PLATFORM_SCHEMA}
