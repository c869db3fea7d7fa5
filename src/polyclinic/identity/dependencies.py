"""The identity services, built per request for the clinic at hand and injected by name."""

from __future__ import annotations

import logging

from litestar import Request
from litestar.di import NamedDependency, Provide
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.db.context import TenantInfo
from polyclinic.db.session import clinic_session
from polyclinic.errors import Unauthorized
from polyclinic.identity.accounts.models import User
from polyclinic.identity.accounts.services import Accounts
from polyclinic.identity.mfa.services import Mfa
from polyclinic.identity.permissions.guards import Principal, principal_of
from polyclinic.identity.sessions.models import LoginFailure
from polyclinic.identity.sessions.services import SESSION_ENDED, Sessions
from polyclinic.identity.sessions.throttle import LoginThrottle
from polyclinic.identity.staff.invitations import Invitations
from polyclinic.identity.staff.services import Staff
from polyclinic.web.caller import Caller, caller_of
from polyclinic.web.state import Runtime


async def provide_caller(request: Request) -> Caller:
    return caller_of(request)


async def provide_sessions(
    clinic_db: NamedDependency[AsyncSession],
    clinic: NamedDependency[TenantInfo],
    runtime: NamedDependency[Runtime],
) -> Sessions:
    return Sessions(clinic_db, clinic, runtime.settings, runtime.signer)


async def provide_mfa(
    clinic_db: NamedDependency[AsyncSession],
    clinic: NamedDependency[TenantInfo],
    runtime: NamedDependency[Runtime],
) -> Mfa:
    return Mfa(clinic_db, clinic, runtime.settings)


def accounts_for(db: AsyncSession, clinic: TenantInfo, runtime: Runtime) -> Accounts:
    sessions = Sessions(db, clinic, runtime.settings, runtime.signer)
    throttle = LoginThrottle(db, LoginFailure, runtime.settings)
    mfa = Mfa(db, clinic, runtime.settings)
    return Accounts(db, clinic, sessions, runtime.mail, throttle, mfa)


async def provide_accounts(
    clinic_db: NamedDependency[AsyncSession],
    clinic: NamedDependency[TenantInfo],
    runtime: NamedDependency[Runtime],
) -> Accounts:
    return accounts_for(clinic_db, clinic, runtime)


async def request_password_reset(
    runtime: Runtime, clinic: TenantInfo, email: str, caller: Caller
) -> None:
    """Runs after the response, in its own clinic session."""
    try:
        async with clinic_session(runtime.engine, clinic) as db:
            await accounts_for(db, clinic, runtime).forgot_password(email, caller)
    except Exception:
        logger.exception("password reset for clinic %s could not be prepared", clinic.slug)


async def provide_invitations(
    clinic_db: NamedDependency[AsyncSession],
    clinic: NamedDependency[TenantInfo],
    runtime: NamedDependency[Runtime],
) -> Invitations:
    return Invitations(clinic_db, clinic, runtime.mail, runtime.plan_limits)


async def provide_staff(
    clinic_db: NamedDependency[AsyncSession],
    sessions: NamedDependency[Sessions],
    runtime: NamedDependency[Runtime],
) -> Staff:
    return Staff(clinic_db, sessions, runtime.plan_limits)


async def provide_me(
    clinic_db: NamedDependency[AsyncSession], principal: NamedDependency[Principal]
) -> User:
    user = await clinic_db.get(User, principal.user_id)
    if user is None:
        raise Unauthorized(SESSION_ENDED)
    return user


logger = logging.getLogger("polyclinic.identity")


async def provide_principal(request: Request) -> Principal:
    return principal_of(request)


IDENTITY_DEPENDENCIES = {
    "principal": Provide(provide_principal),
    "caller": Provide(provide_caller),
    "sessions": Provide(provide_sessions),
    "mfa": Provide(provide_mfa),
    "accounts": Provide(provide_accounts),
    "invitations": Provide(provide_invitations),
    "staff": Provide(provide_staff),
    "me": Provide(provide_me),
}
