"""A clinic's own wording of a message kind, per channel and locale (clinic schema)."""

from __future__ import annotations

from sqlalchemy import CheckConstraint, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from polyclinic.db.base import TenantBase, Timestamps, UUIDKey


class MessageTemplate(UUIDKey, Timestamps, TenantBase):
    __tablename__ = "message_templates"
    __table_args__ = (
        UniqueConstraint(
            "kind", "channel", "locale", name="uq_message_templates_kind_channel_locale"
        ),
        CheckConstraint("channel IN ('email', 'sms', 'whatsapp')", name="channel"),
    )

    kind: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(10))
    locale: Mapped[str] = mapped_column(String(12))
    subject: Mapped[str | None] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
