"""Card bookings hold their slot while the patient pays; an unpaid hold expires, frees the
slot and gives its quota unit back. Its PaymentIntent is cancelled by the payments sweep."""

from __future__ import annotations

import datetime
import uuid

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.billing.quota import QuotaEngine
from polyclinic.scheduling.appointments.journal import note_step
from polyclinic.scheduling.appointments.models import Appointment, AppointmentStatus

EXPIRED = "payment not completed in time"


async def expire_holds(
    session: AsyncSession,
    quota: QuotaEngine,
    now: datetime.datetime,
    practitioner_id: uuid.UUID | None = None,
    location_id: uuid.UUID | None = None,
) -> int:
    """Cancel holds past their expiry (those of one practitioner or location, or all), in
    the caller's transaction; returns how many."""
    query = (
        select(Appointment)
        .where(
            Appointment.status == AppointmentStatus.PENDING_PAYMENT,
            Appointment.hold_expires_at <= now,
        )
        .with_for_update(skip_locked=True)
    )
    if practitioner_id is not None:
        holder = Appointment.practitioner_id == practitioner_id
        if location_id is not None:
            holder = or_(holder, Appointment.location_id == location_id)
        query = query.where(holder)
    expired = (await session.scalars(query)).all()
    for appointment in expired:
        appointment.status = AppointmentStatus.CANCELLED
        appointment.cancelled_by, appointment.cancel_reason = "system", EXPIRED
        released = await quota.release(appointment.id)
        note_step(
            session,
            appointment,
            "cancelled",
            AppointmentStatus.PENDING_PAYMENT,
            None,
            reason=EXPIRED,
            details={"quotaReleased": released, "cancelledBy": "system"},
        )
    return len(expired)
