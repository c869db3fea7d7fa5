"""Plans, subscriptions and appointment quotas, in the shared `billing` schema.

Clinic roles read plans, and see and change only their own clinic's subscription, quota
periods and ledger rows (row-level security), because booking consumes quota inside the
clinic's own transaction.
"""

from __future__ import annotations

import datetime
import enum
import uuid
from typing import Any

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Enum,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from polyclinic.db.base import SharedBase, Timestamps, UUIDKey, utcnow

BILLING_SCHEMA = "billing"


def _enum(values: type[enum.StrEnum], name: str) -> Enum:
    return Enum(
        values, name=name, schema=BILLING_SCHEMA, values_callable=lambda e: [m.value for m in e]
    )


class Interval(enum.StrEnum):
    MONTH = "month"
    YEAR = "year"


class OveragePolicy(enum.StrEnum):
    BLOCK = "block"
    CHARGE = "charge"


class PlanStatus(enum.StrEnum):
    ACTIVE = "active"
    ARCHIVED = "archived"


class SubscriptionStatus(enum.StrEnum):
    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    UNPAID = "unpaid"
    CANCELED = "canceled"
    PAUSED = "paused"


# Which states may book, count as paying, end in suspension, and a payment settles.
CAN_BOOK = (SubscriptionStatus.TRIALING, SubscriptionStatus.ACTIVE)
PAYING = (SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE)
LAPSED = (SubscriptionStatus.UNPAID, SubscriptionStatus.CANCELED)
SETTLED_BY_PAYMENT = (
    SubscriptionStatus.ACTIVE,
    SubscriptionStatus.PAST_DUE,
    SubscriptionStatus.UNPAID,
    SubscriptionStatus.PAUSED,
)


class Plan(UUIDKey, Timestamps, SharedBase):
    """One version of a plan. A plan in use is never edited: a change makes a new version."""

    __tablename__ = "plans"
    __table_args__ = (
        UniqueConstraint("code", "version", name="uq_plans_code_version"),
        CheckConstraint("price_minor >= 0", name="price_not_negative"),
        CheckConstraint(
            "appointments_included IS NULL OR appointments_included >= 0",
            name="included_not_negative",
        ),
        {"schema": BILLING_SCHEMA},
    )

    code: Mapped[str] = mapped_column(String(40), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    name: Mapped[str] = mapped_column(String(100))
    price_minor: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    interval: Mapped[Interval] = mapped_column(_enum(Interval, "plan_interval"))
    trial_days: Mapped[int] = mapped_column(Integer, default=0)
    appointments_included: Mapped[int | None] = mapped_column(Integer)
    overage_policy: Mapped[OveragePolicy] = mapped_column(_enum(OveragePolicy, "overage_policy"))
    overage_price_minor: Mapped[int | None] = mapped_column(Integer)
    features: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    max_staff: Mapped[int | None] = mapped_column(Integer)
    max_practitioners: Mapped[int | None] = mapped_column(Integer)
    stripe_price_id: Mapped[str | None] = mapped_column(String(255))
    status: Mapped[PlanStatus] = mapped_column(
        _enum(PlanStatus, "plan_status"), default=PlanStatus.ACTIVE
    )
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)


class Subscription(UUIDKey, Timestamps, SharedBase):
    __tablename__ = "subscriptions"
    __table_args__ = {"schema": BILLING_SCHEMA}

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("platform.tenants.id", ondelete="CASCADE"), unique=True
    )
    plan_id: Mapped[uuid.UUID] = mapped_column(ForeignKey(f"{BILLING_SCHEMA}.plans.id"))
    status: Mapped[SubscriptionStatus] = mapped_column(
        _enum(SubscriptionStatus, "subscription_status")
    )
    current_period_start: Mapped[datetime.datetime] = mapped_column(DateTimeUTC(timezone=True))
    current_period_end: Mapped[datetime.datetime] = mapped_column(DateTimeUTC(timezone=True))
    trial_end: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    cancel_at_period_end: Mapped[bool] = mapped_column(Boolean, default=False)
    pending_plan_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey(f"{BILLING_SCHEMA}.plans.id")
    )
    past_due_since: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    # Since when the subscription has been unpaid or canceled (the suspension clock).
    lapsed_since: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    stripe_customer_id: Mapped[str | None] = mapped_column(String(255))
    stripe_subscription_id: Mapped[str | None] = mapped_column(String(255), unique=True)
    # `created` of the newest Stripe event applied: older ones arriving late change nothing.
    stripe_state_at: Mapped[int | None] = mapped_column(BigInteger)


class StripeEvent(SharedBase):
    """Each verified webhook event, stored once by its id, applied once."""

    __tablename__ = "stripe_events"
    __table_args__ = {"schema": BILLING_SCHEMA}

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    type: Mapped[str] = mapped_column(String(100))
    created: Mapped[int] = mapped_column(BigInteger)
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    received_at: Mapped[datetime.datetime] = mapped_column(
        DateTimeUTC(timezone=True), default=utcnow
    )
    applied_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True))


class QuotaPeriod(UUIDKey, SharedBase):
    """A clinic's appointments in one billing period; `included` NULL means unlimited."""

    __tablename__ = "quota_periods"
    __table_args__ = (
        UniqueConstraint("tenant_id", "period_start", name="uq_quota_periods_tenant_start"),
        CheckConstraint("included IS NULL OR used - overage <= included", name="no_overshoot"),
        {"schema": BILLING_SCHEMA},
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("platform.tenants.id", ondelete="CASCADE"), index=True
    )
    period_start: Mapped[datetime.datetime] = mapped_column(DateTimeUTC(timezone=True))
    period_end: Mapped[datetime.datetime] = mapped_column(DateTimeUTC(timezone=True))
    included: Mapped[int | None] = mapped_column(Integer)
    used: Mapped[int] = mapped_column(Integer, default=0)
    overage: Mapped[int] = mapped_column(Integer, default=0)
    notified_80_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    notified_100_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    created_at: Mapped[datetime.datetime] = mapped_column(
        DateTimeUTC(timezone=True), default=utcnow
    )


class QuotaEntry(UUIDKey, SharedBase):
    """One consume or release of one appointment: the key makes each happen once."""

    __tablename__ = "quota_ledger"
    __table_args__ = (
        UniqueConstraint("tenant_id", "appointment_id", "kind", name="uq_quota_ledger_once"),
        CheckConstraint("kind IN ('consume', 'release')", name="kind"),
        {"schema": BILLING_SCHEMA},
    )

    tenant_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("platform.tenants.id", ondelete="CASCADE"), index=True
    )
    period_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey(f"{BILLING_SCHEMA}.quota_periods.id", ondelete="CASCADE"), index=True
    )
    appointment_id: Mapped[uuid.UUID]
    kind: Mapped[str] = mapped_column(String(10))
    overage: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime.datetime] = mapped_column(
        DateTimeUTC(timezone=True), default=utcnow
    )
