"""Every clinic route: who is calling (authentication), and may they (the matrix)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from polyclinic.config import Settings
from polyclinic.db.context import TenantInfo
from polyclinic.db.session import clinic_session
from polyclinic.errors import Forbidden, Unauthorized
from polyclinic.identity.accounts.models import User
from polyclinic.identity.permissions.matrix import MATRIX, Permission, allowed, is_public
from polyclinic.identity.permissions.roles import Role
from polyclinic.identity.sessions.services import SESSION_ENDED, Sessions
from polyclinic.tenancy.middleware import request_host
from polyclinic.tenancy.resolver import normalize_host
from polyclinic.web.bearer import bearer_token, sign_in_first
from polyclinic.web.state import runtime_of
from polyclinic.web.tokens import InvalidToken, clinic_audience

ACCESS_COOKIE = "pc_access"
INVALID_TOKEN = "The access token is invalid or expired; sign in again"


@dataclass(frozen=True)
class Principal:
    user_id: uuid.UUID
    role: str
    session_id: uuid.UUID
    must_enrol_mfa: bool = False


# What a user held to two-factor sign-in by policy may do before enrolling.
ENROLMENT_PERMISSIONS = {("account", "mfa"), ("account", "read_own"), ("sessions", "manage_own")}


def must_enrol_mfa(user: User, settings: Settings) -> bool:
    return (
        settings.mfa_required_for_admins
        and user.role == Role.CLINIC_ADMIN
        and user.mfa_enabled_at is None
    )


def access_token(connection: ASGIConnection) -> str:
    """The bearer token, or for browsers the HTTP-only cookie."""
    token = bearer_token(connection)
    if token is not None:
        return token
    cookie = connection.cookies.get(ACCESS_COOKIE)
    if cookie:
        refuse_cross_site(connection)
        return cookie
    raise sign_in_first()


def refuse_cross_site(connection: ASGIConnection) -> None:
    """A browser sends cookies along with requests other sites make it send. A change that
    rides on a cookie must come from this clinic's own pages, as JSON."""
    if connection.scope.get("method", "GET") in ("GET", "HEAD", "OPTIONS"):
        return
    origin = connection.headers.get("origin") or connection.headers.get("referer") or ""
    here = request_host(connection.scope, runtime_of(connection.app.state).trusted_proxies)
    if normalize_host(urlsplit(origin).netloc) != here:
        raise Forbidden("Cross-site request refused: it must come from this clinic's own pages")
    if not connection.headers.get("content-type", "").startswith("application/json"):
        raise Forbidden("Requests signed in by cookie must send JSON")


async def authenticate(connection: ASGIConnection) -> Principal:
    runtime = runtime_of(connection.app.state)
    tenant: TenantInfo = connection.scope["state"]["tenant"]  # type: ignore[typeddict-item]
    try:
        claims = runtime.signer.verify(access_token(connection), clinic_audience(tenant.id))
        user_id, session_id = uuid.UUID(claims["sub"]), uuid.UUID(str(claims["sid"]))
    except (InvalidToken, KeyError, ValueError):
        raise Unauthorized(INVALID_TOKEN) from None
    async with clinic_session(runtime.engine, tenant) as session:
        user = await Sessions(session, tenant, runtime.settings, runtime.signer).check(
            user_id, session_id
        )
    # The role is read from the database, so a change applies to the very next request.
    return Principal(
        user_id=user.id,
        role=user.role,
        session_id=session_id,
        must_enrol_mfa=must_enrol_mfa(user, runtime.settings),
    )


def permission_of(handler: BaseRouteHandler) -> Permission | None:
    permission = handler.opt.get("permission")
    return permission if permission in MATRIX else None


async def authorize(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    permission = permission_of(handler)
    if permission is None:
        raise Forbidden("This route has no permission rule, so nobody may use it")
    if is_public(permission):
        return
    principal = await authenticate(connection)
    if not allowed(permission, principal.role):
        raise Forbidden("Your role does not allow this")
    if principal.must_enrol_mfa and permission not in ENROLMENT_PERMISSIONS:
        raise Forbidden(
            "Turn on two-factor sign-in first (POST /api/v1/auth/mfa/setup, then /mfa/enable)"
        )
    connection.scope["state"]["principal"] = principal  # type: ignore[typeddict-item]


def principal_of(connection: ASGIConnection) -> Principal:
    principal: Principal | None = connection.scope["state"].get("principal")  # type: ignore[typeddict-item]
    if principal is None:
        raise Unauthorized(SESSION_ENDED)
    return principal
