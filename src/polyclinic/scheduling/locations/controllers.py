"""Rooms and sites, and their opening hours."""

from __future__ import annotations

import uuid

from litestar import Controller, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_201_CREATED
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.identity.permissions.guards import Principal
from polyclinic.identity.permissions.roles import Role
from polyclinic.scheduling.locations.schemas import (
    LocationCreate,
    LocationOut,
    LocationUpdate,
    location_out,
)
from polyclinic.scheduling.locations.services import Locations
from polyclinic.scheduling.setup.schemas import HoursInterval, WeeklyHoursIn, clock, hours_out
from polyclinic.web.envelope import Envelope, PagedEnvelope, ok, page
from polyclinic.web.openapi import error_responses
from polyclinic.web.paging import Limit, Offset
from polyclinic.web.patching import sent_fields

READ = error_responses(400, 401, 403, 404)
WRITE = error_responses(400, 401, 403, 404, 409, 422)


class LocationsController(Controller):
    path = "/locations"
    tags = ["clinic: scheduling"]

    @get(
        "/",
        summary="Rooms and sites (patients see the open ones)",
        responses=READ,
        opt={"permission": ("locations", "read")},
    )
    async def list_locations(
        self,
        clinic_db: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> PagedEnvelope[LocationOut]:
        rows, total = await Locations(clinic_db).list(
            active_only=principal.role == Role.PATIENT, limit=limit, offset=offset
        )
        return page([location_out(r) for r in rows], total=total, limit=limit, offset=offset)

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        summary="Add a room or a site",
        responses=WRITE,
        opt={"permission": ("locations", "manage")},
    )
    async def create_location(
        self, data: JSONBody[LocationCreate], clinic_db: NamedDependency[AsyncSession]
    ) -> Envelope[LocationOut]:
        location = await Locations(clinic_db).create(sent_fields(data))
        return ok(location_out(location), "Location added", HTTP_201_CREATED)

    @patch(
        "/{location_id:uuid}",
        summary="Change or close a location",
        responses=WRITE,
        opt={"permission": ("locations", "manage")},
    )
    async def update_location(
        self,
        location_id: FromPath[uuid.UUID],
        data: JSONBody[LocationUpdate],
        clinic_db: NamedDependency[AsyncSession],
    ) -> Envelope[LocationOut]:
        location = await Locations(clinic_db).update(location_id, sent_fields(data))
        return ok(location_out(location), "Location saved")

    @get(
        "/{location_id:uuid}/hours",
        summary="A location's weekly opening hours",
        responses=READ,
        opt={"permission": ("locations", "read")},
    )
    async def opening_hours(
        self, location_id: FromPath[uuid.UUID], clinic_db: NamedDependency[AsyncSession]
    ) -> Envelope[list[HoursInterval]]:
        return ok(hours_out(await Locations(clinic_db).hours(location_id)))

    @put(
        "/{location_id:uuid}/hours",
        summary="Replace a location's weekly opening hours (in the clinic's time zone)",
        responses=WRITE,
        opt={"permission": ("locations", "manage")},
    )
    async def replace_opening_hours(
        self,
        location_id: FromPath[uuid.UUID],
        data: JSONBody[WeeklyHoursIn],
        clinic_db: NamedDependency[AsyncSession],
    ) -> Envelope[list[HoursInterval]]:
        intervals = [(h.weekday, clock(h.starts), clock(h.ends)) for h in data.hours]
        rows = await Locations(clinic_db).replace_hours(location_id, intervals)
        return ok(hours_out(rows), "Opening hours saved")
