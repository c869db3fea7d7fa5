"""An appointment's history and the events it sends to the clinic's outbox, both written in
the transaction that changes it."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.db.base import utcnow
from polyclinic.scheduling.appointments.models import Appointment, AppointmentTransition
from polyclinic.worker.outbox import record

# Steps messaging hears about, and the outbox event each becomes.
EVENTS = {
    "booked": "appointment.booked",
    "confirmed": "appointment.confirmed",
    "rescheduled": "appointment.rescheduled",
    "cancelled": "appointment.cancelled",
    "no_show": "appointment.no_show",
    "completed": "appointment.completed",
}


def note_step(
    session: AsyncSession,
    appointment: Appointment,
    action: str,
    from_status: str | None,
    by: uuid.UUID | None,
    *,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Record one step of `appointment` (already in its new state)."""
    details = details or {}
    session.add(
        AppointmentTransition(
            id=uuid.uuid4(),
            appointment_id=appointment.id,
            action=action,
            from_status=from_status,
            to_status=appointment.status,
            by_user_id=by,
            reason=reason,
            details=details,
            at=utcnow(),
        )
    )
    if action in EVENTS:
        record(session, EVENTS[action], appointment.id, event_payload(appointment, details))


def event_payload(appointment: Appointment, details: dict[str, Any]) -> dict[str, Any]:
    return {
        "appointmentId": str(appointment.id),
        "patientId": str(appointment.patient_id),
        "practitionerId": str(appointment.practitioner_id),
        "serviceId": str(appointment.service_id),
        "startsAt": appointment.starts_at.isoformat(),
        "endsAt": appointment.ends_at.isoformat(),
        "status": appointment.status,
        "paymentMethod": appointment.payment_method,
        **details,
    }
