"""What the appointments API takes and gives (camelCase JSON)."""

import datetime
import uuid
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import msgspec

from polyclinic.scheduling.appointments.models import Appointment, AppointmentTransition
from polyclinic.web.openapi import published_as

Notes = Annotated[str, msgspec.Meta(max_length=2000)]


Reason = Annotated[str, msgspec.Meta(min_length=1, max_length=500)]


PaymentMethod = Literal["in_clinic", "card"]


Scope = Literal["this", "following"]


Instant = Annotated[
    datetime.datetime,
    msgspec.Meta(tz=True, description="An instant with its UTC offset, e.g. 2027-03-01T09:00:00Z"),
]


class BookingIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    practitioner_id: uuid.UUID
    service_id: uuid.UUID
    starts_at: Instant
    payment_method: PaymentMethod
    patient_id: uuid.UUID | None = None
    notes: Notes = ""
    parent_id: Annotated[
        uuid.UUID | None, msgspec.Meta(description="The appointment this one follows up")
    ] = None


class SeriesIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    practitioner_id: uuid.UUID
    service_id: uuid.UUID
    starts_at: Instant
    occurrences: Annotated[int, msgspec.Meta(ge=2, le=52)]
    every_days: Annotated[int, msgspec.Meta(ge=1, le=91)] = 7
    payment_method: Literal["in_clinic"] = "in_clinic"
    patient_id: uuid.UUID | None = None
    notes: Notes = ""


class CancelIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    reason: Reason
    scope: Scope = "this"


class RescheduleIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    starts_at: Instant
    scope: Scope = "this"


class CheckInIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=4000)]


@published_as("polyclinic.scheduling.appointment_schemas")
class AppointmentOut(msgspec.Struct, rename="camel"):
    id: uuid.UUID
    practitioner_id: uuid.UUID
    service_id: uuid.UUID
    patient_id: uuid.UUID
    starts_at: datetime.datetime
    ends_at: datetime.datetime
    local_starts_at: str
    status: str
    payment_method: str
    hold_expires_at: datetime.datetime | None
    notes: str
    parent_id: uuid.UUID | None
    series_id: uuid.UUID | None
    series_index: int | None
    cancelled_by: str | None
    cancel_reason: str | None
    created_at: datetime.datetime


def appointment_out(a: Appointment, zone: ZoneInfo) -> AppointmentOut:
    return AppointmentOut(
        id=a.id,
        practitioner_id=a.practitioner_id,
        service_id=a.service_id,
        patient_id=a.patient_id,
        starts_at=a.starts_at,
        ends_at=a.ends_at,
        local_starts_at=a.starts_at.astimezone(zone).isoformat(),
        status=a.status,
        payment_method=a.payment_method,
        hold_expires_at=a.hold_expires_at,
        notes=a.notes,
        parent_id=a.parent_id,
        series_id=a.series_id,
        series_index=a.series_index,
        cancelled_by=a.cancelled_by,
        cancel_reason=a.cancel_reason,
        created_at=a.created_at,
    )


class CardPaymentOut(msgspec.Struct, rename="camel"):
    client_secret: str
    hold_expires_at: datetime.datetime | None


@published_as("polyclinic.scheduling.appointment_schemas")
class BookedOut(msgspec.Struct, rename="camel"):
    appointment: AppointmentOut
    payment: CardPaymentOut | None


@published_as("polyclinic.scheduling.appointment_schemas")
class SeriesOut(msgspec.Struct, rename="camel"):
    series_id: uuid.UUID
    appointments: list[AppointmentOut]


@published_as("polyclinic.scheduling.appointment_schemas")
class CheckInCodeOut(msgspec.Struct, rename="camel"):
    token: str
    valid_from: datetime.datetime
    valid_until: datetime.datetime


@published_as("polyclinic.scheduling.appointment_schemas")
class TransitionOut(msgspec.Struct, rename="camel"):
    action: str
    from_status: str | None
    to_status: str
    by_user_id: uuid.UUID | None
    reason: str | None
    details: dict[str, Any]
    at: datetime.datetime


def transition_out(t: AppointmentTransition) -> TransitionOut:
    return TransitionOut(
        action=t.action,
        from_status=t.from_status,
        to_status=t.to_status,
        by_user_id=t.by_user_id,
        reason=t.reason,
        details=t.details,
        at=t.at,
    )
