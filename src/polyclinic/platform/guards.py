"""Only a signed-in, active super-admin passes."""

from __future__ import annotations

import uuid

from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from polyclinic.db.session import platform_session
from polyclinic.errors import Forbidden, Unauthorized
from polyclinic.platform.mfa import must_enrol
from polyclinic.platform.services import PlatformUsers
from polyclinic.web.bearer import bearer_token, sign_in_first
from polyclinic.web.state import runtime_of
from polyclinic.web.tokens import PLATFORM_AUDIENCE, InvalidToken


async def require_super_admin(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    runtime = runtime_of(connection.app.state)
    try:
        token = bearer_token(connection)
        if token is None:
            raise sign_in_first()
        claims = runtime.signer.verify(token, PLATFORM_AUDIENCE)
    except InvalidToken:
        raise Unauthorized("The access token is invalid or expired; sign in again") from None
    async with platform_session(runtime.engine) as session:
        user = await PlatformUsers(session).get_active(_uuid(claims["sub"]))
    if user is None:
        raise Unauthorized("This account can no longer use the platform API")
    if must_enrol(user, runtime.settings) and not handler.opt.get("mfa_enrolment"):
        raise Forbidden(
            "Turn on two-factor sign-in first (POST /platform/v1/auth/mfa/setup, then /mfa/enable)"
        )
    connection.scope["state"]["platform_user_id"] = user.id  # type: ignore[typeddict-item]


def _uuid(value: object) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise Unauthorized("The access token is invalid or expired; sign in again") from None
