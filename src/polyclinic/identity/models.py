"""Clinic users, their sessions and one-time tokens, invitations and the auth event trail.

All of these live in the clinic's schema: the same email in two clinics is two accounts.
"""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import BigInteger, Boolean, CheckConstraint, Date, ForeignKey, String, Text, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from polyclinic.db.base import TenantBase, Timestamps, UUIDKey, utcnow
from polyclinic.identity.roles import Role

ROLE_VALUES = ", ".join(f"'{role.value}'" for role in Role)
MESSAGE_CHANNELS = ("email", "sms", "whatsapp")
# Email and SMS are on until the user turns them off; WhatsApp needs an explicit opt-in.
DEFAULT_MESSAGE_CHANNELS = ("email", "sms")
CHANNEL_VALUES = ", ".join(f"'{channel}'" for channel in MESSAGE_CHANNELS)


class User(UUIDKey, Timestamps, TenantBase):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(f"role IN ({ROLE_VALUES})", name="role"),
        CheckConstraint("email = lower(email)", name="email_lower_case"),
        CheckConstraint(
            f"message_channels <@ ARRAY[{CHANNEL_VALUES}]::text[]", name="message_channels"
        ),
    )

    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(40))
    date_of_birth: Mapped[datetime.date | None] = mapped_column(Date)
    role: Mapped[str] = mapped_column(String(20))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    email_verified_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    mfa_secret: Mapped[str | None] = mapped_column(String(255))
    mfa_enabled_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    # The last TOTP time step accepted: a code is good once.
    mfa_last_step: Mapped[int | None] = mapped_column(BigInteger)
    # None: the clinic's default language.
    locale: Mapped[str | None] = mapped_column(String(12))
    message_channels: Mapped[list[str]] = mapped_column(
        ARRAY(Text),
        default=lambda: list(DEFAULT_MESSAGE_CHANNELS),
        server_default=text("'{email,sms}'"),
    )


def accepted_channels(user: User) -> list[str]:
    """The channels the user accepts messages on; a user not saved yet has the defaults."""
    if user.message_channels is None:
        return list(DEFAULT_MESSAGE_CHANNELS)
    return list(user.message_channels)


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


class UserToken(UUIDKey, TenantBase):
    """Single-use, expiring tokens: email verification and password reset."""

    __tablename__ = "user_tokens"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    purpose: Mapped[str] = mapped_column(String(20))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime.datetime] = mapped_column(
        DateTimeUTC(timezone=True), default=utcnow
    )
    expires_at: Mapped[datetime.datetime] = mapped_column(DateTimeUTC(timezone=True))
    used_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True))


class Invitation(UUIDKey, Timestamps, TenantBase):
    __tablename__ = "invitations"
    __table_args__ = (CheckConstraint(f"role IN ({ROLE_VALUES})", name="role"),)

    email: Mapped[str] = mapped_column(String(320), index=True)
    role: Mapped[str] = mapped_column(String(20))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    expires_at: Mapped[datetime.datetime] = mapped_column(DateTimeUTC(timezone=True))
    accepted_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    revoked_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True))


class AuthEvent(UUIDKey, TenantBase):
    """Append-only: the clinic's role may insert and read, never change or delete."""

    __tablename__ = "auth_events"

    occurred_at: Mapped[datetime.datetime] = mapped_column(
        DateTimeUTC(timezone=True), default=utcnow, index=True
    )
    event: Mapped[str] = mapped_column(String(40))
    user_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    actor_id: Mapped[uuid.UUID | None]
    email: Mapped[str | None] = mapped_column(String(320))
    ip: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(128))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
