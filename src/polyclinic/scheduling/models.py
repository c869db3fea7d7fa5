"""Practitioners, services, weekly hours, date exceptions and the booking policy, in the
clinic schema. Times of day are wall-clock times in the clinic's time zone."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    Time,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, ExcludeConstraint
from sqlalchemy.orm import Mapped, mapped_column

from polyclinic.db.base import TenantBase, Timestamps, UUIDKey

DEFAULT_REMINDER_OFFSETS = (1440, 60)  # a day and an hour before


class Practitioner(UUIDKey, Timestamps, TenantBase):
    """A doctor or nurse who can be booked, once a clinic admin has verified them."""

    __tablename__ = "practitioners"
    __table_args__ = (UniqueConstraint("id", "lane", name="uq_practitioners_id_lane"),)

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), unique=True
    )
    display_name: Mapped[str] = mapped_column(String(200))
    specialty: Mapped[str] = mapped_column(String(100))
    bio: Mapped[str] = mapped_column(Text, default="")
    verified_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    # A small number per practitioner, for the double-booking constraint on appointments.
    lane: Mapped[int] = mapped_column(Integer, Identity())


class Location(UUIDKey, Timestamps, TenantBase):
    """A room or a site where services take place; with hours of its own, and never
    holding two appointments at once."""

    __tablename__ = "locations"
    __table_args__ = (
        UniqueConstraint("id", "lane", name="uq_locations_id_lane"),
        CheckConstraint("kind IN ('room', 'site')", name="kind"),
    )

    name: Mapped[str] = mapped_column(String(120), unique=True)
    kind: Mapped[str] = mapped_column(String(10))
    address: Mapped[str | None] = mapped_column(String(500))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    lane: Mapped[int] = mapped_column(Integer, Identity())


class LocationHours(UUIDKey, TenantBase):
    """When a location is open, per weekday (0 = Monday)."""

    __tablename__ = "location_hours"
    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday"),
        CheckConstraint("starts < ends", name="starts_before_ends"),
    )

    location_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("locations.id", ondelete="CASCADE"), index=True
    )
    weekday: Mapped[int] = mapped_column(SmallInteger)
    starts: Mapped[datetime.time] = mapped_column(Time)
    ends: Mapped[datetime.time] = mapped_column(Time)


class Service(UUIDKey, Timestamps, TenantBase):
    """An appointment type."""

    __tablename__ = "services"
    __table_args__ = (
        CheckConstraint("duration_minutes BETWEEN 5 AND 480", name="duration"),
        CheckConstraint("price_minor >= 0", name="price_not_negative"),
        CheckConstraint("mode IN ('in_person', 'video')", name="mode"),
        CheckConstraint(
            "buffer_before_minutes BETWEEN 0 AND 120 AND buffer_after_minutes BETWEEN 0 AND 120",
            name="buffers",
        ),
    )

    name: Mapped[str] = mapped_column(String(120), unique=True)
    duration_minutes: Mapped[int] = mapped_column(Integer)
    price_minor: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    mode: Mapped[str] = mapped_column(String(10))
    buffer_before_minutes: Mapped[int] = mapped_column(Integer, default=0)
    buffer_after_minutes: Mapped[int] = mapped_column(Integer, default=0)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Where the service takes place, when it needs a particular room or site.
    location_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("locations.id"))


class ServicePractitioner(TenantBase):
    """Who offers which service."""

    __tablename__ = "service_practitioners"

    service_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("services.id", ondelete="CASCADE"), primary_key=True
    )
    practitioner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("practitioners.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class WeeklyHours(UUIDKey, TenantBase):
    """One working interval on a weekday (0 = Monday); the gaps between a day's intervals
    are its breaks."""

    __tablename__ = "weekly_hours"
    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday"),
        CheckConstraint("starts < ends", name="starts_before_ends"),
    )

    practitioner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("practitioners.id", ondelete="CASCADE"), index=True
    )
    weekday: Mapped[int] = mapped_column(SmallInteger)
    starts: Mapped[datetime.time] = mapped_column(Time)
    ends: Mapped[datetime.time] = mapped_column(Time)


class AvailabilityException(UUIDKey, Timestamps, TenantBase):
    """A date that differs from the week: time off (the whole day when no times are given)
    or extra hours."""

    __tablename__ = "availability_exceptions"
    __table_args__ = (
        CheckConstraint("kind IN ('off', 'extra')", name="kind"),
        CheckConstraint(
            "(starts IS NULL AND ends IS NULL AND kind = 'off') OR (starts < ends)",
            name="times",
        ),
    )

    practitioner_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("practitioners.id", ondelete="CASCADE"), index=True
    )
    day: Mapped[datetime.date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(5))
    starts: Mapped[datetime.time | None] = mapped_column(Time)
    ends: Mapped[datetime.time | None] = mapped_column(Time)
    reason: Mapped[str] = mapped_column(String(200), default="")


class BookingPolicy(Timestamps, TenantBase):
    """The clinic's one booking policy (a single row)."""

    __tablename__ = "booking_policy"
    __table_args__ = (
        CheckConstraint("id = 1", name="single_row"),
        CheckConstraint("min_notice_minutes BETWEEN 0 AND 43200", name="min_notice"),
        CheckConstraint("horizon_days BETWEEN 1 AND 730", name="horizon"),
        CheckConstraint("cancellation_notice_hours BETWEEN 0 AND 720", name="cancellation"),
        CheckConstraint("slot_granularity_minutes IN (5, 10, 15, 20, 30, 60)", name="granularity"),
        CheckConstraint("cardinality(reminder_offsets_minutes) <= 5", name="reminder_offsets"),
    )

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, default=1)
    min_notice_minutes: Mapped[int] = mapped_column(Integer, default=120)
    horizon_days: Mapped[int] = mapped_column(Integer, default=90)
    cancellation_notice_hours: Mapped[int] = mapped_column(Integer, default=24)
    slot_granularity_minutes: Mapped[int] = mapped_column(Integer, default=15)
    # Reminders go out this many minutes before each appointment.
    reminder_offsets_minutes: Mapped[list[int]] = mapped_column(
        ARRAY(Integer),
        default=lambda: list(DEFAULT_REMINDER_OFFSETS),
        server_default=text("'{1440,60}'"),
    )


class AppointmentStatus:
    PENDING_PAYMENT = "pending_payment"
    CONFIRMED = "confirmed"
    CHECKED_IN = "checked_in"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    NO_SHOW = "no_show"


# Appointments in these states hold their practitioner's time.
HOLDS_TIME = (
    AppointmentStatus.PENDING_PAYMENT,
    AppointmentStatus.CONFIRMED,
    AppointmentStatus.CHECKED_IN,
    AppointmentStatus.IN_PROGRESS,
    AppointmentStatus.COMPLETED,
)
_HOLDS_TIME_SQL = "status IN ({})".format(", ".join(f"'{s}'" for s in HOLDS_TIME))


class AppointmentSeries(UUIDKey, TenantBase):
    """A recurring booking: `occurrences` appointments, `every_days` apart."""

    __tablename__ = "appointment_series"
    __table_args__ = (
        CheckConstraint("every_days BETWEEN 1 AND 91", name="every"),
        CheckConstraint("occurrences BETWEEN 2 AND 52", name="occurrences"),
    )

    every_days: Mapped[int] = mapped_column(Integer)
    occurrences: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime.datetime] = mapped_column(DateTimeUTC(timezone=True))


class Appointment(UUIDKey, Timestamps, TenantBase):
    """A booking. It blocks its practitioner from `blocked_from` to `blocked_until` (its
    time plus the service's buffers) while its status holds time."""

    __tablename__ = "appointments"
    __table_args__ = (
        ForeignKeyConstraint(
            ["practitioner_id", "practitioner_lane"],
            ["practitioners.id", "practitioners.lane"],
            name="fk_appointments_practitioner_id_practitioners",
        ),
        ForeignKeyConstraint(
            ["location_id", "location_lane"],
            ["locations.id", "locations.lane"],
            name="fk_appointments_location_id_locations",
        ),
        CheckConstraint(
            "status IN ('pending_payment', 'confirmed', 'checked_in', 'in_progress',"
            " 'completed', 'cancelled', 'no_show')",
            name="status",
        ),
        CheckConstraint("payment_method IN ('in_clinic', 'card')", name="payment_method"),
        CheckConstraint(
            "blocked_from <= starts_at AND starts_at < ends_at AND ends_at <= blocked_until",
            name="times",
        ),
        CheckConstraint(
            "cancelled_by IS NULL OR cancelled_by IN ('patient', 'clinic', 'system')",
            name="cancelled_by",
        ),
        ExcludeConstraint(
            (text("int4range(practitioner_lane, practitioner_lane, '[]')"), "&&"),
            (text("tstzrange(blocked_from, blocked_until)"), "&&"),
            where=text(_HOLDS_TIME_SQL),
            using="gist",
            name="ex_appointments_no_double_booking",
        ),
        ExcludeConstraint(
            (text("int4range(location_lane, location_lane, '[]')"), "&&"),
            (text("tstzrange(blocked_from, blocked_until)"), "&&"),
            where=text(f"location_lane IS NOT NULL AND {_HOLDS_TIME_SQL}"),
            using="gist",
            name="ex_appointments_no_double_booked_location",
        ),
        Index("ix_appointments_practitioner_id_starts_at", "practitioner_id", "starts_at"),
        Index("ix_appointments_patient_id_starts_at", "patient_id", "starts_at"),
        Index(
            "ix_appointments_hold_expires_at",
            "hold_expires_at",
            postgresql_where=text("status = 'pending_payment'"),
        ),
    )

    practitioner_id: Mapped[uuid.UUID] = mapped_column()
    practitioner_lane: Mapped[int] = mapped_column(Integer)
    service_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("services.id"))
    patient_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    location_id: Mapped[uuid.UUID | None] = mapped_column()
    location_lane: Mapped[int | None] = mapped_column(Integer)
    starts_at: Mapped[datetime.datetime] = mapped_column(DateTimeUTC(timezone=True), index=True)
    ends_at: Mapped[datetime.datetime] = mapped_column(DateTimeUTC(timezone=True))
    blocked_from: Mapped[datetime.datetime] = mapped_column(DateTimeUTC(timezone=True))
    blocked_until: Mapped[datetime.datetime] = mapped_column(DateTimeUTC(timezone=True))
    status: Mapped[str] = mapped_column(String(20))
    payment_method: Mapped[str] = mapped_column(String(10))
    hold_expires_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    notes: Mapped[str] = mapped_column(Text, default="")
    parent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("appointments.id"))
    series_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("appointment_series.id"), index=True
    )
    series_index: Mapped[int | None] = mapped_column(SmallInteger)
    booked_by: Mapped[uuid.UUID] = mapped_column()
    cancelled_by: Mapped[str | None] = mapped_column(String(10))
    cancel_reason: Mapped[str | None] = mapped_column(String(500))


class AppointmentTransition(UUIDKey, TenantBase):
    """One step of an appointment's history."""

    __tablename__ = "appointment_transitions"

    appointment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("appointments.id", ondelete="CASCADE"), index=True
    )
    action: Mapped[str] = mapped_column(String(20))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    by_user_id: Mapped[uuid.UUID | None] = mapped_column()
    reason: Mapped[str | None] = mapped_column(String(500))
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    at: Mapped[datetime.datetime] = mapped_column(DateTimeUTC(timezone=True))
