"""Self-service onboarding on the platform host: a clinic signs itself up, in trial."""

import asyncio
from typing import Annotated

import msgspec
from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_201_CREATED
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.identity.accounts.passwords import hash_password
from polyclinic.identity.accounts.services import check_new_password
from polyclinic.platform.controllers import clinic_out
from polyclinic.platform.lifecycle import clinic_provisioner
from polyclinic.platform.schemas import ClinicOut, Email
from polyclinic.tenancy.models import Tenant
from polyclinic.tenancy.naming import clinic_url, subdomain_problem
from polyclinic.tenancy.provisioning import NewClinic
from polyclinic.web.envelope import Envelope, ok
from polyclinic.web.openapi import error_responses, published_as
from polyclinic.web.state import Runtime


class SignupRequest(msgspec.Struct, rename="camel"):
    clinic_name: Annotated[str, msgspec.Meta(pattern=r"\S", max_length=200)]
    subdomain: Annotated[str, msgspec.Meta(min_length=1, max_length=63)]
    timezone: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    admin_email: Email
    admin_password: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
    plan_code: Annotated[str, msgspec.Meta(max_length=40)] | None = None


@published_as("polyclinic.billing.signup")
class SignedUp(msgspec.Struct, rename="camel"):
    clinic: ClinicOut
    url: str


@published_as("polyclinic.billing.signup")
class SubdomainCheck(msgspec.Struct, rename="camel"):
    subdomain: str
    available: bool
    reason: str | None = None


class SignupController(Controller):
    path = "/platform/v1"
    tags = ["platform: signup"]

    @post(
        "/signup",
        status_code=HTTP_201_CREATED,
        summary="Sign a clinic up: it starts in trial, its admin can sign in at once",
        responses=error_responses(400, 409, 422, 429),
    )
    async def signup(
        self, data: JSONBody[SignupRequest], runtime: NamedDependency[Runtime]
    ) -> Envelope[SignedUp]:
        check_new_password(data.admin_password, "adminPassword")
        provisioner = clinic_provisioner(runtime.engine, runtime.settings, mail=runtime.mail)
        tenant = await provisioner.create(
            NewClinic(
                name=data.clinic_name.strip(),
                subdomain=data.subdomain,
                timezone=data.timezone,
                admin_email=data.admin_email.strip().lower(),
                plan_code=data.plan_code,
                admin_password_hash=await asyncio.to_thread(hash_password, data.admin_password),
            )
        )
        await runtime.resolver.invalidate()
        url = clinic_url(provisioner.settings, tenant.slug)
        return ok(SignedUp(clinic=clinic_out(tenant), url=url), "Welcome", HTTP_201_CREATED)

    @get(
        "/subdomains/{subdomain:str}",
        summary="Whether a subdomain is valid and free",
        responses=error_responses(400),
    )
    async def check_subdomain(
        self,
        subdomain: FromPath[str],
        platform_db: NamedDependency[AsyncSession],
        runtime: NamedDependency[Runtime],
    ) -> Envelope[SubdomainCheck]:
        problem = subdomain_problem(subdomain, runtime.settings.platform_subdomains)
        if problem is None:
            taken = await platform_db.scalar(select(Tenant.id).where(Tenant.slug == subdomain))
            problem = "is already taken" if taken else None
        return ok(SubdomainCheck(subdomain=subdomain, available=problem is None, reason=problem))
