"""Reading appointments: staff day and week views, a patient's own appointments, one
appointment's history."""

from __future__ import annotations

import datetime
import uuid
from typing import Literal
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.db.base import utcnow
from polyclinic.errors import DomainError, FieldError, NotFound
from polyclinic.identity.permissions.guards import Principal
from polyclinic.identity.permissions.roles import Role
from polyclinic.scheduling.appointments.models import Appointment, AppointmentTransition

View = Literal["day", "week"]


def local_span(
    day: datetime.date, view: View, zone: ZoneInfo
) -> tuple[datetime.datetime, datetime.datetime]:
    """The UTC instants bounding a local day, or the Monday-to-Sunday week holding it."""
    first = day if view == "day" else day - datetime.timedelta(days=day.weekday())
    after = first + datetime.timedelta(days=1 if view == "day" else 7)

    def midnight(d: datetime.date) -> datetime.datetime:
        return datetime.datetime.combine(d, datetime.time(), zone).astimezone(datetime.UTC)

    return midnight(first), midnight(after)


class Agenda:
    def __init__(self, session: AsyncSession, zone: ZoneInfo, actor: Principal) -> None:
        self.db = session
        self.zone = zone
        self.actor = actor

    def _visible(self) -> list[object]:
        if self.actor.role == Role.PATIENT:
            return [Appointment.patient_id == self.actor.user_id]
        return []

    async def list(
        self,
        *,
        day: datetime.date | None,
        view: View,
        practitioner_id: uuid.UUID | None,
        patient_id: uuid.UUID | None,
        status: str | None,
        limit: int,
        offset: int,
    ) -> tuple[list[Appointment], int]:
        """Without a date: what is still ahead (a patient's upcoming visits)."""
        where = self._visible()
        if day is not None:
            try:
                since, until = local_span(day, view, self.zone)
            except OverflowError:  # the first or last days of the calendar
                raise DomainError(
                    "The date is out of range", [FieldError("date", "is out of range")]
                ) from None
            where += [Appointment.starts_at >= since, Appointment.starts_at < until]
        else:
            where.append(Appointment.ends_at >= utcnow())
        if practitioner_id is not None:
            where.append(Appointment.practitioner_id == practitioner_id)
        if patient_id is not None:
            where.append(Appointment.patient_id == patient_id)
        if status is not None:
            where.append(Appointment.status == status)
        total = await self.db.scalar(select(func.count()).select_from(Appointment).where(*where))
        rows = await self.db.scalars(
            select(Appointment)
            .where(*where)
            .order_by(Appointment.starts_at, Appointment.id)
            .limit(limit)
            .offset(offset)
        )
        return list(rows), int(total or 0)

    async def get(self, appointment_id: uuid.UUID) -> Appointment:
        appointment = await self.db.scalar(
            select(Appointment).where(Appointment.id == appointment_id, *self._visible())
        )
        if appointment is None:
            raise NotFound("No appointment with this id")
        return appointment

    async def history(self, appointment_id: uuid.UUID) -> list[AppointmentTransition]:
        await self.get(appointment_id)
        rows = await self.db.scalars(
            select(AppointmentTransition)
            .where(AppointmentTransition.appointment_id == appointment_id)
            .order_by(AppointmentTransition.at, AppointmentTransition.id)
        )
        return list(rows)
