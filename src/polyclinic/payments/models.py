"""Patient card payments and the clinic's connected Stripe account (clinic schema)."""

from __future__ import annotations

import uuid

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from polyclinic.db.base import TenantBase, Timestamps, UUIDKey


class PaymentStatus:
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    CANCELED = "canceled"
    REFUND_PENDING = "refund_pending"
    REFUNDED = "refunded"


class PaymentAccount(Timestamps, TenantBase):
    """The clinic's Stripe Connect account (one row), paid out to by destination charges."""

    __tablename__ = "payment_account"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, default=1)
    stripe_account_id: Mapped[str] = mapped_column(String(64), unique=True)
    charges_enabled: Mapped[bool] = mapped_column(Boolean, default=False)


class Payment(UUIDKey, Timestamps, TenantBase):
    """A card payment for one appointment (a rescheduled appointment keeps it)."""

    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'succeeded', 'canceled', 'refund_pending', 'refunded')",
            name="status",
        ),
        Index(
            "ix_payments_open",
            "status",
            postgresql_where=text("status IN ('pending', 'refund_pending')"),
        ),
    )

    appointment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("appointments.id"), unique=True)
    stripe_payment_intent_id: Mapped[str] = mapped_column(String(64), unique=True)
    amount_minor: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    platform_fee_minor: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20))
    refunded_minor: Mapped[int] = mapped_column(Integer, default=0)
    stripe_refund_id: Mapped[str | None] = mapped_column(String(64))
