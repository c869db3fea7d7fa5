"""Request and response bodies of the billing APIs (camelCase on the wire)."""

from __future__ import annotations

import datetime
import uuid
from typing import Annotated, Any

import msgspec

from polyclinic.billing.models import Interval, OveragePolicy, Plan
from polyclinic.web.patching import sent_fields

Count = Annotated[int, msgspec.Meta(ge=0)]


class PlanFeatures(msgspec.Struct, rename="camel"):
    video_visits: bool = False
    sms: bool = False
    whatsapp: bool = False
    # Clinics without an email (SMS) provider of their own send through the platform's.
    platform_email: bool = True
    platform_sms: bool = False


class PlanFeaturesChange(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """The features a PATCH sends; those left out stay as they are."""

    video_visits: bool | msgspec.UnsetType = msgspec.UNSET
    sms: bool | msgspec.UnsetType = msgspec.UNSET
    whatsapp: bool | msgspec.UnsetType = msgspec.UNSET
    platform_email: bool | msgspec.UnsetType = msgspec.UNSET
    platform_sms: bool | msgspec.UnsetType = msgspec.UNSET


class PlanCreate(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    code: Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9-]{1,38}[a-z0-9]$")]
    name: Annotated[str, msgspec.Meta(pattern=r"\S", max_length=100)]
    price_minor: Count
    currency: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$")]
    interval: Interval
    overage_policy: OveragePolicy
    trial_days: Annotated[int, msgspec.Meta(ge=0, le=365)] = 0
    appointments_included: Count | None = None
    overage_price_minor: Count | None = None
    features: PlanFeatures = msgspec.field(default_factory=PlanFeatures)
    max_staff: Count | None = None
    max_practitioners: Count | None = None
    stripe_price_id: Annotated[str, msgspec.Meta(max_length=255)] | None = None
    is_default: bool = False


class PlanUpdate(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    name: Annotated[str, msgspec.Meta(pattern=r"\S", max_length=100)] | msgspec.UnsetType = (
        msgspec.UNSET
    )
    price_minor: Count | msgspec.UnsetType = msgspec.UNSET
    currency: Annotated[str, msgspec.Meta(pattern=r"^[A-Z]{3}$")] | msgspec.UnsetType = (
        msgspec.UNSET
    )
    interval: Interval | msgspec.UnsetType = msgspec.UNSET
    trial_days: Annotated[int, msgspec.Meta(ge=0, le=365)] | msgspec.UnsetType = msgspec.UNSET
    appointments_included: Count | msgspec.UnsetType | None = msgspec.UNSET
    overage_policy: OveragePolicy | msgspec.UnsetType = msgspec.UNSET
    overage_price_minor: Count | msgspec.UnsetType | None = msgspec.UNSET
    features: PlanFeaturesChange | msgspec.UnsetType = msgspec.UNSET
    max_staff: Count | msgspec.UnsetType | None = msgspec.UNSET
    max_practitioners: Count | msgspec.UnsetType | None = msgspec.UNSET
    stripe_price_id: Annotated[str, msgspec.Meta(max_length=255)] | msgspec.UnsetType | None = (
        msgspec.UNSET
    )
    is_default: bool | msgspec.UnsetType = msgspec.UNSET


class PlanOut(msgspec.Struct, rename="camel"):
    id: uuid.UUID
    code: str
    version: int
    name: str
    price_minor: int
    currency: str
    interval: str
    trial_days: int
    appointments_included: int | None
    overage_policy: str
    overage_price_minor: int | None
    features: dict[str, Any]
    max_staff: int | None
    max_practitioners: int | None
    status: str
    is_default: bool


class Quota(msgspec.Struct, rename="camel"):
    included: int | None
    used: int
    remaining: int | None
    overage: int


class SubscriptionOut(msgspec.Struct, rename="camel"):
    plan: PlanOut
    status: str
    current_period_start: datetime.datetime
    current_period_end: datetime.datetime
    trial_end: datetime.datetime | None
    cancel_at_period_end: bool
    quota: Quota


class UsageEntryOut(msgspec.Struct, rename="camel"):
    appointment_id: uuid.UUID
    kind: str
    overage: bool
    created_at: datetime.datetime


def plan_values(data: PlanCreate | PlanUpdate) -> dict[str, Any]:
    """The fields that were sent, as model values (features as their camelCase JSON: all of
    them for a new plan, only those sent for a change)."""
    values = sent_fields(data)
    if isinstance(values.get("features"), PlanFeatures | PlanFeaturesChange):
        values["features"] = msgspec.to_builtins(values["features"])
    return values


def plan_out(plan: Plan) -> PlanOut:
    return PlanOut(
        id=plan.id,
        code=plan.code,
        version=plan.version,
        name=plan.name,
        price_minor=plan.price_minor,
        currency=plan.currency,
        interval=str(plan.interval),
        trial_days=plan.trial_days,
        appointments_included=plan.appointments_included,
        overage_policy=str(plan.overage_policy),
        overage_price_minor=plan.overage_price_minor,
        features=plan.features,
        max_staff=plan.max_staff,
        max_practitioners=plan.max_practitioners,
        status=str(plan.status),
        is_default=plan.is_default,
    )
