"""The clinic auth API, under /api/v1/auth on the clinic's own host."""

from __future__ import annotations

import uuid

from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.background_tasks import BackgroundTask
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.config import Settings
from polyclinic.errors import Unauthorized
from polyclinic.identity.accounts import Accounts, Registration
from polyclinic.identity.dependencies import request_password_reset
from polyclinic.identity.events import Caller
from polyclinic.identity.guards import (
    ACCESS_COOKIE,
    Principal,
    must_enrol_mfa,
    refuse_cross_site,
)
from polyclinic.identity.invitations import Invitations
from polyclinic.identity.mfa import Mfa
from polyclinic.identity.models import User
from polyclinic.identity.schemas import (
    AcceptInvitationRequest,
    ChangePasswordRequest,
    DisableMfaRequest,
    EmailRequest,
    LoginRequest,
    MfaCodeRequest,
    MfaEnabledOut,
    MfaSetupOut,
    RefreshRequest,
    RegisterRequest,
    ResetPasswordRequest,
    SessionOut,
    TokenPair,
    TokenRequest,
    UpdateMeRequest,
    UserOut,
    session_out,
    user_out,
)
from polyclinic.identity.sessions import IssuedTokens, Sessions
from polyclinic.tenancy.context import TenantInfo
from polyclinic.web.envelope import Envelope, ok
from polyclinic.web.openapi import error_responses
from polyclinic.web.patching import sent_fields
from polyclinic.web.state import Runtime

REFRESH_COOKIE = "pc_refresh"
# Every /auth route is rate-limited (429); refresh refuses a suspended account (403).
PUBLIC_WRITE = error_responses(400, 401, 403, 409, 422, 429)
SIGNED_IN = error_responses(400, 401, 403, 404, 409, 422, 429)


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


def public(action: str) -> dict[str, object]:
    return {"permission": ("account", action)}


UPDATE_OWN = {"permission": ("account", "update_own")}
OWN_SESSIONS = {"permission": ("sessions", "manage_own")}
OWN_MFA = {"permission": ("account", "mfa")}


class AuthController(Controller):
    path = "/auth"
    tags = ["clinic: auth"]

    @post(
        "/register",
        status_code=HTTP_201_CREATED,
        summary="Register as a patient",
        opt=public("register"),
        responses=PUBLIC_WRITE,
    )
    async def register(
        self,
        data: JSONBody[RegisterRequest],
        accounts: NamedDependency[Accounts],
        caller: NamedDependency[Caller],
    ) -> Envelope[None]:
        registration = Registration(
            email=data.email,
            password=data.password,
            first_name=data.first_name,
            last_name=data.last_name,
            phone=data.phone,
            date_of_birth=data.date_of_birth,
        )
        await accounts.register(registration, caller)
        return ok(None, "Registered: sign in now, and confirm your address from the email", 201)

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

    @post(
        "/verify-email",
        status_code=HTTP_200_OK,
        summary="Confirm the email address",
        opt=public("recover"),
        responses=PUBLIC_WRITE,
    )
    async def verify_email(
        self,
        data: JSONBody[TokenRequest],
        accounts: NamedDependency[Accounts],
        caller: NamedDependency[Caller],
    ) -> Envelope[UserOut]:
        user = await accounts.verify_email(data.token, caller)
        return ok(user_out(user), "Email address confirmed")

    @post(
        "/resend-verification",
        status_code=HTTP_200_OK,
        summary="Send the confirmation again",
        opt=UPDATE_OWN,
        responses=SIGNED_IN,
    )
    async def resend_verification(
        self, accounts: NamedDependency[Accounts], me: NamedDependency[User]
    ) -> Envelope[None]:
        await accounts.resend_verification(me)
        return ok(None, "Confirmation sent")

    @post(
        "/forgot-password",
        status_code=HTTP_200_OK,
        summary="Ask for a password reset",
        opt=public("recover"),
        responses=PUBLIC_WRITE,
    )
    async def forgot_password(
        self,
        data: JSONBody[EmailRequest],
        clinic: NamedDependency[TenantInfo],
        runtime: NamedDependency[Runtime],
        caller: NamedDependency[Caller],
    ) -> Response[Envelope[None]]:
        # The lookup runs after the answer is sent: known and unknown addresses take as long.
        work = BackgroundTask(request_password_reset, runtime, clinic, data.email, caller)
        message = "If an account uses this address, a reset message is on its way"
        return Response(ok(None, message), background=work)

    @post(
        "/reset-password",
        status_code=HTTP_200_OK,
        summary="Choose a new password",
        opt=public("recover"),
        responses=PUBLIC_WRITE,
    )
    async def reset_password(
        self,
        data: JSONBody[ResetPasswordRequest],
        accounts: NamedDependency[Accounts],
        caller: NamedDependency[Caller],
    ) -> Envelope[None]:
        await accounts.reset_password(data.token, data.password, caller)
        return ok(None, "Password changed; sign in with the new one")

    @post(
        "/accept-invitation",
        status_code=HTTP_201_CREATED,
        summary="Accept a staff invitation and set a password",
        opt=public("accept_invitation"),
        responses=PUBLIC_WRITE,
    )
    async def accept_invitation(
        self,
        data: JSONBody[AcceptInvitationRequest],
        invitations: NamedDependency[Invitations],
        caller: NamedDependency[Caller],
    ) -> Envelope[UserOut]:
        user = await invitations.accept(
            data.token, data.password, data.first_name, data.last_name, caller
        )
        return ok(user_out(user), "Welcome; sign in with your new password", HTTP_201_CREATED)

    @post(
        "/mfa/setup",
        status_code=HTTP_200_OK,
        summary="Start two-factor sign-in: a new secret for the authenticator app",
        opt=OWN_MFA,
        responses=SIGNED_IN,
    )
    async def mfa_setup(
        self, mfa: NamedDependency[Mfa], me: NamedDependency[User]
    ) -> Envelope[MfaSetupOut]:
        secret, uri = await mfa.setup(me)
        return ok(MfaSetupOut(secret=secret, otpauth_uri=uri), "Scan it, then confirm a code")

    @post(
        "/mfa/enable",
        status_code=HTTP_200_OK,
        summary="Confirm a code; turns two-factor sign-in on and returns recovery codes once",
        opt=OWN_MFA,
        responses=SIGNED_IN,
    )
    async def mfa_enable(
        self,
        data: JSONBody[MfaCodeRequest],
        mfa: NamedDependency[Mfa],
        me: NamedDependency[User],
        caller: NamedDependency[Caller],
    ) -> Envelope[MfaEnabledOut]:
        codes = await mfa.enable(me, data.code, caller)
        return ok(MfaEnabledOut(recovery_codes=codes), "Two-factor sign-in is on")

    @post(
        "/mfa/disable",
        status_code=HTTP_200_OK,
        summary="Turn two-factor sign-in off",
        opt=OWN_MFA,
        responses=SIGNED_IN,
    )
    async def mfa_disable(
        self,
        data: JSONBody[DisableMfaRequest],
        accounts: NamedDependency[Accounts],
        mfa: NamedDependency[Mfa],
        me: NamedDependency[User],
        caller: NamedDependency[Caller],
    ) -> Envelope[None]:
        await accounts.confirm_password(me, data.password, caller)
        await mfa.disable(me, data.code, caller)
        return ok(None, "Two-factor sign-in is off")

    @get(
        "/me",
        summary="My account",
        opt={"permission": ("account", "read_own")},
        responses=SIGNED_IN,
    )
    async def read_me(self, me: NamedDependency[User]) -> Envelope[UserOut]:
        return ok(user_out(me))

    @patch("/me", summary="Change my details", opt=UPDATE_OWN, responses=SIGNED_IN)
    async def update_me(
        self,
        data: JSONBody[UpdateMeRequest],
        me: NamedDependency[User],
        clinic_db: NamedDependency[AsyncSession],
    ) -> Envelope[UserOut]:
        for field, value in sent_fields(data).items():
            setattr(me, field, value.strip() if isinstance(value, str) else value)
        await clinic_db.commit()
        return ok(user_out(me), "Saved")

    @post(
        "/change-password",
        status_code=HTTP_200_OK,
        summary="Change my password",
        opt=UPDATE_OWN,
        responses=SIGNED_IN,
    )
    async def change_password(
        self,
        data: JSONBody[ChangePasswordRequest],
        accounts: NamedDependency[Accounts],
        me: NamedDependency[User],
        principal: NamedDependency[Principal],
        caller: NamedDependency[Caller],
    ) -> Envelope[None]:
        await accounts.change_password(
            me, data.current_password, data.new_password, principal.session_id, caller
        )
        return ok(None, "Password changed; your other sessions were signed out")
