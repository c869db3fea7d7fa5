"""Sign-in sessions and their rotating refresh tokens (clinic schema)."""

from __future__ import annotations

import datetime
import uuid

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from polyclinic.db.base import TenantBase, UUIDKey, utcnow


class AuthSession(UUIDKey, TenantBase):
    """One signed-in device: a family of refresh tokens, rotated on every use."""

    __tablename__ = "auth_sessions"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime.datetime] = mapped_column(
        DateTimeUTC(timezone=True), default=utcnow
    )
    last_seen_at: Mapped[datetime.datetime] = mapped_column(
        DateTimeUTC(timezone=True), default=utcnow
    )
    expires_at: Mapped[datetime.datetime] = mapped_column(DateTimeUTC(timezone=True))
    revoked_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    revoked_reason: Mapped[str | None] = mapped_column(String(40))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))


class RefreshToken(UUIDKey, TenantBase):
    __tablename__ = "refresh_tokens"

    session_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("auth_sessions.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime.datetime] = mapped_column(
        DateTimeUTC(timezone=True), default=utcnow
    )
    used_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
