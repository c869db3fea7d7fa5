"""Sign-in sessions under /api/v1/auth: sign in, refresh, sign out, and the account's sessions."""

from __future__ import annotations

import uuid

from litestar import Controller, Request, Response, delete, get, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.config import Settings
from polyclinic.errors import Unauthorized
from polyclinic.identity.accounts.models import User
from polyclinic.identity.accounts.schemas import (
    user_out,
)
from polyclinic.identity.accounts.services import Accounts
from polyclinic.identity.permissions.auth_routes import (
    OWN_SESSIONS,
    PUBLIC_WRITE,
    SIGNED_IN,
    public,
)
from polyclinic.identity.permissions.guards import (
    ACCESS_COOKIE,
    Principal,
    must_enrol_mfa,
    refuse_cross_site,
)
from polyclinic.identity.sessions.schemas import (
    LoginRequest,
    RefreshRequest,
    SessionOut,
    TokenPair,
    session_out,
)
from polyclinic.identity.sessions.services import IssuedTokens, Sessions
from polyclinic.web.caller import Caller
from polyclinic.web.envelope import Envelope, ok
from polyclinic.web.state import Runtime

REFRESH_COOKIE = "pc_refresh"


def _cookie(key: str, value: str, path: str, max_age: int) -> Cookie:
    return Cookie(
        key=key,
        value=value,
        path=path,
        max_age=max_age,
        httponly=True,
        secure=True,
        samesite="strict",
    )


def _token_response(
    user: User, tokens: IssuedTokens, settings: Settings, *, cookies: bool, message: str
) -> Response[Envelope[TokenPair]]:
    """JSON tokens, or with `cookies` the same tokens in HTTP-only cookies only."""
    pair = TokenPair(
        access_token=None if cookies else tokens.access_token,
        refresh_token=None if cookies else tokens.refresh_token,
        expires_in=tokens.expires_in,
        user=user_out(user),
        mfa_enrolment_required=must_enrol_mfa(user, settings),
    )
    jar = (
        [
            _cookie(ACCESS_COOKIE, tokens.access_token, "/api", tokens.expires_in),
            _cookie(REFRESH_COOKIE, tokens.refresh_token, "/api/v1/auth", settings.session_max_age),
        ]
        if cookies
        else []
    )
    return Response(ok(pair, message), cookies=jar)


def _cleared_cookies() -> list[Cookie]:
    return [_cookie(ACCESS_COOKIE, "", "/api", 0), _cookie(REFRESH_COOKIE, "", "/api/v1/auth", 0)]


class SessionsController(Controller):
    path = "/auth"
    tags = ["clinic: auth"]

    @post(
        "/login",
        status_code=HTTP_200_OK,
        summary="Sign in",
        opt=public("login"),
        responses=PUBLIC_WRITE,
    )
    async def login(
        self,
        data: JSONBody[LoginRequest],
        accounts: NamedDependency[Accounts],
        caller: NamedDependency[Caller],
        runtime: NamedDependency[Runtime],
    ) -> Response[Envelope[TokenPair]]:
        user, tokens = await accounts.login(data.email, data.password, caller, data.totp)
        return _token_response(
            user, tokens, runtime.settings, cookies=data.use_cookies, message="Signed in"
        )

    @post(
        "/refresh",
        status_code=HTTP_200_OK,
        summary="Exchange a refresh token for new tokens",
        opt=public("login"),
        responses=PUBLIC_WRITE,
    )
    async def refresh(
        self,
        request: Request,
        data: JSONBody[RefreshRequest],
        sessions: NamedDependency[Sessions],
        clinic_db: NamedDependency[AsyncSession],
        caller: NamedDependency[Caller],
        runtime: NamedDependency[Runtime],
    ) -> Response[Envelope[TokenPair]]:
        from_cookie = data.refresh_token is None
        if from_cookie:
            refuse_cross_site(request)
        token = data.refresh_token or request.cookies.get(REFRESH_COOKIE)
        if not token:
            raise Unauthorized("No refresh token was sent")
        user, tokens = await sessions.refresh(token, caller)
        await clinic_db.commit()
        return _token_response(
            user, tokens, runtime.settings, cookies=from_cookie, message="Refreshed"
        )

    @post(
        "/logout",
        status_code=HTTP_200_OK,
        summary="End this session",
        opt=OWN_SESSIONS,
        responses=SIGNED_IN,
    )
    async def logout(
        self,
        sessions: NamedDependency[Sessions],
        clinic_db: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
    ) -> Response[Envelope[None]]:
        await sessions.end(principal.user_id, principal.session_id, "logout")
        await clinic_db.commit()
        return Response(ok(None, "Signed out"), cookies=_cleared_cookies())

    @post(
        "/logout-all",
        status_code=HTTP_200_OK,
        summary="End every session of this account",
        opt=OWN_SESSIONS,
        responses=SIGNED_IN,
    )
    async def logout_all(
        self,
        sessions: NamedDependency[Sessions],
        clinic_db: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
    ) -> Response[Envelope[dict[str, int]]]:
        ended = await sessions.end_all(principal.user_id, "logout_all")
        await clinic_db.commit()
        return Response(
            ok({"endedSessions": ended}, "Signed out everywhere"), cookies=_cleared_cookies()
        )

    @get(
        "/sessions",
        summary="This account's active sessions",
        opt=OWN_SESSIONS,
        responses=SIGNED_IN,
    )
    async def list_sessions(
        self, sessions: NamedDependency[Sessions], principal: NamedDependency[Principal]
    ) -> Envelope[list[SessionOut]]:
        active = await sessions.list_active(principal.user_id)
        return ok([session_out(s, principal.session_id) for s in active])

    @delete(
        "/sessions/{session_id:uuid}",
        status_code=HTTP_200_OK,
        summary="End one session",
        opt=OWN_SESSIONS,
        responses=SIGNED_IN,
    )
    async def end_session(
        self,
        session_id: FromPath[uuid.UUID],
        sessions: NamedDependency[Sessions],
        clinic_db: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
    ) -> Envelope[None]:
        await sessions.end(principal.user_id, session_id, "ended_by_user")
        await clinic_db.commit()
        return ok(None, "Session ended")
