"""Services (appointment types) and which practitioners offer them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from advanced_alchemy.filters import LimitOffset, OrderBy
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.billing.features import require_feature
from polyclinic.db.session import clinic_of
from polyclinic.errors import Conflict, FieldError, InvalidInput, NotFound
from polyclinic.scheduling.locations.models import Location
from polyclinic.scheduling.setup.models import Practitioner, Service, ServicePractitioner


class ServiceRepository(SQLAlchemyAsyncRepository[Service]):
    model_type = Service


class Catalog:
    def __init__(self, session: AsyncSession) -> None:
        self.db = session
        self.repository = ServiceRepository(session=session, auto_commit=False)

    async def list(
        self, *, active_only: bool, limit: int, offset: int
    ) -> tuple[list[tuple[Service, list[uuid.UUID]]], int]:
        filters: list[Any] = [LimitOffset(limit, offset), OrderBy("name", "asc")]
        if active_only:
            filters.append(Service.is_active.is_(True))
        rows, total = await self.repository.get_many_and_count(*filters)
        offered = await self._offered_by([s.id for s in rows])
        return [(s, offered.get(s.id, [])) for s in rows], total

    async def get(self, service_id: uuid.UUID) -> tuple[Service, list[uuid.UUID]]:
        service = await self.repository.get_one_or_none(id=service_id)
        if service is None:
            raise NotFound("No service with this id")
        return service, (await self._offered_by([service.id])).get(service.id, [])

    async def create(
        self, values: dict[str, Any], practitioner_ids: Sequence[uuid.UUID]
    ) -> tuple[Service, list[uuid.UUID]]:
        await self._check_location(values.get("location_id"))
        await self._check_mode(values.get("mode"))
        service = Service(id=uuid.uuid4(), is_active=True, **values)
        self.db.add(service)
        await self._flush_unique_name()
        await self._offer(service.id, practitioner_ids)
        await self.db.commit()
        return service, list(practitioner_ids)

    async def update(
        self,
        service_id: uuid.UUID,
        values: dict[str, Any],
        practitioner_ids: Sequence[uuid.UUID] | None,
    ) -> tuple[Service, list[uuid.UUID]]:
        service, offered = await self.get(service_id)
        await self._check_location(values.get("location_id"))
        await self._check_mode(values.get("mode"))
        for name, value in values.items():
            setattr(service, name, value)
        await self._flush_unique_name()
        if practitioner_ids is not None:
            await self.db.execute(
                delete(ServicePractitioner).where(ServicePractitioner.service_id == service_id)
            )
            await self._offer(service_id, practitioner_ids)
            offered = list(practitioner_ids)
        await self.db.commit()
        return service, offered

    async def _check_mode(self, mode: str | None) -> None:
        if mode == "video":
            await require_feature(self.db, clinic_of(self.db).id, "videoVisits")

    async def _check_location(self, location_id: uuid.UUID | None) -> None:
        if location_id is not None and await self.db.get(Location, location_id) is None:
            raise InvalidInput(
                "No location with this id", [FieldError("locationId", "does not exist")]
            )

    async def _flush_unique_name(self) -> None:
        try:
            await self.db.flush()
        except IntegrityError:
            await self.db.rollback()
            raise Conflict(
                "Another service has this name", [FieldError("name", "is taken")]
            ) from None

    async def _offer(self, service_id: uuid.UUID, practitioner_ids: Sequence[uuid.UUID]) -> None:
        wanted = set(practitioner_ids)
        if not wanted:
            return
        known = set(
            await self.db.scalars(select(Practitioner.id).where(Practitioner.id.in_(wanted)))
        )
        if unknown := wanted - known:
            await self.db.rollback()
            raise InvalidInput(
                f"No practitioner with the id {sorted(map(str, unknown))[0]}",
                [FieldError("practitionerIds", "names someone who is not a practitioner here")],
            )
        await self.db.execute(
            insert(ServicePractitioner),
            [{"service_id": service_id, "practitioner_id": p} for p in wanted],
        )

    async def _offered_by(self, service_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
        if not service_ids:
            return {}
        rows = await self.db.execute(
            select(ServicePractitioner.service_id, ServicePractitioner.practitioner_id).where(
                ServicePractitioner.service_id.in_(service_ids)
            )
        )
        offered: dict[uuid.UUID, list[uuid.UUID]] = {}
        for service_id, practitioner_id in rows:
            offered.setdefault(service_id, []).append(practitioner_id)
        return offered
