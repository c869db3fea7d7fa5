"""Tables of a clinic's messaging channels: the provider and settings of each channel, and
its provider credentials, sealed under the clinic's data key (clinic schema)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, LargeBinary, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from polyclinic.db.base import TenantBase, Timestamps, UUIDKey

CHANNELS = ("email", "sms", "whatsapp")
CHANNEL_VALUES = ", ".join(f"'{channel}'" for channel in CHANNELS)


class ChannelSetting(UUIDKey, Timestamps, TenantBase):
    """The provider of one channel and its non-secret settings (camelCase, as the API takes
    them)."""

    __tablename__ = "channel_settings"
    __table_args__ = (CheckConstraint(f"channel IN ({CHANNEL_VALUES})", name="channel"),)

    channel: Mapped[str] = mapped_column(String(20), unique=True)
    provider: Mapped[str] = mapped_column(String(40))
    settings: Mapped[dict[str, Any]] = mapped_column(JSONB)


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
