"""Appointments, recurring series and each appointment's history of steps (clinic schema)."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, ExcludeConstraint
from sqlalchemy.orm import Mapped, mapped_column

from polyclinic.db.base import TenantBase, Timestamps, UUIDKey


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
