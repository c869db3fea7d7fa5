"""Reminders: outbox events that wait for their time (the clinic's offsets before the start,
24 h and 1 h unless it says otherwise).

They are written when an appointment is confirmed, replaced when it moves and dropped when it
is cancelled, each in that change's transaction. When one comes due it is checked again
(still confirmed, still at that time, still ahead, not replaced by a newer one) before
anything is sent, so a change racing the relay cannot send a stale reminder.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Sequence

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.db.base import utcnow
from polyclinic.scheduling.appointments.journal import event_payload
from polyclinic.scheduling.appointments.models import Appointment, AppointmentStatus
from polyclinic.scheduling.setup.availability import Policies
from polyclinic.worker.outbox import OutboxEvent, record

REMINDER_EVENT = "appointment.reminder"
OFFSET_KEY = "offsetMinutes"


async def add_reminders(session: AsyncSession, appointment: Appointment) -> int:
    """One reminder per offset still ahead of a confirmed appointment; how many."""
    if appointment.status != AppointmentStatus.CONFIRMED:
        return 0
    policy = await Policies(session).get()
    now = utcnow()
    added = 0
    for minutes in sorted(set(policy.reminder_offsets_minutes), reverse=True):
        due = appointment.starts_at - datetime.timedelta(minutes=minutes)
        if due > now:
            payload = {**event_payload(appointment, {}), OFFSET_KEY: minutes}
            record(session, REMINDER_EVENT, appointment.id, payload, due_at=due)
            added += 1
    return added


async def drop_reminders(session: AsyncSession, appointment_ids: Sequence[uuid.UUID]) -> None:
    """Those not yet relayed are deleted (nothing was made of them); one already on its way
    fails its check when due."""
    await session.execute(
        delete(OutboxEvent)
        .where(
            OutboxEvent.kind == REMINDER_EVENT,
            OutboxEvent.subject_id.in_(appointment_ids),
            OutboxEvent.relayed_at.is_(None),
        )
        .execution_options(synchronize_session=False)
    )


async def reminder_holds(session: AsyncSession, event: OutboxEvent) -> bool:
    """The reminder still says something true and nothing newer replaced it. The appointment
    is read under a share lock, so a move or cancellation under way is waited for."""
    appointment = await session.get(
        Appointment, event.subject_id, with_for_update={"read": True}, populate_existing=True
    )
    if (
        appointment is None
        or appointment.status != AppointmentStatus.CONFIRMED
        or appointment.starts_at != datetime.datetime.fromisoformat(event.payload["startsAt"])
        or appointment.starts_at <= utcnow()
    ):
        return False
    newer = await session.scalar(
        select(func.count())
        .select_from(OutboxEvent)
        .where(
            OutboxEvent.kind == REMINDER_EVENT,
            OutboxEvent.subject_id == event.subject_id,
            OutboxEvent.created_at > event.created_at,
            OutboxEvent.payload[OFFSET_KEY].as_integer() == event.payload[OFFSET_KEY],
        )
    )
    return not newer
