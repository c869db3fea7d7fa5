"""What the scheduling set-up API takes and gives (camelCase JSON)."""

import datetime
import uuid
from collections.abc import Sequence
from typing import Annotated, Literal

import msgspec

from polyclinic.scheduling.locations.models import LocationHours
from polyclinic.scheduling.setup.models import (
    AvailabilityException,
    BookingPolicy,
    Practitioner,
    Service,
    WeeklyHours,
)
from polyclinic.web.limits import INT32_MAX
from polyclinic.web.openapi import published_as

ClockTime = Annotated[
    str, msgspec.Meta(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", examples=["09:00"], description="HH:MM")
]


Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


Minutes = Annotated[int, msgspec.Meta(ge=0, le=120)]


Specialty = Annotated[str, msgspec.Meta(min_length=1, max_length=100)]


Bio = Annotated[str, msgspec.Meta(max_length=4000)]


ServiceName = Annotated[str, msgspec.Meta(min_length=1, max_length=120)]


Duration = Annotated[int, msgspec.Meta(ge=5, le=480)]


Price = Annotated[int, msgspec.Meta(ge=0, le=INT32_MAX)]  # an integer column


Currency = Annotated[str, msgspec.Meta(pattern="^[A-Z]{3}$")]


Mode = Literal["in_person", "video"]


NoticeMinutes = Annotated[int, msgspec.Meta(ge=0, le=43200)]


HorizonDays = Annotated[int, msgspec.Meta(ge=1, le=730)]


CancellationHours = Annotated[int, msgspec.Meta(ge=0, le=720)]


Granularity = Literal[5, 10, 15, 20, 30, 60]


ReminderOffsets = Annotated[
    list[Annotated[int, msgspec.Meta(ge=5, le=20160)]],
    msgspec.Meta(
        max_length=5,
        description="minutes before the start at which reminders go out (5 minutes to 14 days)",
    ),
]


Unset = msgspec.UnsetType


UNSET = msgspec.UNSET


def clock(value: str) -> datetime.time:
    return datetime.time.fromisoformat(value)


class PractitionerCreate(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    user_id: uuid.UUID
    specialty: Specialty
    display_name: Name | None = None
    bio: Bio = ""


class PractitionerUpdate(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    specialty: Specialty | Unset = UNSET
    display_name: Name | Unset = UNSET
    bio: Bio | Unset = UNSET
    is_active: bool | Unset = UNSET


@published_as("polyclinic.scheduling.schemas")
class PractitionerOut(msgspec.Struct, rename="camel"):
    id: uuid.UUID
    user_id: uuid.UUID
    display_name: str
    specialty: str
    bio: str
    verified: bool
    is_active: bool


def practitioner_out(p: Practitioner) -> PractitionerOut:
    return PractitionerOut(
        id=p.id,
        user_id=p.user_id,
        display_name=p.display_name,
        specialty=p.specialty,
        bio=p.bio,
        verified=p.verified_at is not None,
        is_active=p.is_active,
    )


class ServiceCreate(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    name: ServiceName
    duration_minutes: Duration
    price_minor: Price
    currency: Currency
    mode: Mode = "in_person"
    buffer_before_minutes: Minutes = 0
    buffer_after_minutes: Minutes = 0
    practitioner_ids: list[uuid.UUID] = msgspec.field(default_factory=list)
    location_id: Annotated[
        uuid.UUID | None, msgspec.Meta(description="The room or site it needs, if any")
    ] = None


class ServiceUpdate(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    name: ServiceName | Unset = UNSET
    duration_minutes: Duration | Unset = UNSET
    price_minor: Price | Unset = UNSET
    currency: Currency | Unset = UNSET
    mode: Mode | Unset = UNSET
    buffer_before_minutes: Minutes | Unset = UNSET
    buffer_after_minutes: Minutes | Unset = UNSET
    is_active: bool | Unset = UNSET
    practitioner_ids: list[uuid.UUID] | Unset = UNSET
    location_id: uuid.UUID | Unset | None = UNSET


@published_as("polyclinic.scheduling.schemas")
class ServiceOut(msgspec.Struct, rename="camel"):
    id: uuid.UUID
    name: str
    duration_minutes: int
    price_minor: int
    currency: str
    mode: str
    buffer_before_minutes: int
    buffer_after_minutes: int
    is_active: bool
    practitioner_ids: list[uuid.UUID]
    location_id: uuid.UUID | None


def service_out(service: Service, practitioner_ids: list[uuid.UUID]) -> ServiceOut:
    return ServiceOut(
        id=service.id,
        name=service.name,
        duration_minutes=service.duration_minutes,
        price_minor=service.price_minor,
        currency=service.currency,
        mode=service.mode,
        buffer_before_minutes=service.buffer_before_minutes,
        buffer_after_minutes=service.buffer_after_minutes,
        is_active=service.is_active,
        practitioner_ids=sorted(practitioner_ids),
        location_id=service.location_id,
    )


@published_as("polyclinic.scheduling.schemas")
class HoursInterval(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    weekday: Annotated[int, msgspec.Meta(ge=0, le=6, description="0 = Monday")]
    starts: ClockTime
    ends: ClockTime


class WeeklyHoursIn(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    hours: Annotated[list[HoursInterval], msgspec.Meta(max_length=70)]


def hours_out(rows: Sequence[WeeklyHours | LocationHours]) -> list[HoursInterval]:
    return [
        HoursInterval(
            weekday=h.weekday, starts=h.starts.strftime("%H:%M"), ends=h.ends.strftime("%H:%M")
        )
        for h in rows
    ]


class ExceptionCreate(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    day: datetime.date
    kind: Literal["off", "extra"]
    starts: ClockTime | None = None
    ends: ClockTime | None = None
    reason: Annotated[str, msgspec.Meta(max_length=200)] = ""


@published_as("polyclinic.scheduling.schemas")
class ExceptionOut(msgspec.Struct, rename="camel"):
    id: uuid.UUID
    day: datetime.date
    kind: str
    starts: str | None
    ends: str | None
    reason: str


def exception_out(e: AvailabilityException) -> ExceptionOut:
    return ExceptionOut(
        id=e.id,
        day=e.day,
        kind=e.kind,
        starts=e.starts.strftime("%H:%M") if e.starts else None,
        ends=e.ends.strftime("%H:%M") if e.ends else None,
        reason=e.reason,
    )


class PolicyUpdate(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    min_notice_minutes: NoticeMinutes | Unset = UNSET
    horizon_days: HorizonDays | Unset = UNSET
    cancellation_notice_hours: CancellationHours | Unset = UNSET
    slot_granularity_minutes: Granularity | Unset = UNSET
    reminder_offsets_minutes: ReminderOffsets | Unset = UNSET


@published_as("polyclinic.scheduling.schemas")
class PolicyOut(msgspec.Struct, rename="camel"):
    min_notice_minutes: int
    horizon_days: int
    cancellation_notice_hours: int
    slot_granularity_minutes: int
    reminder_offsets_minutes: list[int]


def policy_out(p: BookingPolicy) -> PolicyOut:
    return PolicyOut(
        min_notice_minutes=p.min_notice_minutes,
        horizon_days=p.horizon_days,
        cancellation_notice_hours=p.cancellation_notice_hours,
        slot_granularity_minutes=p.slot_granularity_minutes,
        reminder_offsets_minutes=sorted(p.reminder_offsets_minutes, reverse=True),
    )
