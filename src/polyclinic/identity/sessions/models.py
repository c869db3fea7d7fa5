"""Sign-in sessions, their rotating refresh tokens, and failed sign-ins (clinic schema)."""

from __future__ import annotations

import datetime
import uuid

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import ForeignKey, Integer, String, Text
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


class FailureCounter:
    """Failed sign-ins under one key (`account:<email>` or `address:<ip>`) within a window
    that slides with each failure; a locked account also says until when."""

    key: Mapped[str] = mapped_column(Text, primary_key=True)
    attempts: Mapped[int] = mapped_column(Integer)
    # The window ends here unless another failure comes first.
    expires_at: Mapped[datetime.datetime] = mapped_column(DateTimeUTC(timezone=True), index=True)
    locked_until: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True))


class LoginFailure(FailureCounter, TenantBase):
    """A clinic's failed sign-ins, so a lockout needs nothing but the clinic's database."""

    __tablename__ = "login_failures"
