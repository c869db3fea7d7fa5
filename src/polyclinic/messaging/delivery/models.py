"""The delivery log: one row per message to one recipient on one channel, for one outbox
event. The row is made before anything is sent, so a message is never made twice, and its
id is the idempotency key of every attempt."""

from __future__ import annotations

import datetime
import uuid

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from polyclinic.db.base import TenantBase, Timestamps, UUIDKey
from polyclinic.messaging.channels.models import CHANNEL_VALUES


class DeliveryStatus:
    PENDING = "pending"
    # Claimed by a worker that is calling the provider now.
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    NOT_SENT = "not_sent"
    # The worker stopped during the send: the provider may have the message, so it is not
    # sent again unless someone retries it.
    UNCONFIRMED = "unconfirmed"


DELIVERY_STATUSES = (
    DeliveryStatus.PENDING,
    DeliveryStatus.SENDING,
    DeliveryStatus.SENT,
    DeliveryStatus.FAILED,
    DeliveryStatus.NOT_SENT,
    DeliveryStatus.UNCONFIRMED,
)
# The longest provider error and reason a row keeps.
ERROR_LENGTH = 1000
REASON_LENGTH = 300
STATUS_VALUES = ", ".join(f"'{status}'" for status in DELIVERY_STATUSES)


class Delivery(UUIDKey, Timestamps, TenantBase):
    __tablename__ = "deliveries"
    __table_args__ = (
        CheckConstraint(f"channel IN ({CHANNEL_VALUES})", name="channel"),
        CheckConstraint(f"status IN ({STATUS_VALUES})", name="status"),
        UniqueConstraint(
            "outbox_event_id",
            "recipient_id",
            "channel",
            name="uq_deliveries_event_recipient_channel",
        ),
        Index("ix_deliveries_status_created_at", "status", "created_at"),
    )

    outbox_event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("outbox.id"))
    # A template kind, or `quota_threshold` (a fixed text to the clinic's admins).
    kind: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(20))
    recipient_id: Mapped[uuid.UUID] = mapped_column()
    address: Mapped[str] = mapped_column(String(320))
    provider: Mapped[str | None] = mapped_column(String(40))
    provider_message_id: Mapped[str | None] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(12))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # The provider's reason (secrets masked), never a secret.
    last_error: Mapped[str | None] = mapped_column(String(ERROR_LENGTH))
    # Why a message was not sent (no provider for the channel).
    reason: Mapped[str | None] = mapped_column(String(REASON_LENGTH))
    sent_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    # When the current claim was taken (status `sending`).
    sending_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
