"""Stripe webhooks: verified with the stripe SDK, stored once by event id, then applied.

Applying is idempotent (an event is applied once) and order-independent: each subscription
remembers the `created` time of the newest Stripe event applied to it, and an older event
arriving late changes nothing. So the same events in any order, any number of times, leave
the subscription in the same state.
"""

from __future__ import annotations

import datetime
import logging
import uuid
from typing import Any, Protocol

import stripe
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from polyclinic.billing.lifecycle import set_status
from polyclinic.billing.models import (
    SETTLED_BY_PAYMENT,
    Plan,
    StripeEvent,
    Subscription,
    SubscriptionStatus,
)
from polyclinic.billing.subscriptions import move_to_plan
from polyclinic.db.base import utcnow
from polyclinic.db.session import platform_session
from polyclinic.errors import DomainError

logger = logging.getLogger("polyclinic.billing")

HANDLED = {
    "checkout.session.completed",
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "invoice.paid",
    "invoice.payment_failed",
}
STATUSES = {
    "trialing": SubscriptionStatus.TRIALING,
    "active": SubscriptionStatus.ACTIVE,
    "past_due": SubscriptionStatus.PAST_DUE,
    "unpaid": SubscriptionStatus.UNPAID,
    "canceled": SubscriptionStatus.CANCELED,
    "paused": SubscriptionStatus.PAUSED,
    "incomplete": SubscriptionStatus.PAST_DUE,
    "incomplete_expired": SubscriptionStatus.CANCELED,
}


class BadWebhook(DomainError):
    status_code = 400


def verified_event(payload: bytes, signature: str | None, secret: str | None) -> dict[str, Any]:
    """The event, if Stripe signed this exact body with our endpoint's secret."""
    if not secret:
        raise BadWebhook("Stripe webhooks are not configured here")
    try:
        event = stripe.Webhook.construct_event(payload, signature, secret)
    except (ValueError, stripe.SignatureVerificationError):
        raise BadWebhook("The Stripe signature does not match this body") from None
    return event.to_dict()


async def store(session: AsyncSession, event: dict[str, Any]) -> bool:
    """Keep the event once; False when it was already received."""
    stored = await session.scalar(
        insert(StripeEvent)
        .values(
            id=event["id"],
            type=event["type"],
            created=int(event["created"]),
            payload=event,
            received_at=utcnow(),
        )
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(StripeEvent.id)
    )
    await session.commit()
    return stored is not None


class OtherEvents(Protocol):
    """Events another domain applies (patient payments); it must be idempotent itself."""

    kinds: frozenset[str]

    async def __call__(self, kind: str, obj: dict[str, Any]) -> None: ...


async def apply_pending(
    engine: AsyncEngine, event_id: str | None = None, others: OtherEvents | None = None
) -> int:
    """Apply stored events not applied yet (one, or all); returns how many were applied."""
    applied = 0
    async with platform_session(engine) as session:
        query = select(StripeEvent.id).where(StripeEvent.applied_at.is_(None))
        if event_id is not None:
            query = query.where(StripeEvent.id == event_id)
        pending = (await session.scalars(query.order_by(StripeEvent.created))).all()
        for one in pending:
            try:
                applied += await _apply_one(session, one, others)
            except Exception:
                # One event that cannot be applied must not hold back the others; it stays
                # pending for the next housekeeping, and the log says which it is.
                await session.rollback()
                logger.exception("stripe event %s could not be applied", one)
    return applied


async def _apply_one(session: AsyncSession, event_id: str, others: OtherEvents | None) -> bool:
    event = await session.get(StripeEvent, event_id, with_for_update=True)
    if event is None or event.applied_at is not None:
        await session.rollback()
        return False
    if event.type in HANDLED:
        await _apply(session, event.type, event.created, event.payload["data"]["object"])
    elif others is not None and event.type in others.kinds:
        await others(event.type, event.payload["data"]["object"])
    event.applied_at = utcnow()
    await session.commit()
    return True


async def _apply(session: AsyncSession, kind: str, created: int, obj: dict[str, Any]) -> None:
    if kind == "checkout.session.completed":
        await _link_checkout(session, obj)
        return
    is_subscription = kind.startswith("customer.subscription")
    stripe_subscription = obj["id"] if is_subscription else _invoice_subscription(obj)
    subscription = await _subscription(session, stripe_subscription, obj)
    if subscription is None:
        logger.warning("stripe %s for an unknown subscription %s", kind, stripe_subscription)
        return
    if subscription.stripe_state_at is not None and created < subscription.stripe_state_at:
        return  # a newer subscription state was applied already
    if is_subscription:
        # Only subscription events carry the whole state, so only they move the clock: an
        # invoice event applied first cannot make a slightly older state change be dropped.
        subscription.stripe_state_at = created
        await _apply_subscription(session, subscription, kind, obj, created)
    elif kind == "invoice.paid" and subscription.status in SETTLED_BY_PAYMENT:
        # Trials get a paid zero invoice and stay trials; a canceled subscription stays so.
        set_status(subscription, SubscriptionStatus.ACTIVE, _at(created))
    elif kind == "invoice.payment_failed":
        set_status(subscription, SubscriptionStatus.PAST_DUE, _at(created))


async def _apply_subscription(
    session: AsyncSession, subscription: Subscription, kind: str, obj: dict[str, Any], created: int
) -> None:
    subscription.stripe_subscription_id = obj["id"]
    subscription.stripe_customer_id = obj.get("customer") or subscription.stripe_customer_id
    status = "canceled" if kind.endswith(".deleted") else obj.get("status", "active")
    set_status(subscription, STATUSES.get(status, SubscriptionStatus.PAST_DUE), _at(created))
    subscription.cancel_at_period_end = bool(obj.get("cancel_at_period_end"))
    item = (obj.get("items", {}).get("data") or [{}])[0]
    start = obj.get("current_period_start") or item.get("current_period_start")
    end = obj.get("current_period_end") or item.get("current_period_end")
    new_period = bool(start) and _at(start) > subscription.current_period_start
    if start and end:
        subscription.current_period_start, subscription.current_period_end = _at(start), _at(end)
    price = (item.get("price") or {}).get("id")
    plan = await _plan_for_price(session, price, subscription) if price else None
    if plan is None:
        return
    if plan.id == subscription.pending_plan_id and not new_period:
        return  # a downgrade Stripe bills from the renewal: the clinic keeps its plan till then
    if new_period:
        subscription.pending_plan_id = None
    if plan.id != subscription.plan_id:
        await move_to_plan(session, subscription, plan)


async def _plan_for_price(
    session: AsyncSession, price: str, subscription: Subscription
) -> Plan | None:
    """The plan version behind a Stripe price: the clinic's current or pending version when
    it carries that price, else the newest."""
    plans = (
        await session.scalars(
            select(Plan).where(Plan.stripe_price_id == price).order_by(Plan.version.desc())
        )
    ).all()
    for plan in plans:
        if plan.id in (subscription.plan_id, subscription.pending_plan_id):
            return plan
    return plans[0] if plans else None


async def _link_checkout(session: AsyncSession, obj: dict[str, Any]) -> None:
    """Checkout tells which clinic (client_reference_id) got which customer and subscription."""
    try:
        tenant_id = uuid.UUID(str(obj.get("client_reference_id")))
    except ValueError:
        return
    subscription = await _of_clinic(session, tenant_id)
    if subscription is not None:
        subscription.stripe_customer_id = obj.get("customer") or subscription.stripe_customer_id
        subscription.stripe_subscription_id = (
            obj.get("subscription") or subscription.stripe_subscription_id
        )


def _invoice_subscription(invoice: dict[str, Any]) -> str | None:
    """The subscription an invoice bills: a top-level field in older API versions, under
    `parent.subscription_details` in newer ones; None for a one-off invoice."""
    details = (invoice.get("parent") or {}).get("subscription_details") or {}
    found = invoice.get("subscription") or details.get("subscription")
    return found if isinstance(found, str) else None


async def _subscription(
    session: AsyncSession, stripe_subscription: str | None, obj: dict[str, Any]
) -> Subscription | None:
    """Ours, by Stripe subscription id or else by the clinic id in the metadata; None when
    the event names neither (never a match on an empty id)."""
    if stripe_subscription:
        found = await session.scalar(
            select(Subscription)
            .where(Subscription.stripe_subscription_id == stripe_subscription)
            .with_for_update()
        )
        if found is not None:
            return found
    try:
        tenant_id = uuid.UUID(str((obj.get("metadata") or {})["tenant_id"]))
    except (KeyError, ValueError):
        return None
    return await _of_clinic(session, tenant_id)


async def _of_clinic(session: AsyncSession, tenant_id: uuid.UUID) -> Subscription | None:
    return await session.scalar(
        select(Subscription).where(Subscription.tenant_id == tenant_id).with_for_update()
    )


def _at(epoch: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(int(epoch), datetime.UTC)
