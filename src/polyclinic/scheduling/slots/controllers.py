"""Bookable start times of a practitioner for a service, under /api/v1/slots."""

from __future__ import annotations

import datetime
import uuid
from typing import Annotated

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromQuery, Parameter
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.db.context import TenantInfo
from polyclinic.identity.permissions.guards import Principal
from polyclinic.scheduling.appointments.booking import Desk
from polyclinic.scheduling.appointments.controllers import READ
from polyclinic.scheduling.slots.schemas import SlotsOut, slots_out
from polyclinic.web.envelope import Envelope, ok
from polyclinic.web.state import Runtime


class SlotsController(Controller):
    path = "/slots"
    tags = ["clinic: appointments"]

    @get(
        "/",
        summary="Bookable start times of a practitioner for a service, in UTC and local time",
        description="`from` and `to` are local dates in the clinic's zone, both included "
        "(at most 62 days). Existing bookings, buffers, exceptions and the booking policy "
        "are honoured; patients also keep to the minimum notice.",
        responses=READ,
        opt={"permission": ("slots", "read")},
    )
    async def list_slots(
        self,
        practitioner_id: Annotated[uuid.UUID, Parameter(query="practitionerId")],
        service_id: Annotated[uuid.UUID, Parameter(query="serviceId")],
        from_: Annotated[datetime.date, Parameter(query="from")],
        to: FromQuery[datetime.date],
        clinic_db: NamedDependency[AsyncSession],
        clinic: NamedDependency[TenantInfo],
        runtime: NamedDependency[Runtime],
        principal: NamedDependency[Principal],
    ) -> Envelope[SlotsOut]:
        desk = Desk(clinic_db, clinic, runtime.settings, principal)
        slots = await desk.slots(practitioner_id, service_id, from_, to)
        return ok(slots_out(slots, desk.zone, practitioner_id, service_id))
