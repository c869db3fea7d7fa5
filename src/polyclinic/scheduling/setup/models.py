"""Practitioners, services, weekly hours, date exceptions and the booking policy, in the
clinic schema. Times of day are wall-clock times in the clinic's time zone."""

from __future__ import annotations

import datetime
import uuid

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Identity,
    Integer,
    SmallInteger,
    String,
    Text,
    Time,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
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
