"""`POST /webhooks/stripe` on the platform host."""

from __future__ import annotations

from litestar import Controller, Request, Response, post
from litestar.background_tasks import BackgroundTask
from litestar.di import NamedDependency
from litestar.status_codes import HTTP_200_OK
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.billing.stripe_events import apply_pending, store, verified_event
from polyclinic.web.envelope import Envelope, ok
from polyclinic.web.openapi import error_responses
from polyclinic.web.state import Runtime


class StripeWebhookController(Controller):
    path = "/webhooks/stripe"
    tags = ["webhooks"]

    @post(
        "/",
        status_code=HTTP_200_OK,
        summary="Stripe events: verified, stored once by id, applied after the answer",
        responses=error_responses(400),
    )
    async def receive(
        self,
        request: Request,
        platform_db: NamedDependency[AsyncSession],
        runtime: NamedDependency[Runtime],
    ) -> Response[Envelope[dict[str, bool]]]:
        event = verified_event(
            await request.body(),
            request.headers.get("stripe-signature"),
            runtime.settings.stripe_webhook_secret,
        )
        new = await store(platform_db, event)
        work = BackgroundTask(apply_pending, runtime.engine, event["id"])
        return Response(ok({"received": True, "new": new}, "Event received"), background=work)
