"""Tables of messaging keys: each clinic's wrapped data keys and sealed channel secrets (in
the clinic's schema), and the platform's record of the master key in use."""

from __future__ import annotations

import datetime

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from polyclinic.db.base import SharedBase, TenantBase, Timestamps, UUIDKey
from polyclinic.tenancy.models import PLATFORM_SCHEMA

CHANNELS = ("email", "sms", "whatsapp")
CHANNEL_VALUES = ", ".join(f"'{channel}'" for channel in CHANNELS)


class DataKey(TenantBase):
    """One version of the clinic's data key, wrapped by a master key; the highest version is
    the one new secrets are sealed with, older ones still open what was sealed under them."""

    __tablename__ = "data_keys"
    __table_args__ = (CheckConstraint("version >= 1", name="version_positive"),)

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    # `env:<fingerprint>` or `kms:<key id>`: which master key wrapped it.
    master_key_id: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime.datetime] = mapped_column(DateTimeUTC(timezone=True))
    rewrapped_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True))


class ChannelSecret(UUIDKey, Timestamps, TenantBase):
    """A provider credential of one channel (an SMTP password, an API token), sealed."""

    __tablename__ = "channel_secrets"
    __table_args__ = (
        CheckConstraint(f"channel IN ({CHANNEL_VALUES})", name="channel"),
        # Named here: the default name would mention only the first column.
        UniqueConstraint(
            "channel", "provider", "name", name="uq_channel_secrets_channel_provider_name"
        ),
    )

    channel: Mapped[str] = mapped_column(String(20))
    provider: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(60))
    key_version: Mapped[int] = mapped_column(ForeignKey("data_keys.version"), index=True)
    blob: Mapped[bytes] = mapped_column(LargeBinary)


class MasterKeyCheck(SharedBase):
    """A value wrapped by the master key in use, so a process started with another key
    stops at start-up instead of at its first send."""

    __tablename__ = "master_key_check"
    __table_args__ = (
        CheckConstraint("id = 1", name="single_row"),
        {"schema": PLATFORM_SCHEMA},
    )

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    master_key_id: Mapped[str] = mapped_column(String(300))
    check_blob: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime.datetime] = mapped_column(DateTimeUTC(timezone=True))
    updated_at: Mapped[datetime.datetime] = mapped_column(DateTimeUTC(timezone=True))
