"""Stripe Billing through the stripe SDK: a customer per clinic, Checkout to start a paid
subscription on the plan's price, the customer portal, plan changes and cancellation.

Every call goes to `STRIPE_API_BASE` when set (a local stand-in in tests and development).
The subscription's state comes back through webhooks; these calls only ask for changes.
"""

from __future__ import annotations

import datetime
from typing import Any

from polyclinic.billing.models import Plan, Subscription
from polyclinic.config import Settings
from polyclinic.db.base import utcnow
from polyclinic.db.context import TenantInfo
from polyclinic.errors import InvalidInput, UpstreamFailed
from polyclinic.stripe_api import stripe_call, stripe_client


def stripe_billing(settings: Settings) -> StripeBilling | None:
    """The Stripe client, when Stripe Billing is configured."""
    return StripeBilling(settings, settings.stripe_api_key) if settings.stripe_api_key else None


class StripeBilling:
    def __init__(self, settings: Settings, api_key: str) -> None:
        self.client = stripe_client(settings, api_key)

    async def ensure_customer(
        self, subscription: Subscription, clinic: TenantInfo, email: str
    ) -> str:
        """The clinic's Stripe customer, created once (the idempotency key makes a retried
        first call return the same customer)."""
        if subscription.stripe_customer_id:
            return subscription.stripe_customer_id
        customer = await self._call(
            self.client.v1.customers.create_async(
                params={
                    "name": clinic.name,
                    "email": email,
                    "metadata": {"tenant_id": str(clinic.id), "subdomain": clinic.slug},
                },
                options={"idempotency_key": f"customer-{clinic.id}"},
            )
        )
        subscription.stripe_customer_id = customer.id
        return customer.id

    async def checkout_url(
        self,
        customer_id: str,
        trial_end: datetime.datetime | None,
        plan: Plan,
        clinic: TenantInfo,
        return_url: str,
    ) -> str:
        """A Checkout session that starts the paid subscription on the plan's price; the
        trial days left carry over (Stripe wants a trial end at least two days ahead)."""
        price = self._price(plan)
        subscription_data: dict[str, Any] = {"metadata": {"tenant_id": str(clinic.id)}}
        if trial_end is not None and trial_end > utcnow() + datetime.timedelta(days=2):
            subscription_data["trial_end"] = int(trial_end.timestamp())
        session = await self._call(
            self.client.v1.checkout.sessions.create_async(
                params={
                    "mode": "subscription",
                    "customer": customer_id,
                    "client_reference_id": str(clinic.id),
                    "line_items": [{"price": price, "quantity": 1}],
                    "subscription_data": subscription_data,  # type: ignore[typeddict-item]
                    "success_url": return_url,
                    "cancel_url": return_url,
                },
            )
        )
        return str(session.url)

    async def portal_url(self, customer_id: str, return_url: str) -> str:
        session = await self._call(
            self.client.v1.billing_portal.sessions.create_async(
                params={"customer": customer_id, "return_url": return_url}
            )
        )
        return str(session.url)

    async def change_price(self, stripe_subscription_id: str, plan: Plan, *, now: bool) -> None:
        """Move the subscription to the plan's price: prorated at once for an upgrade;
        without proration for a downgrade, so the new price is first billed at renewal."""
        price = self._price(plan)
        current = await self._call(
            self.client.v1.subscriptions.retrieve_async(stripe_subscription_id)
        )
        item_id = current["items"]["data"][0]["id"]
        await self._call(
            self.client.v1.subscriptions.update_async(
                stripe_subscription_id,
                params={
                    "items": [{"id": item_id, "price": price}],
                    "proration_behavior": "always_invoice" if now else "none",
                    "metadata": {"plan_code": plan.code},
                },
            )
        )

    async def cancel_at_period_end(self, stripe_subscription_id: str, cancel: bool) -> None:
        await self._call(
            self.client.v1.subscriptions.update_async(
                stripe_subscription_id, params={"cancel_at_period_end": cancel}
            )
        )

    async def cancel_now(self, stripe_subscription_id: str) -> None:
        """End the subscription at once: nothing more is billed. One Stripe has already
        ended counts as ended, so a retry after a lost answer succeeds."""
        try:
            await self._call(self.client.v1.subscriptions.cancel_async(stripe_subscription_id))
        except UpstreamFailed as refused:
            try:
                current = await self._call(
                    self.client.v1.subscriptions.retrieve_async(stripe_subscription_id)
                )
            except UpstreamFailed:
                raise refused from None
            if current["status"] != "canceled":
                raise refused from None

    @staticmethod
    def _price(plan: Plan) -> str:
        if not plan.stripe_price_id:
            raise InvalidInput(f"The {plan.name} plan cannot be paid online yet (no Stripe price)")
        return plan.stripe_price_id

    @staticmethod
    async def _call(request: Any) -> Any:
        return await stripe_call(request)
