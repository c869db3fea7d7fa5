"""Super-admin API on the platform host: sign-in, two-factor, clinics and their domains."""

from __future__ import annotations

import uuid

from litestar import Controller, Request, delete, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.identity.mfa.schemas import (
    DisableMfaRequest,
    MfaCodeRequest,
    MfaEnabledOut,
    MfaSetupOut,
)
from polyclinic.identity.sessions.throttle import LoginThrottle
from polyclinic.platform.dependencies import PLATFORM_DEPENDENCIES
from polyclinic.platform.guards import require_super_admin
from polyclinic.platform.mfa import PlatformMfa, must_enrol
from polyclinic.platform.models import PlatformLoginFailure, PlatformUser
from polyclinic.platform.schemas import (
    AccessToken,
    ClinicCreate,
    ClinicOut,
    DomainCreate,
    DomainOut,
    LoginRequest,
)
from polyclinic.platform.services import PlatformUsers
from polyclinic.tenancy.domains import ClinicDomains
from polyclinic.tenancy.models import Domain, Tenant, TenantStatus
from polyclinic.tenancy.provisioning import NewClinic, Provisioner
from polyclinic.tenancy.services import ClinicRegistry
from polyclinic.web.caller import client_ip
from polyclinic.web.envelope import Envelope, PagedEnvelope, ok, page
from polyclinic.web.openapi import PLATFORM_READ, PLATFORM_WRITE, error_responses
from polyclinic.web.paging import Limit, Offset
from polyclinic.web.state import Runtime
from polyclinic.web.tokens import PLATFORM_AUDIENCE

ENROLMENT = {"mfa_enrolment": True}


def clinic_out(tenant: Tenant) -> ClinicOut:
    return ClinicOut(
        id=tenant.id,
        name=tenant.name,
        subdomain=tenant.slug,
        status=str(tenant.status),
        timezone=tenant.timezone,
        admin_email=tenant.admin_email,
        schema_version=tenant.schema_version,
        last_error=tenant.last_error,
        created_at=tenant.created_at,
        updated_at=tenant.updated_at,
        deleted_at=tenant.deleted_at,
        suspended_by=tenant.suspended_by,
        suspension_reason=tenant.suspension_reason,
    )


def domain_out(domain: Domain) -> DomainOut:
    return DomainOut(
        id=domain.id, host=domain.host, is_primary=domain.is_primary, created_at=domain.created_at
    )


class PlatformAuthController(Controller):
    path = "/platform/v1/auth"
    tags = ["platform: auth"]
    dependencies = PLATFORM_DEPENDENCIES

    @post(
        "/login",
        status_code=HTTP_200_OK,
        summary="Sign in as a super-admin",
        responses=error_responses(400, 401, 403, 422, 429),
    )
    async def login(
        self,
        request: Request,
        data: JSONBody[LoginRequest],
        platform_db: NamedDependency[AsyncSession],
        runtime: NamedDependency[Runtime],
    ) -> Envelope[AccessToken]:
        throttle = LoginThrottle(platform_db, PlatformLoginFailure, runtime.settings)
        user = await PlatformUsers(platform_db).sign_in(
            data.email, data.password, data.totp, throttle, client_ip(request), runtime.settings
        )
        token = runtime.signer.issue(user.id, PLATFORM_AUDIENCE, role="super_admin")
        signed_in = AccessToken(
            access_token=token,
            expires_in=runtime.signer.ttl,
            mfa_enrolment_required=must_enrol(user, runtime.settings),
        )
        return ok(signed_in, "Signed in")

    @post(
        "/mfa/setup",
        status_code=HTTP_200_OK,
        summary="Start two-factor sign-in: a new secret for the authenticator app",
        guards=[require_super_admin],
        opt=ENROLMENT,
        responses=PLATFORM_WRITE,
    )
    async def mfa_setup(
        self, platform_mfa: NamedDependency[PlatformMfa], admin: NamedDependency[PlatformUser]
    ) -> Envelope[MfaSetupOut]:
        secret, uri = await platform_mfa.setup(admin)
        return ok(MfaSetupOut(secret=secret, otpauth_uri=uri), "Scan it, then confirm a code")

    @post(
        "/mfa/enable",
        status_code=HTTP_200_OK,
        summary="Confirm a code; turns two-factor sign-in on and returns recovery codes once",
        guards=[require_super_admin],
        opt=ENROLMENT,
        responses=PLATFORM_WRITE,
    )
    async def mfa_enable(
        self,
        data: JSONBody[MfaCodeRequest],
        platform_mfa: NamedDependency[PlatformMfa],
        admin: NamedDependency[PlatformUser],
    ) -> Envelope[MfaEnabledOut]:
        codes = await platform_mfa.enable(admin, data.code)
        return ok(MfaEnabledOut(recovery_codes=codes), "Two-factor sign-in is on")

    @post(
        "/mfa/disable",
        status_code=HTTP_200_OK,
        summary="Turn two-factor sign-in off",
        guards=[require_super_admin],
        responses=error_responses(400, 401, 403, 404, 409, 422, 429),
    )
    async def mfa_disable(
        self,
        request: Request,
        data: JSONBody[DisableMfaRequest],
        platform_db: NamedDependency[AsyncSession],
        platform_mfa: NamedDependency[PlatformMfa],
        admin: NamedDependency[PlatformUser],
        runtime: NamedDependency[Runtime],
    ) -> Envelope[None]:
        throttle = LoginThrottle(platform_db, PlatformLoginFailure, runtime.settings)
        await PlatformUsers(platform_db).confirm_password(
            admin, data.password, throttle, client_ip(request)
        )
        await platform_mfa.disable(admin, data.code)
        return ok(None, "Two-factor sign-in is off")


class ClinicsController(Controller):
    path = "/platform/v1/clinics"
    tags = ["platform: clinics"]
    guards = [require_super_admin]
    security = [{"BearerToken": []}]
    dependencies = PLATFORM_DEPENDENCIES

    @post("/", status_code=HTTP_201_CREATED, summary="Create a clinic", responses=PLATFORM_WRITE)
    async def create_clinic(
        self,
        data: JSONBody[ClinicCreate],
        provisioner: NamedDependency[Provisioner],
        runtime: NamedDependency[Runtime],
    ) -> Envelope[ClinicOut]:
        tenant = await provisioner.create(
            NewClinic(
                name=data.name.strip(),
                subdomain=data.subdomain,
                timezone=data.timezone,
                admin_email=data.admin_email.strip().lower(),
            ),
            by_operator=True,
        )
        await runtime.resolver.invalidate()
        return ok(clinic_out(tenant), "Clinic created", HTTP_201_CREATED)

    @get("/", summary="List clinics", responses=PLATFORM_READ)
    async def list_clinics(
        self,
        registry: NamedDependency[ClinicRegistry],
        status: FromQuery[TenantStatus | None] = None,
        limit: Limit = 20,
        offset: Offset = 0,
    ) -> PagedEnvelope[ClinicOut]:
        tenants, total = await registry.list(status=status, limit=limit, offset=offset)
        return page([clinic_out(t) for t in tenants], total=total, limit=limit, offset=offset)

    @get("/{clinic_id:uuid}", summary="Get a clinic", responses=PLATFORM_READ)
    async def get_clinic(
        self, clinic_id: FromPath[uuid.UUID], registry: NamedDependency[ClinicRegistry]
    ) -> Envelope[ClinicOut]:
        return ok(clinic_out(await registry.get(clinic_id)))

    @post(
        "/{clinic_id:uuid}/suspend",
        status_code=HTTP_200_OK,
        summary="Suspend a clinic",
        responses=PLATFORM_WRITE,
    )
    async def suspend_clinic(
        self, clinic_id: FromPath[uuid.UUID], registry: NamedDependency[ClinicRegistry]
    ) -> Envelope[ClinicOut]:
        return ok(clinic_out(await registry.suspend(clinic_id)), "Clinic suspended")

    @post(
        "/{clinic_id:uuid}/reactivate",
        status_code=HTTP_200_OK,
        summary="Reactivate a clinic",
        responses=PLATFORM_WRITE,
    )
    async def reactivate_clinic(
        self, clinic_id: FromPath[uuid.UUID], registry: NamedDependency[ClinicRegistry]
    ) -> Envelope[ClinicOut]:
        return ok(clinic_out(await registry.reactivate(clinic_id)), "Clinic reactivated")

    @post(
        "/{clinic_id:uuid}/retry",
        status_code=HTTP_200_OK,
        summary="Retry a failed provisioning",
        responses=PLATFORM_WRITE,
    )
    async def retry_clinic(
        self,
        clinic_id: FromPath[uuid.UUID],
        provisioner: NamedDependency[Provisioner],
        runtime: NamedDependency[Runtime],
    ) -> Envelope[ClinicOut]:
        tenant = await provisioner.build(clinic_id)
        await runtime.resolver.invalidate()
        return ok(clinic_out(tenant), "Clinic provisioned")

    @delete(
        "/{clinic_id:uuid}",
        status_code=HTTP_200_OK,
        summary="Delete a clinic (soft; `polyclinic tenants purge` removes its data)",
        responses=PLATFORM_WRITE,
    )
    async def delete_clinic(
        self, clinic_id: FromPath[uuid.UUID], registry: NamedDependency[ClinicRegistry]
    ) -> Envelope[ClinicOut]:
        return ok(clinic_out(await registry.delete(clinic_id)), "Clinic deleted")


class ClinicDomainsController(Controller):
    path = "/platform/v1/clinics/{clinic_id:uuid}/domains"
    tags = ["platform: clinics"]
    guards = [require_super_admin]
    security = [{"BearerToken": []}]
    dependencies = PLATFORM_DEPENDENCIES

    @get("/", summary="A clinic's hosts", responses=PLATFORM_READ)
    async def list_domains(
        self, clinic_id: FromPath[uuid.UUID], domains: NamedDependency[ClinicDomains]
    ) -> Envelope[list[DomainOut]]:
        return ok([domain_out(d) for d in await domains.list(clinic_id)])

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        summary="Add a custom domain to a clinic",
        responses=PLATFORM_WRITE,
    )
    async def add_domain(
        self,
        clinic_id: FromPath[uuid.UUID],
        data: JSONBody[DomainCreate],
        domains: NamedDependency[ClinicDomains],
    ) -> Envelope[DomainOut]:
        domain = await domains.add(clinic_id, data.host)
        return ok(domain_out(domain), "Domain added", HTTP_201_CREATED)

    @delete(
        "/{domain_id:uuid}",
        status_code=HTTP_200_OK,
        summary="Remove a custom domain",
        responses=PLATFORM_WRITE,
    )
    async def remove_domain(
        self,
        clinic_id: FromPath[uuid.UUID],
        domain_id: FromPath[uuid.UUID],
        domains: NamedDependency[ClinicDomains],
    ) -> Envelope[None]:
        await domains.remove(clinic_id, domain_id)
        return ok(None, "Domain removed")
