"""Appointments paid by card: what a card booking charges, a paid hold becoming a confirmed
appointment (once), the payments that cancellations and expired holds leave open, and the
Stripe events of the clinics' connected accounts."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from polyclinic.config import Settings
from polyclinic.db.context import TenantInfo, in_clinic
from polyclinic.db.session import clinic_session
from polyclinic.errors import FieldError, InvalidInput
from polyclinic.payments.cards import CardPayments, Charge
from polyclinic.payments.models import Payment, PaymentStatus
from polyclinic.scheduling.appointments.journal import note_step
from polyclinic.scheduling.appointments.models import Appointment, AppointmentStatus
from polyclinic.scheduling.appointments.reminders import add_reminders
from polyclinic.scheduling.setup.models import Service
from polyclinic.tenancy.models import TenantStatus
from polyclinic.tenancy.resolver import clinic_by_id

logger = logging.getLogger("polyclinic.payments")

PAYMENT_EVENTS = frozenset({"account.updated", "payment_intent.succeeded"})


def check_chargeable(service: Service) -> None:
    if service.price_minor <= 0:
        raise InvalidInput(
            f"{service.name} is free: there is nothing to pay by card",
            [FieldError("paymentMethod", "must be in_clinic for a free service")],
        )


def charge_for(appointment: Appointment, service: Service) -> Charge:
    return Charge(appointment.id, service.price_minor, service.currency, service.name)


async def confirm_paid(
    db: AsyncSession, cards: CardPayments, intent: dict[str, Any]
) -> Payment | None:
    """`payment_intent.succeeded`: the hold becomes a confirmed appointment, once. If the
    hold had expired meanwhile, the money goes back. Locks the appointment before the
    payment, the order a cancellation takes them in."""
    found = await cards.for_intent(str(intent["id"]))
    if found is None:
        return None
    payment_id, appointment_id = found
    appointment = await db.get_one(
        Appointment, appointment_id, with_for_update=True, populate_existing=True
    )
    payment = await cards.locked(payment_id)
    if payment.status != PaymentStatus.PENDING:
        return None  # applied before
    if appointment.status == AppointmentStatus.PENDING_PAYMENT:
        payment.status = PaymentStatus.SUCCEEDED
        appointment.status = AppointmentStatus.CONFIRMED
        appointment.hold_expires_at = None
        note_step(db, appointment, "confirmed", AppointmentStatus.PENDING_PAYMENT, None)
        await add_reminders(db, appointment)
    else:
        payment.status = PaymentStatus.REFUND_PENDING
        logger.warning(
            "clinic %s: payment %s arrived for appointment %s that is %s; refunding",
            cards.clinic.id,
            intent["id"],
            appointment.id,
            appointment.status,
        )
    return payment


async def open_payments(db: AsyncSession) -> list[uuid.UUID]:
    """Refunds due, and intents of holds that will never be paid."""
    return list(
        await db.scalars(
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


async def settle_open(db: AsyncSession, cards: CardPayments) -> int:
    """The sweep: every payment left open in this clinic, settled."""
    payment_ids = await open_payments(db)
    await db.commit()
    return await cards.settle(payment_ids)


class CardPaymentEvents:
    """The handler the Stripe event applier calls for `PAYMENT_EVENTS`."""

    kinds = PAYMENT_EVENTS

    def __init__(self, engine: AsyncEngine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings

    async def __call__(self, kind: str, obj: dict[str, Any]) -> None:
        clinic = await self._clinic(obj)
        if clinic is None:
            logger.warning("stripe %s %s names no clinic of ours", kind, obj.get("id"))
            return
        with in_clinic(clinic):
            await self._apply(kind, obj, clinic)

    async def _apply(self, kind: str, obj: dict[str, Any], clinic: TenantInfo) -> None:
        async with clinic_session(self.engine, clinic) as session:
            cards = CardPayments(session, clinic, self.settings)
            if kind == "account.updated":
                account = await cards.account()
                if account is not None and account.stripe_account_id == obj["id"]:
                    account.charges_enabled = bool(obj.get("charges_enabled"))
                    await session.commit()
                return
            if not await cards.is_recorded(obj["id"]):
                if (obj.get("metadata") or {}).get("appointment_id"):
                    await cards.refund_unrecorded(obj["id"])
                return
            payment = await confirm_paid(session, cards, obj)
            await session.commit()
            if payment is not None and payment.status == PaymentStatus.REFUND_PENDING:
                await cards.settle([payment.id])

    async def _clinic(self, obj: dict[str, Any]) -> TenantInfo | None:
        try:
            tenant_id = uuid.UUID(str((obj.get("metadata") or {})["tenant_id"]))
        except (KeyError, ValueError):
            return None
        clinic = await clinic_by_id(self.engine, tenant_id)
        # A deleted clinic's schema and role may be gone: nothing there to apply.
        return clinic if clinic is not None and clinic.status != TenantStatus.DELETED else None
