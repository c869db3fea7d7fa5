"""Clinic users and their one-time tokens (email confirmation, password reset).

They live in the clinic's schema: the same email in two clinics is two accounts."""

from __future__ import annotations

import datetime
import uuid

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import BigInteger, Boolean, CheckConstraint, Date, ForeignKey, String, Text, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from polyclinic.db.base import TenantBase, Timestamps, UUIDKey, utcnow
from polyclinic.identity.permissions.roles import Role

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

    # None for a patient registered at the desk who has not claimed an account yet.
    email: Mapped[str | None] = mapped_column(String(320), unique=True)
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
