"""Changes a clinic asks for: a plan change (an upgrade applies at once and the quota grows in
the current period; a downgrade at the end of the period), cancellation at the end of the
period and taking it back. When the subscription is on Stripe, Stripe is asked first, and
nothing changes here if it refuses."""

from __future__ import annotations

import math
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.billing.models import LAPSED, Plan, Subscription
from polyclinic.billing.plans import newest_active, unknown_plan
from polyclinic.billing.stripe_billing import StripeBilling
from polyclinic.billing.subscriptions import NO_SUBSCRIPTION, clinic_subscription, move_to_plan
from polyclinic.db.context import TenantInfo
from polyclinic.errors import Conflict, NotFound, Unavailable
from polyclinic.tenancy.models import Tenant


def is_upgrade(current: Plan, new: Plan) -> bool:
    """More appointments, or the same for a higher price. A plan with fewer appointments is
    a downgrade whatever it costs: the quota is never cut in the middle of a period."""
    has, gets = _appointments(current), _appointments(new)
    return gets > has or (gets == has and new.price_minor > current.price_minor)


def _appointments(plan: Plan) -> float:
    return math.inf if plan.appointments_included is None else plan.appointments_included


class SubscriptionChanges:
    """Runs in a platform session: clinics read their subscription but never write it."""

    def __init__(
        self, session: AsyncSession, tenant_id: uuid.UUID, stripe: StripeBilling | None
    ) -> None:
        self.db = session
        self.tenant_id = tenant_id
        self.stripe = stripe

    async def locked(self) -> tuple[Subscription, Plan]:
        found = await clinic_subscription(self.db, self.tenant_id, lock=True)
        if found is None:
            raise NotFound(NO_SUBSCRIPTION)
        return found

    async def change_plan(self, plan_code: str) -> tuple[Subscription, Plan, bool]:
        """(subscription, the plan asked for, whether it applies now)."""
        subscription, current = await self.locked()
        new = (await self.db.execute(newest_active(plan_code))).scalar_one_or_none()
        if new is None:
            raise unknown_plan(plan_code)
        if new.id == current.id:
            raise Conflict(f"The clinic is already on the {new.name} plan")
        now = is_upgrade(current, new)
        if subscription.stripe_subscription_id:
            await self._stripe().change_price(subscription.stripe_subscription_id, new, now=now)
        if now:
            subscription.pending_plan_id = None
            await move_to_plan(self.db, subscription, new)
        else:
            subscription.pending_plan_id = new.id
        await self.db.commit()
        return subscription, new, now

    async def cancel_at_period_end(self, cancel: bool) -> Subscription:
        subscription, _ = await self.locked()
        if subscription.status in LAPSED:
            raise Conflict(f"The subscription is already {subscription.status}")
        if subscription.cancel_at_period_end == cancel:
            raise Conflict(
                "The subscription already ends with this period"
                if cancel
                else "The subscription is not set to end"
            )
        if subscription.stripe_subscription_id:
            await self._stripe().cancel_at_period_end(subscription.stripe_subscription_id, cancel)
        subscription.cancel_at_period_end = cancel
        await self.db.commit()
        return subscription

    async def payment_page(self, clinic: TenantInfo, return_url: str) -> tuple[str, str]:
        """("checkout", url) to start paying, or ("portal", url) to manage a paid
        subscription: card, invoices, plan."""
        stripe = self._stripe("Online payment of subscriptions is not configured here")
        subscription, plan = await self.locked()
        if subscription.pending_plan_id is not None:
            plan = await self.db.get_one(Plan, subscription.pending_plan_id)
        tenant = await self.db.get_one(Tenant, self.tenant_id)
        customer = await stripe.ensure_customer(subscription, clinic, tenant.admin_email)
        paid_on_stripe = subscription.stripe_subscription_id is not None
        trial_end = subscription.trial_end
        await self.db.commit()  # the customer is kept even if the next call fails
        if paid_on_stripe:
            return "portal", await stripe.portal_url(customer, return_url)
        return "checkout", await stripe.checkout_url(customer, trial_end, plan, clinic, return_url)

    def _stripe(
        self, unavailable: str = "This subscription is billed by Stripe, not configured here"
    ) -> StripeBilling:
        if self.stripe is None:
            raise Unavailable(unavailable)
        return self.stripe
