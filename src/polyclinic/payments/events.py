"""Stripe events about patient payments, received on the one Stripe webhook: a connected
account became able to take cards, a PaymentIntent was paid. Each is applied in the clinic
named by the metadata Polyclinic put on the object, and is idempotent by the state it finds."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.config import Settings
from polyclinic.db.session import clinic_session
from polyclinic.payments.cards import CardPayments
from polyclinic.payments.models import PaymentStatus
from polyclinic.tenancy.context import TenantInfo, in_clinic
from polyclinic.tenancy.models import TenantStatus
from polyclinic.tenancy.resolver import clinic_by_id

logger = logging.getLogger("polyclinic.payments")

PAYMENT_EVENTS = frozenset({"account.updated", "payment_intent.succeeded"})


class PaymentEvents:
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
            payment = await cards.confirm_paid(obj)
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
