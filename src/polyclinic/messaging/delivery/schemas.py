"""The delivery log for clinic admins: what was sent, what failed and why, and retries."""

import datetime
import uuid
from typing import Literal

import msgspec

from polyclinic.messaging.delivery.models import Delivery
from polyclinic.web.openapi import published_as

Status = Literal["pending", "sending", "sent", "failed", "not_sent", "unconfirmed"]


@published_as("polyclinic.messaging.delivery_controllers")
class DeliveryOut(msgspec.Struct, rename="camel"):
    id: uuid.UUID
    outbox_event_id: uuid.UUID
    kind: str
    channel: str
    recipient_id: uuid.UUID
    address: str
    provider: str | None
    provider_message_id: str | None
    status: Status
    attempts: int
    last_error: str | None
    reason: str | None
    created_at: datetime.datetime
    updated_at: datetime.datetime
    sent_at: datetime.datetime | None
    # When a worker took it to send (for `sending` and `unconfirmed`).
    sending_at: datetime.datetime | None


def delivery_out(d: Delivery) -> DeliveryOut:
    return DeliveryOut(
        id=d.id,
        outbox_event_id=d.outbox_event_id,
        kind=d.kind,
        channel=d.channel,
        recipient_id=d.recipient_id,
        address=d.address,
        provider=d.provider,
        provider_message_id=d.provider_message_id,
        status=d.status,
        attempts=d.attempts,
        last_error=d.last_error,
        reason=d.reason,
        created_at=d.created_at,
        updated_at=d.updated_at,
        sent_at=d.sent_at,
        sending_at=d.sending_at,
    )
