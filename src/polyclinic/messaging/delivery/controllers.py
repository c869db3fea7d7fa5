"""The delivery log for clinic admins: what was sent, what failed and why, and retries."""

from __future__ import annotations

import uuid
from typing import Annotated

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter
from litestar.status_codes import HTTP_200_OK
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.messaging.delivery.models import DeliveryStatus
from polyclinic.messaging.delivery.schemas import DeliveryOut, Status, delivery_out
from polyclinic.messaging.delivery.services import list_deliveries, retry
from polyclinic.web.envelope import Envelope, PagedEnvelope, ok, page
from polyclinic.web.openapi import error_responses
from polyclinic.web.paging import Limit, Offset
from polyclinic.web.state import Runtime


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
        description="402 when it would go through the platform's text messages while the "
        "clinic's subscription is not in good standing; the delivery is left as it was.",
        responses=error_responses(400, 401, 402, 403, 404, 409),
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
