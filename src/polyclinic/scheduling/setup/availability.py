"""A practitioner's weekly hours and date exceptions, and the clinic's booking policy."""

from __future__ import annotations

import datetime
import itertools
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.errors import FieldError, InvalidInput, NotFound
from polyclinic.scheduling.setup.models import AvailabilityException, BookingPolicy, WeeklyHours
from polyclinic.scheduling.setup.practitioners import Practitioners

Interval = tuple[int, datetime.time, datetime.time]  # weekday, starts, ends


def check_intervals(intervals: Sequence[Interval]) -> None:
    """Each interval starts before it ends; a day's intervals do not overlap."""
    for index, (_, starts, ends) in enumerate(intervals):
        if starts >= ends:
            raise InvalidInput(
                "Each interval must start before it ends",
                [FieldError(f"hours[{index}]", "ends before it starts")],
            )
    by_day = sorted(intervals)
    for (day, _, ends), (next_day, next_starts, _) in itertools.pairwise(by_day):
        if day == next_day and next_starts < ends:
            raise InvalidInput(
                "Two intervals on the same weekday overlap",
                [FieldError("hours", f"overlap on weekday {day}")],
            )


class Availability:
    def __init__(self, session: AsyncSession, tenant_id: uuid.UUID) -> None:
        self.db = session
        self.practitioners = Practitioners(session, tenant_id)

    async def hours(self, practitioner_id: uuid.UUID) -> list[WeeklyHours]:
        await self.practitioners.get(practitioner_id)
        rows = await self.db.scalars(
            select(WeeklyHours)
            .where(WeeklyHours.practitioner_id == practitioner_id)
            .order_by(WeeklyHours.weekday, WeeklyHours.starts)
        )
        return list(rows)

    async def replace_hours(
        self, practitioner_id: uuid.UUID, intervals: Sequence[Interval]
    ) -> list[WeeklyHours]:
        await self.practitioners.get(practitioner_id, lock=True)  # one replacement at a time
        check_intervals(intervals)
        await self.db.execute(
            delete(WeeklyHours).where(WeeklyHours.practitioner_id == practitioner_id)
        )
        if intervals:
            await self.db.execute(
                insert(WeeklyHours),
                [
                    {
                        "id": uuid.uuid4(),
                        "practitioner_id": practitioner_id,
                        "weekday": day,
                        "starts": starts,
                        "ends": ends,
                    }
                    for day, starts, ends in intervals
                ],
            )
        await self.db.commit()
        return await self.hours(practitioner_id)

    async def exceptions(
        self, practitioner_id: uuid.UUID, since: datetime.date | None = None
    ) -> list[AvailabilityException]:
        await self.practitioners.get(practitioner_id)
        query = select(AvailabilityException).where(
            AvailabilityException.practitioner_id == practitioner_id
        )
        if since is not None:
            query = query.where(AvailabilityException.day >= since)
        rows = await self.db.scalars(
            query.order_by(AvailabilityException.day, AvailabilityException.starts)
        )
        return list(rows)

    async def add_exception(
        self, practitioner_id: uuid.UUID, values: dict[str, Any]
    ) -> AvailabilityException:
        await self.practitioners.get(practitioner_id)
        starts, ends = values.get("starts"), values.get("ends")
        if (starts is None) != (ends is None):
            raise InvalidInput(
                "Give both starts and ends, or neither for a whole day off",
                [FieldError("ends" if ends is None else "starts", "is missing")],
            )
        if starts is None and values["kind"] == "extra":
            raise InvalidInput(
                "Extra hours need their times", [FieldError("starts", "is required for extra")]
            )
        if starts is not None and starts >= ends:
            raise InvalidInput(
                "The exception must start before it ends",
                [FieldError("ends", "is not after starts")],
            )
        exception = AvailabilityException(
            **{"reason": "", **values}, id=uuid.uuid4(), practitioner_id=practitioner_id
        )
        self.db.add(exception)
        await self.db.commit()
        return exception

    async def remove_exception(self, practitioner_id: uuid.UUID, exception_id: uuid.UUID) -> None:
        removed = await self.db.scalar(
            delete(AvailabilityException)
            .where(
                AvailabilityException.id == exception_id,
                AvailabilityException.practitioner_id == practitioner_id,
            )
            .returning(AvailabilityException.id)
        )
        if removed is None:
            raise NotFound("No such exception for this practitioner")
        await self.db.commit()


class Policies:
    def __init__(self, session: AsyncSession) -> None:
        self.db = session

    async def get(self) -> BookingPolicy:
        return await self.db.get_one(BookingPolicy, 1)

    async def update(self, values: dict[str, Any]) -> BookingPolicy:
        offsets = values.get("reminder_offsets_minutes")
        if offsets is not None and len(set(offsets)) != len(offsets):
            raise InvalidInput(
                "Each reminder offset may be given once",
                [FieldError("reminderOffsetsMinutes", "lists an offset twice")],
            )
        policy = await self.get()
        for name, value in values.items():
            setattr(policy, name, value)
        await self.db.commit()
        return policy
