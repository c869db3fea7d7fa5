"""The delivery log for clinic admins: what was sent, what failed and why, and retries."""

from __future__ import annotations

import datetime
import uuid
from typing import Annotated, Literal

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter
from litestar.status_codes import HTTP_200_OK
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.messaging.delivery import list_deliveries, retry
from polyclinic.messaging.delivery_models import Delivery, DeliveryStatus
from polyclinic.web.envelope import Envelope, PagedEnvelope, ok, page
from polyclinic.web.openapi import error_responses
from polyclinic.web.paging import Limit, Offset
from polyclinic.web.state import Runtime

Status = Literal["pending", "sending", "sent", "failed", "not_sent", "unconfirmed"]


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


class DeliveriesController(Controller):
    path = "/messaging/deliveries"
    tags = ["clinic: messaging"]

    @get(
        "/",
        summary="Messages and what became of each, newest first",
        responses=error_responses(400, 401, 403),
        opt={"permission": ("messaging", "read")},
    )
    async def list_deliveries(
        self,
        clinic_db: NamedDependency[AsyncSession],
        status: Annotated[Status | None, QueryParameter()] = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> PagedEnvelope[DeliveryOut]:
        rows, total = await list_deliveries(clinic_db, status, limit, offset)
        return page([delivery_out(d) for d in rows], total=total, limit=limit, offset=offset)

    @post(
        "/{delivery_id:uuid}/retry",
        status_code=HTTP_200_OK,
        summary="Send a failed, not sent or unconfirmed delivery again, now",
        responses=error_responses(400, 401, 403, 404, 409),
        opt={"permission": ("messaging", "manage")},
    )
    async def retry_delivery(
        self,
        delivery_id: FromPath[uuid.UUID],
        clinic_db: NamedDependency[AsyncSession],
        runtime: NamedDependency[Runtime],
    ) -> Envelope[DeliveryOut]:
        delivery = await retry(clinic_db, runtime.settings, delivery_id)
        message = {
            DeliveryStatus.SENT: "Sent",
            DeliveryStatus.FAILED: "The provider refused it again",
            DeliveryStatus.NOT_SENT: f"Not sent: {delivery.reason}",
            DeliveryStatus.UNCONFIRMED: "The provider gave no answer; it may have the message",
            DeliveryStatus.SENDING: "Another worker is sending it",
        }.get(delivery.status, "Queued")
        return ok(delivery_out(delivery), message)
