"""Public facts about the clinic whose address was called."""

from __future__ import annotations

from litestar import Controller, get
from litestar.di import NamedDependency
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.clinic.schemas import ClinicPublic
from polyclinic.clinic.services import ClinicProfiles
from polyclinic.tenancy.context import TenantInfo
from polyclinic.web.envelope import Envelope, ok
from polyclinic.web.openapi import CLINIC_PUBLIC


class ClinicController(Controller):
    path = "/clinic"
    tags = ["clinic"]

    @get(
        "/",
        summary="The clinic at this address (public)",
        responses=CLINIC_PUBLIC,
        opt={"permission": ("clinic", "read")},
    )
    async def get_clinic(
        self, clinic: NamedDependency[TenantInfo], clinic_db: NamedDependency[AsyncSession]
    ) -> Envelope[ClinicPublic]:
        profile = await ClinicProfiles(clinic_db).get()
        return ok(ClinicPublic(name=profile.name, subdomain=clinic.slug, timezone=profile.timezone))
