"""The scheduling set-up API: practitioners, services, weekly hours, exceptions, policy."""

from __future__ import annotations

import datetime
import uuid

from litestar import Controller, delete, get, patch, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.db.context import TenantInfo
from polyclinic.identity.permissions.guards import Principal
from polyclinic.identity.permissions.roles import Role
from polyclinic.scheduling.setup.availability import Availability, Policies
from polyclinic.scheduling.setup.catalog import Catalog
from polyclinic.scheduling.setup.practitioners import Practitioners
from polyclinic.scheduling.setup.schemas import (
    ExceptionCreate,
    ExceptionOut,
    HoursInterval,
    PolicyOut,
    PolicyUpdate,
    PractitionerCreate,
    PractitionerOut,
    PractitionerUpdate,
    ServiceCreate,
    ServiceOut,
    ServiceUpdate,
    WeeklyHoursIn,
    clock,
    exception_out,
    hours_out,
    policy_out,
    practitioner_out,
    service_out,
)
from polyclinic.web.envelope import Envelope, PagedEnvelope, ok, page
from polyclinic.web.openapi import error_responses
from polyclinic.web.paging import Limit, Offset
from polyclinic.web.patching import sent_fields

READ = error_responses(400, 401, 403, 404)
WRITE = error_responses(400, 401, 402, 403, 404, 409, 422)


class PractitionersController(Controller):
    path = "/practitioners"
    tags = ["clinic: scheduling"]

    @get(
        "/",
        summary="Practitioners (patients see the verified, active ones)",
        responses=READ,
        opt={"permission": ("practitioners", "read")},
    )
    async def list_practitioners(
        self,
        clinic_db: NamedDependency[AsyncSession],
        clinic: NamedDependency[TenantInfo],
        principal: NamedDependency[Principal],
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> PagedEnvelope[PractitionerOut]:
        rows, total = await Practitioners(clinic_db, clinic.id).list(
            verified_only=principal.role == Role.PATIENT, limit=limit, offset=offset
        )
        return page([practitioner_out(p) for p in rows], total=total, limit=limit, offset=offset)

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        summary="Make a doctor or nurse a practitioner (within the plan's limit)",
        responses=WRITE,
        opt={"permission": ("practitioners", "manage")},
    )
    async def create_practitioner(
        self,
        data: JSONBody[PractitionerCreate],
        clinic_db: NamedDependency[AsyncSession],
        clinic: NamedDependency[TenantInfo],
    ) -> Envelope[PractitionerOut]:
        values = sent_fields(data)
        practitioner = await Practitioners(clinic_db, clinic.id).create(data.user_id, values)
        return ok(practitioner_out(practitioner), "Practitioner added", HTTP_201_CREATED)

    @patch(
        "/{practitioner_id:uuid}",
        summary="Change a practitioner's profile",
        responses=WRITE,
        opt={"permission": ("practitioners", "manage")},
    )
    async def update_practitioner(
        self,
        practitioner_id: FromPath[uuid.UUID],
        data: JSONBody[PractitionerUpdate],
        clinic_db: NamedDependency[AsyncSession],
        clinic: NamedDependency[TenantInfo],
    ) -> Envelope[PractitionerOut]:
        practitioner = await Practitioners(clinic_db, clinic.id).update(
            practitioner_id, sent_fields(data)
        )
        return ok(practitioner_out(practitioner), "Practitioner saved")

    @post(
        "/{practitioner_id:uuid}/verify",
        status_code=HTTP_200_OK,
        summary="Verify a practitioner: from now on they can be booked",
        responses=WRITE,
        opt={"permission": ("practitioners", "manage")},
    )
    async def verify_practitioner(
        self,
        practitioner_id: FromPath[uuid.UUID],
        clinic_db: NamedDependency[AsyncSession],
        clinic: NamedDependency[TenantInfo],
    ) -> Envelope[PractitionerOut]:
        practitioner = await Practitioners(clinic_db, clinic.id).verify(practitioner_id)
        return ok(practitioner_out(practitioner), "Practitioner verified")

    @get(
        "/{practitioner_id:uuid}/hours",
        summary="A practitioner's weekly hours, in the clinic's time zone",
        responses=READ,
        opt={"permission": ("availability", "read")},
    )
    async def weekly_hours(
        self,
        practitioner_id: FromPath[uuid.UUID],
        clinic_db: NamedDependency[AsyncSession],
        clinic: NamedDependency[TenantInfo],
    ) -> Envelope[list[HoursInterval]]:
        return ok(hours_out(await Availability(clinic_db, clinic.id).hours(practitioner_id)))

    @put(
        "/{practitioner_id:uuid}/hours",
        summary="Replace a practitioner's weekly hours (gaps within a day are breaks)",
        responses=WRITE,
        opt={"permission": ("availability", "manage")},
    )
    async def replace_weekly_hours(
        self,
        practitioner_id: FromPath[uuid.UUID],
        data: JSONBody[WeeklyHoursIn],
        clinic_db: NamedDependency[AsyncSession],
        clinic: NamedDependency[TenantInfo],
    ) -> Envelope[list[HoursInterval]]:
        intervals = [(h.weekday, clock(h.starts), clock(h.ends)) for h in data.hours]
        rows = await Availability(clinic_db, clinic.id).replace_hours(practitioner_id, intervals)
        return ok(hours_out(rows), "Weekly hours saved")

    @get(
        "/{practitioner_id:uuid}/exceptions",
        summary="Time off and extra hours from a date on (today by default)",
        responses=READ,
        opt={"permission": ("availability", "read")},
    )
    async def list_exceptions(
        self,
        practitioner_id: FromPath[uuid.UUID],
        clinic_db: NamedDependency[AsyncSession],
        clinic: NamedDependency[TenantInfo],
        since: FromQuery[datetime.date | None] = None,
    ) -> Envelope[list[ExceptionOut]]:
        rows = await Availability(clinic_db, clinic.id).exceptions(practitioner_id, since)
        return ok([exception_out(e) for e in rows])

    @post(
        "/{practitioner_id:uuid}/exceptions",
        status_code=HTTP_201_CREATED,
        summary="Add time off (a whole day without times) or extra hours on a date",
        responses=WRITE,
        opt={"permission": ("availability", "manage")},
    )
    async def add_exception(
        self,
        practitioner_id: FromPath[uuid.UUID],
        data: JSONBody[ExceptionCreate],
        clinic_db: NamedDependency[AsyncSession],
        clinic: NamedDependency[TenantInfo],
    ) -> Envelope[ExceptionOut]:
        values = {
            "day": data.day,
            "kind": data.kind,
            "starts": clock(data.starts) if data.starts else None,
            "ends": clock(data.ends) if data.ends else None,
            "reason": data.reason,
        }
        exception = await Availability(clinic_db, clinic.id).add_exception(practitioner_id, values)
        return ok(exception_out(exception), "Exception added", HTTP_201_CREATED)

    @delete(
        "/{practitioner_id:uuid}/exceptions/{exception_id:uuid}",
        status_code=HTTP_200_OK,
        summary="Remove an exception",
        responses=WRITE,
        opt={"permission": ("availability", "manage")},
    )
    async def remove_exception(
        self,
        practitioner_id: FromPath[uuid.UUID],
        exception_id: FromPath[uuid.UUID],
        clinic_db: NamedDependency[AsyncSession],
        clinic: NamedDependency[TenantInfo],
    ) -> Envelope[None]:
        await Availability(clinic_db, clinic.id).remove_exception(practitioner_id, exception_id)
        return ok(None, "Exception removed")


class ServicesController(Controller):
    path = "/services"
    tags = ["clinic: scheduling"]

    @get(
        "/",
        summary="Services (patients see the active ones)",
        responses=READ,
        opt={"permission": ("services", "read")},
    )
    async def list_services(
        self,
        clinic_db: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> PagedEnvelope[ServiceOut]:
        rows, total = await Catalog(clinic_db).list(
            active_only=principal.role == Role.PATIENT, limit=limit, offset=offset
        )
        return page([service_out(*r) for r in rows], total=total, limit=limit, offset=offset)

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        summary="Create a service and say who offers it",
        responses=WRITE,
        opt={"permission": ("services", "manage")},
    )
    async def create_service(
        self, data: JSONBody[ServiceCreate], clinic_db: NamedDependency[AsyncSession]
    ) -> Envelope[ServiceOut]:
        values = sent_fields(data)
        practitioner_ids = values.pop("practitioner_ids", [])
        created = await Catalog(clinic_db).create(values, practitioner_ids)  # type: ignore[arg-type]
        return ok(service_out(*created), "Service created", HTTP_201_CREATED)

    @get(
        "/{service_id:uuid}",
        summary="A service",
        responses=READ,
        opt={"permission": ("services", "read")},
    )
    async def get_service(
        self, service_id: FromPath[uuid.UUID], clinic_db: NamedDependency[AsyncSession]
    ) -> Envelope[ServiceOut]:
        return ok(service_out(*await Catalog(clinic_db).get(service_id)))

    @patch(
        "/{service_id:uuid}",
        summary="Change a service; `practitionerIds` replaces who offers it",
        responses=WRITE,
        opt={"permission": ("services", "manage")},
    )
    async def update_service(
        self,
        service_id: FromPath[uuid.UUID],
        data: JSONBody[ServiceUpdate],
        clinic_db: NamedDependency[AsyncSession],
    ) -> Envelope[ServiceOut]:
        values = sent_fields(data)
        practitioner_ids = values.pop("practitioner_ids", None)
        updated = await Catalog(clinic_db).update(service_id, values, practitioner_ids)  # type: ignore[arg-type]
        return ok(service_out(*updated), "Service saved")


class BookingPolicyController(Controller):
    path = "/booking-policy"
    tags = ["clinic: scheduling"]

    @get(
        "/",
        summary="The clinic's booking policy",
        responses=READ,
        opt={"permission": ("booking_policy", "read")},
    )
    async def get_policy(self, clinic_db: NamedDependency[AsyncSession]) -> Envelope[PolicyOut]:
        return ok(policy_out(await Policies(clinic_db).get()))

    @patch(
        "/",
        summary="Change the booking policy",
        responses=WRITE,
        opt={"permission": ("booking_policy", "manage")},
    )
    async def update_policy(
        self, data: JSONBody[PolicyUpdate], clinic_db: NamedDependency[AsyncSession]
    ) -> Envelope[PolicyOut]:
        return ok(policy_out(await Policies(clinic_db).update(sent_fields(data))), "Policy saved")
