"""Patients as the clinic's staff see them; a patient sees only themself. Every patient a
page shows, and every record read, is an entry in the chart's audit trail (`audit`)."""

from __future__ import annotations

import uuid

from advanced_alchemy.filters import LimitOffset, OrderBy
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from sqlalchemy import func, or_
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.errors import NotFound
from polyclinic.identity.accounts.models import User
from polyclinic.identity.accounts.schemas import UserOut, user_out
from polyclinic.identity.permissions.phi import PatientDataTrail
from polyclinic.identity.permissions.roles import Role
from polyclinic.identity.staff.services import UserRepository
from polyclinic.web.envelope import Envelope, PagedEnvelope, ok, page
from polyclinic.web.openapi import error_responses
from polyclinic.web.paging import Limit, Offset

READ = ("patients", "read")


class PatientsController(Controller):
    path = "/patients"
    tags = ["clinic: patients"]

    @get(
        "/",
        summary="Patients, searchable by name or email",
        opt={"permission": ("patients", "list")},
        responses=error_responses(400, 401, 403),
    )
    async def list_patients(
        self,
        clinic_db: NamedDependency[AsyncSession],
        audit: NamedDependency[PatientDataTrail],
        q: FromQuery[str | None] = None,
        limit: Limit = 20,
        offset: Offset = 0,
    ) -> PagedEnvelope[UserOut]:
        filters: list = [
            LimitOffset(limit, offset),
            OrderBy("last_name", "asc"),
            User.role == Role.PATIENT,
        ]
        if q:
            pattern = f"%{q.strip().lower()}%"
            filters.append(
                or_(
                    func.lower(User.email).like(pattern),
                    func.lower(User.first_name + " " + User.last_name).like(pattern),
                )
            )
        rows, total = await UserRepository(session=clinic_db).get_many_and_count(*filters)
        await audit.listed("patient", [u.id for u in rows])
        return page([user_out(u) for u in rows], total=total, limit=limit, offset=offset)

    @get(
        "/{patient_id:uuid}",
        summary="One patient (a patient may read only themself)",
        opt={"permission": READ},
        responses=error_responses(400, 401, 403, 404),
    )
    async def get_patient(
        self,
        patient_id: FromPath[uuid.UUID],
        clinic_db: NamedDependency[AsyncSession],
        audit: NamedDependency[PatientDataTrail],
    ) -> Envelope[UserOut]:
        # Someone else's record answers like a missing one: its existence is not revealed.
        access = await audit.open_chart(patient_id, READ)
        patient = await clinic_db.get(User, patient_id)
        if patient is None or patient.role != Role.PATIENT:
            raise NotFound("No such patient")
        await audit.read("patient", patient_id, access=access)
        return ok(user_out(patient))
