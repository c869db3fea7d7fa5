"""Rooms and sites with their opening hours. A service that needs one books it along with
the practitioner: it must be open, and it holds one appointment at a time."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from advanced_alchemy.filters import LimitOffset, OrderBy
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.errors import Conflict, FieldError, NotFound
from polyclinic.scheduling.locations.models import Location, LocationHours
from polyclinic.scheduling.setup.availability import Interval, check_intervals


class LocationRepository(SQLAlchemyAsyncRepository[Location]):
    model_type = Location


class Locations:
    def __init__(self, session: AsyncSession) -> None:
        self.db = session
        self.repository = LocationRepository(session=session, auto_commit=False)

    async def list(
        self, *, active_only: bool, limit: int, offset: int
    ) -> tuple[list[Location], int]:
        filters: list[Any] = [LimitOffset(limit, offset), OrderBy("name", "asc")]
        if active_only:
            filters.append(Location.is_active.is_(True))
        rows, total = await self.repository.get_many_and_count(*filters)
        return list(rows), total

    async def get(self, location_id: uuid.UUID, *, lock: bool = False) -> Location:
        location = await self.db.get(Location, location_id, with_for_update=lock)
        if location is None:
            raise NotFound("No location with this id")
        return location

    async def create(self, values: dict[str, Any]) -> Location:
        location = Location(id=uuid.uuid4(), is_active=True, **values)
        self.db.add(location)
        await self._flush_unique_name()
        await self.db.commit()
        return location

    async def update(self, location_id: uuid.UUID, values: dict[str, Any]) -> Location:
        location = await self.get(location_id)
        for name, value in values.items():
            setattr(location, name, value)
        await self._flush_unique_name()
        await self.db.commit()
        return location

    async def hours(self, location_id: uuid.UUID) -> list[LocationHours]:
        await self.get(location_id)
        rows = await self.db.scalars(
            select(LocationHours)
            .where(LocationHours.location_id == location_id)
            .order_by(LocationHours.weekday, LocationHours.starts)
        )
        return list(rows)

    async def replace_hours(
        self, location_id: uuid.UUID, intervals: Sequence[Interval]
    ) -> list[LocationHours]:
        await self.get(location_id, lock=True)
        check_intervals(intervals)
        await self.db.execute(delete(LocationHours).where(LocationHours.location_id == location_id))
        if intervals:
            await self.db.execute(
                insert(LocationHours),
                [
                    {
                        "id": uuid.uuid4(),
                        "location_id": location_id,
                        "weekday": day,
                        "starts": starts,
                        "ends": ends,
                    }
                    for day, starts, ends in intervals
                ],
            )
        await self.db.commit()
        return await self.hours(location_id)

    async def _flush_unique_name(self) -> None:
        try:
            await self.db.flush()
        except IntegrityError:
            await self.db.rollback()
            raise Conflict(
                "Another location has this name", [FieldError("name", "is taken")]
            ) from None
