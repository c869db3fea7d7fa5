"""The clinic whose address was called: its public facts, and its contact details."""

from __future__ import annotations

from litestar import Controller, get, patch, put
from litestar.di import NamedDependency
from litestar.params import JSONBody
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.clinic.models import ClinicProfile
from polyclinic.clinic.origins import set_allowed_origins
from polyclinic.clinic.schemas import AllowedOrigins, ClinicPublic, ProfileUpdate
from polyclinic.clinic.services import ClinicProfiles
from polyclinic.db.context import TenantInfo
from polyclinic.web.envelope import Envelope, ok
from polyclinic.web.openapi import CLINIC_PUBLIC, error_responses
from polyclinic.web.patching import sent_fields
from polyclinic.web.state import Runtime


def clinic_public(profile: ClinicProfile, clinic: TenantInfo) -> ClinicPublic:
    return ClinicPublic(
        name=profile.name,
        subdomain=clinic.slug,
        timezone=profile.timezone,
        phone=profile.phone,
        address=profile.address,
        contact_email=profile.contact_email,
    )


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
        return ok(clinic_public(await ClinicProfiles(clinic_db).get(), clinic))

    @patch(
        "/",
        summary="Set the clinic's phone, address and contact email",
        responses=error_responses(400, 401, 403, 422),
        opt={"permission": ("clinic", "manage")},
    )
    async def update_clinic(
        self,
        data: JSONBody[ProfileUpdate],
        clinic: NamedDependency[TenantInfo],
        clinic_db: NamedDependency[AsyncSession],
    ) -> Envelope[ClinicPublic]:
        profile = await ClinicProfiles(clinic_db).update(sent_fields(data))
        return ok(clinic_public(profile, clinic), "Clinic details saved")

    @get(
        "/allowed-origins",
        summary="The origins whose pages may call this clinic's API from a browser (CORS)",
        responses=error_responses(401, 403),
        opt={"permission": ("clinic", "manage")},
    )
    async def get_allowed_origins(
        self, clinic_db: NamedDependency[AsyncSession]
    ) -> Envelope[AllowedOrigins]:
        profile = await ClinicProfiles(clinic_db).get()
        return ok(AllowedOrigins(origins=list(profile.allowed_origins)))

    @put(
        "/allowed-origins",
        summary="Set the origins (https://host[:port], no wildcard or path) allowed by CORS",
        responses=error_responses(400, 401, 403, 422),
        opt={"permission": ("clinic", "manage")},
    )
    async def set_allowed_origins(
        self,
        data: JSONBody[AllowedOrigins],
        clinic: NamedDependency[TenantInfo],
        clinic_db: NamedDependency[AsyncSession],
        runtime: NamedDependency[Runtime],
    ) -> Envelope[AllowedOrigins]:
        origins = await set_allowed_origins(clinic_db, data.origins)
        runtime.clinic_origins.forget(clinic.id)
        return ok(AllowedOrigins(origins=origins), "Allowed origins saved")
