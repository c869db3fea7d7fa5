"""Patient card payments: the clinic's connected Stripe account, a PaymentIntent per card
booking as a destination charge with the platform's fee, and settling what cancellations and
expired holds leave open (cancelling unpaid intents, refunding paid ones).

Stripe is never called while a booking's rows are locked: a booking commits its hold first,
then asks Stripe; refunds and cancellations run after the change that causes them commits,
and whatever a failed call leaves open stays marked for the next sweep.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Sequence

import stripe
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.config import Settings
from polyclinic.errors import Conflict, FieldError, InvalidInput, Unavailable
from polyclinic.payments.models import Payment, PaymentAccount, PaymentStatus
from polyclinic.scheduling.journal import note_step
from polyclinic.scheduling.models import Appointment, AppointmentStatus, Service
from polyclinic.scheduling.reminders import add_reminders
from polyclinic.stripe_api import stripe_call, stripe_client
from polyclinic.tenancy.context import TenantInfo

logger = logging.getLogger("polyclinic.payments")


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

    @staticmethod
    def check_chargeable(service: Service) -> None:
        if service.price_minor <= 0:
            raise InvalidInput(
                f"{service.name} is free: there is nothing to pay by card",
                [FieldError("paymentMethod", "must be in_clinic for a free service")],
            )

    async def start(
        self, appointment: Appointment, service: Service, account: PaymentAccount
    ) -> tuple[Payment, str]:
        """A PaymentIntent for a committed hold, and its payment row (not committed).
        Returns the payment and the client secret the patient's browser needs."""
        fee = service.price_minor * self.settings.platform_fee_basis_points // 10_000
        intent = await stripe_call(
            self.stripe.v1.payment_intents.create_async(
                params={
                    "amount": service.price_minor,
                    "currency": service.currency.lower(),
                    "application_fee_amount": fee,
                    "transfer_data": {"destination": account.stripe_account_id},
                    "automatic_payment_methods": {"enabled": True},
                    "description": f"{service.name} at {self.clinic.name}",
                    "metadata": {
                        "tenant_id": str(self.clinic.id),
                        "appointment_id": str(appointment.id),
                    },
                },
                options={"idempotency_key": f"appointment-{appointment.id}"},
            )
        )
        payment = Payment(
            appointment_id=appointment.id,
            stripe_payment_intent_id=intent.id,
            amount_minor=service.price_minor,
            currency=service.currency,
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

    async def confirm_paid(self, intent: dict[str, object]) -> Payment | None:
        """`payment_intent.succeeded`: the hold becomes a confirmed appointment, once. If the
        hold had expired meanwhile, the money goes back. Locks the appointment before the
        payment, the order a cancellation takes them in."""
        found = (
            await self.db.execute(
                select(Payment.id, Payment.appointment_id).where(
                    Payment.stripe_payment_intent_id == intent["id"]
                )
            )
        ).first()
        if found is None:
            return None
        appointment = await self.db.get_one(
            Appointment, found.appointment_id, with_for_update=True, populate_existing=True
        )
        payment = await self.db.get_one(
            Payment, found.id, with_for_update=True, populate_existing=True
        )
        if payment.status != PaymentStatus.PENDING:
            return None  # applied before
        if appointment.status == AppointmentStatus.PENDING_PAYMENT:
            payment.status = PaymentStatus.SUCCEEDED
            appointment.status = AppointmentStatus.CONFIRMED
            appointment.hold_expires_at = None
            note_step(self.db, appointment, "confirmed", AppointmentStatus.PENDING_PAYMENT, None)
            await add_reminders(self.db, appointment)
        else:
            payment.status = PaymentStatus.REFUND_PENDING
            logger.warning(
                "clinic %s: payment %s arrived for appointment %s that is %s; refunding",
                self.clinic.id,
                intent["id"],
                appointment.id,
                appointment.status,
            )
        return payment

    async def settle(self, payment_ids: Sequence[uuid.UUID] | None = None) -> int:
        """Cancel the intents of holds that ended unpaid and refund what must be refunded,
        each payment in its own transaction; returns how many were settled. A failure leaves
        that payment open for the next sweep and goes on with the others."""
        if payment_ids is None:
            payment_ids = await self._open()
            await self.db.commit()
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

    async def _open(self) -> list[uuid.UUID]:
        """Refunds due, and intents of holds that will never be paid."""
        return list(
            await self.db.scalars(
                select(Payment.id)
                .join(Appointment, Appointment.id == Payment.appointment_id)
                .where(
                    (Payment.status == PaymentStatus.REFUND_PENDING)
                    | (
                        (Payment.status == PaymentStatus.PENDING)
                        & (Appointment.status == AppointmentStatus.CANCELLED)
                    )
                )
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
        appointment = await self.db.get_one(Appointment, payment.appointment_id)
        if appointment.status != AppointmentStatus.CANCELLED:
            return
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
