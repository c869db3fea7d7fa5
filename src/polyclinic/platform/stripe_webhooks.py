"""`POST /webhooks/stripe` on the platform host."""

from __future__ import annotations

from litestar import Controller, Request, Response, post
from litestar.background_tasks import BackgroundTask
from litestar.di import NamedDependency
from litestar.status_codes import HTTP_200_OK
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.billing.stripe_events import store, verified_event
from polyclinic.platform.jobs import apply_event
from polyclinic.web.envelope import Envelope, ok
from polyclinic.web.openapi import error_responses
from polyclinic.web.state import Runtime
from polyclinic.worker.jobs import enqueue


class StripeWebhookController(Controller):
    path = "/webhooks/stripe"
    tags = ["webhooks"]

    @post(
        "/",
        status_code=HTTP_200_OK,
        summary="Stripe events: verified, stored once by id, applied by a job",
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
        answer = ok({"received": True, "new": new}, "Event received")
        if runtime.broker is not None:
            enqueue(runtime.broker, "apply_stripe_event", event["id"])
            return Response(answer)
        # No job broker in this process (no Redis, no in-process workers): apply after the
        # answer; `billing housekeeping` applies whatever a crash left behind.
        work = BackgroundTask(
            apply_event, runtime.engine, runtime.redis, runtime.settings, event["id"]
        )
        return Response(answer, background=work)
