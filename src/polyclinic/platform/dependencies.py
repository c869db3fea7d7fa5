"""Platform services, built per request and injected by name."""

from __future__ import annotations

from litestar import Request
from litestar.di import NamedDependency, Provide
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.errors import Unauthorized
from polyclinic.platform.lifecycle import clinic_lifecycle, clinic_provisioner
from polyclinic.platform.mfa import PlatformMfa
from polyclinic.platform.models import PlatformUser
from polyclinic.platform.services import PlatformUsers
from polyclinic.tenancy.domains import ClinicDomains
from polyclinic.tenancy.provisioning import Provisioner
from polyclinic.tenancy.services import ClinicRegistry
from polyclinic.web.state import Runtime


async def provide_registry(
    platform_db: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime]
) -> ClinicRegistry:
    lifecycle = clinic_lifecycle(runtime.engine, runtime.settings, runtime.mail)
    return ClinicRegistry(platform_db, runtime.resolver, lifecycle)


async def provide_provisioner(runtime: NamedDependency[Runtime]) -> Provisioner:
    return clinic_provisioner(runtime.engine, runtime.settings, mail=runtime.mail)


async def provide_domains(
    platform_db: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime]
) -> ClinicDomains:
    return ClinicDomains(platform_db, runtime.resolver, runtime.settings)


async def provide_platform_mfa(
    platform_db: NamedDependency[AsyncSession], runtime: NamedDependency[Runtime]
) -> PlatformMfa:
    return PlatformMfa(platform_db, runtime.settings)


async def provide_admin(
    request: Request, platform_db: NamedDependency[AsyncSession]
) -> PlatformUser:
    """The super-admin the guard let through, loaded in this request's session."""
    user = await PlatformUsers(platform_db).get_active(request.scope["state"]["platform_user_id"])
    if user is None:
        raise Unauthorized("This account can no longer use the platform API")
    return user


PLATFORM_DEPENDENCIES = {
    "registry": Provide(provide_registry),
    "provisioner": Provide(provide_provisioner),
    "domains": Provide(provide_domains),
    "platform_mfa": Provide(provide_platform_mfa),
    "admin": Provide(provide_admin),
}
