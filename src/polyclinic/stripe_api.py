"""The stripe SDK client both Stripe Billing (the clinic pays the platform) and patient card
payments (through the clinic's connected account) use.

Every call goes to `STRIPE_API_BASE` when set (a local stand-in in tests and development).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TypeVar

import stripe

from polyclinic.config import Settings
from polyclinic.errors import UpstreamFailed

T = TypeVar("T")


def stripe_client(settings: Settings, api_key: str) -> stripe.StripeClient:
    base = {"api": settings.stripe_api_base} if settings.stripe_api_base else None
    return stripe.StripeClient(
        api_key,
        base_addresses=base,  # type: ignore[arg-type]
        http_client=stripe.HTTPXClient(allow_sync_methods=False),
        max_network_retries=2,
    )


async def stripe_call(request: Awaitable[T]) -> T:
    """Await a Stripe call; a refusal or an unreachable Stripe becomes a 502 saying why."""
    try:
        return await request
    except stripe.StripeError as exc:
        detail = exc.user_message or "no answer"
        raise UpstreamFailed(f"Stripe did not accept the request: {detail}") from None
