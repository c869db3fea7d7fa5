"""Patient card payments: the clinic's connected Stripe account, a PaymentIntent per charge
(a card booking) as a destination charge with the platform's fee, and settling what is left
open (cancelling unpaid intents, refunding paid ones). What a payment pays for is the caller's
business: scheduling decides which payments to start, confirm and settle.

Stripe is never called while a booking's rows are locked: a booking commits its hold first,
then asks Stripe; refunds and cancellations run after the change that causes them commits,
and whatever a failed call leaves open stays marked for the next sweep.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import stripe
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.config import Settings
from polyclinic.db.context import TenantInfo
from polyclinic.errors import Conflict, FieldError, Unavailable
from polyclinic.payments.models import Payment, PaymentAccount, PaymentStatus
from polyclinic.stripe_api import stripe_call, stripe_client

logger = logging.getLogger("polyclinic.payments")


@dataclass(frozen=True)
class Charge:
    """What one PaymentIntent asks the patient to pay, for which appointment."""

    appointment_id: uuid.UUID
    amount_minor: int
    currency: str
    description: str


class CardPayments:
    def __init__(self, session: AsyncSession, clinic: TenantInfo, settings: Settings) -> None:
        self.db = session
        self.clinic = clinic
        self.settings = settings

    @functools.cached_property
    def stripe(self) -> stripe.StripeClient:
        if not self.settings.stripe_api_key:
            raise Unavailable("Card payments are not configured here (STRIPE_API_KEY is not set)")
        return stripe_client(self.settings, self.settings.stripe_api_key)

    async def account(self) -> PaymentAccount | None:
        return await self.db.get(PaymentAccount, 1)

    async def connect(self, return_url: str) -> tuple[PaymentAccount, str]:
        """The clinic's connected account (created once) and a link to its onboarding."""
        account = await self.account()
        if account is None:
            created = await stripe_call(
                self.stripe.v1.accounts.create_async(
                    params={
                        "type": "express",
                        "metadata": {"tenant_id": str(self.clinic.id)},
                        "business_profile": {"name": self.clinic.name},
                        "capabilities": {
                            "card_payments": {"requested": True},
                            "transfers": {"requested": True},
                        },
                    },
                    options={"idempotency_key": f"connect-{self.clinic.id}"},
                )
            )
            account = PaymentAccount(
                id=1, stripe_account_id=created.id, charges_enabled=created.charges_enabled
            )
            self.db.add(account)
            await self.db.commit()
        link = await stripe_call(
            self.stripe.v1.account_links.create_async(
                params={
                    "account": account.stripe_account_id,
                    "refresh_url": return_url,
                    "return_url": return_url,
                    "type": "account_onboarding",
                }
            )
        )
        return account, str(link.url)

    async def ready_account(self) -> PaymentAccount:
        account = await self.account()
        if account is None or not account.charges_enabled:
            raise Conflict(
                "This clinic does not take card payments yet; choose to pay in clinic",
                [FieldError("paymentMethod", "card is not available at this clinic")],
            )
        return account

    async def start(self, charge: Charge, account: PaymentAccount) -> tuple[Payment, str]:
        """A PaymentIntent for a committed hold, and its payment row (not committed).
        Returns the payment and the client secret the patient's browser needs."""
        fee = charge.amount_minor * self.settings.platform_fee_basis_points // 10_000
        intent = await stripe_call(
            self.stripe.v1.payment_intents.create_async(
                params={
                    "amount": charge.amount_minor,
                    "currency": charge.currency.lower(),
                    "application_fee_amount": fee,
                    "transfer_data": {"destination": account.stripe_account_id},
                    "automatic_payment_methods": {"enabled": True},
                    "description": f"{charge.description} at {self.clinic.name}",
                    "metadata": {
                        "tenant_id": str(self.clinic.id),
                        "appointment_id": str(charge.appointment_id),
                    },
                },
                options={"idempotency_key": f"appointment-{charge.appointment_id}"},
            )
        )
        payment = Payment(
            appointment_id=charge.appointment_id,
            stripe_payment_intent_id=intent.id,
            amount_minor=charge.amount_minor,
            currency=charge.currency,
            platform_fee_minor=fee,
            status=PaymentStatus.PENDING,
            refunded_minor=0,
        )
        self.db.add(payment)
        return payment, str(intent.client_secret)

    async def is_recorded(self, intent_id: str) -> bool:
        found = await self.db.scalar(
            select(Payment.id).where(Payment.stripe_payment_intent_id == intent_id)
        )
        return found is not None

    async def for_intent(self, intent_id: str) -> tuple[uuid.UUID, uuid.UUID] | None:
        """The payment recorded for a PaymentIntent and the appointment it pays for."""
        found = (
            await self.db.execute(
                select(Payment.id, Payment.appointment_id).where(
                    Payment.stripe_payment_intent_id == intent_id
                )
            )
        ).first()
        return (found.id, found.appointment_id) if found is not None else None

    async def locked(self, payment_id: uuid.UUID) -> Payment:
        return await self.db.get_one(
            Payment, payment_id, with_for_update=True, populate_existing=True
        )

    async def settle(self, payment_ids: Sequence[uuid.UUID]) -> int:
        """Refund the payments marked for a refund and cancel the intents of the pending ones,
        each payment in its own transaction; returns how many were settled. The caller passes
        only pending payments whose appointment ended unpaid (cancellation is final). A
        failure leaves that payment open for the next sweep and goes on with the others."""
        settled = 0
        for payment_id in payment_ids:
            try:
                payment = await self.db.get_one(
                    Payment, payment_id, with_for_update=True, populate_existing=True
                )
                if payment.status == PaymentStatus.REFUND_PENDING:
                    await self._refund(payment)
                elif payment.status == PaymentStatus.PENDING:
                    await self._cancel_intent(payment)
                else:
                    await self.db.rollback()
                    continue
                await self.db.commit()
            except Exception:
                await self.db.rollback()
                logger.exception(
                    "clinic %s: payment %s could not be settled yet", self.clinic.id, payment_id
                )
                continue
            settled += 1
        return settled

    async def refund_unrecorded(self, intent_id: str) -> None:
        """Money for an intent no booking here knows (its hold was withdrawn before the
        intent could be recorded) goes straight back."""
        logger.warning("clinic %s: refunding unrecorded payment %s", self.clinic.id, intent_id)
        await stripe_call(
            self.stripe.v1.refunds.create_async(
                params={
                    "payment_intent": intent_id,
                    "reverse_transfer": True,
                    "refund_application_fee": True,
                },
                options={"idempotency_key": f"refund-unrecorded-{intent_id}"},
            )
        )

    async def _refund(self, payment: Payment) -> None:
        refund = await stripe_call(
            self.stripe.v1.refunds.create_async(
                params={
                    "payment_intent": payment.stripe_payment_intent_id,
                    "reverse_transfer": True,
                    "refund_application_fee": True,
                    "metadata": {"appointment_id": str(payment.appointment_id)},
                },
                options={"idempotency_key": f"refund-{payment.id}"},
            )
        )
        payment.status = PaymentStatus.REFUNDED
        payment.refunded_minor = int(refund.amount)
        payment.stripe_refund_id = refund.id

    async def _cancel_intent(self, payment: Payment) -> None:
        intent = await stripe_call(
            self.stripe.v1.payment_intents.retrieve_async(payment.stripe_payment_intent_id)
        )
        if intent.status == "succeeded":
            payment.status = PaymentStatus.REFUND_PENDING  # paid at the last moment
            await self._refund(payment)
            return
        if intent.status != "canceled":
            await stripe_call(
                self.stripe.v1.payment_intents.cancel_async(
                    payment.stripe_payment_intent_id,
                    params={"cancellation_reason": "abandoned"},
                )
            )
        payment.status = PaymentStatus.CANCELED
