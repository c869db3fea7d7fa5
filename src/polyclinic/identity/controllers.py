"""The clinic auth API, under /api/v1/auth on the clinic's own host."""

from __future__ import annotations

import uuid

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.datastructures import Cookie
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.errors import Unauthorized
from polyclinic.identity.accounts import Accounts, Registration
from polyclinic.identity.guards import ACCESS_COOKIE, Principal, must_enrol_mfa
from polyclinic.identity.invitations import Invitations
from polyclinic.identity.mfa import Mfa
from polyclinic.identity.models import User
from polyclinic.identity.schemas import (
    AcceptInvitationRequest,
    ChangePasswordRequest,
    EmailRequest,
    LoginRequest,
    MfaCodeRequest,
    MfaEnabledOut,
    MfaSetupOut,
    PasswordRequest,
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
from polyclinic.identity.throttle import LoginThrottle
from polyclinic.tenancy.context import TenantInfo
from polyclinic.web.caller import caller_of
from polyclinic.web.envelope import Envelope, ok
from polyclinic.web.openapi import error_responses
from polyclinic.web.state import Runtime

REFRESH_COOKIE = "pc_refresh"
PUBLIC_WRITE = error_responses(400, 401, 409, 422)
SIGNED_IN = error_responses(400, 401, 403, 404, 409, 422)


def _services(db: AsyncSession, clinic: TenantInfo, runtime: Runtime) -> tuple[Accounts, Sessions]:
    sessions = Sessions(db, clinic, runtime.settings, runtime.signer)
    throttle = LoginThrottle(runtime.redis, runtime.settings, f"clinic:{clinic.id}")
    mfa = Mfa(db, clinic, runtime.settings)
    return Accounts(db, clinic, sessions, runtime.mail, throttle, mfa), sessions


def _token_response(
    user: User, tokens: IssuedTokens, runtime: Runtime, *, cookies: bool, message: str
) -> Response[Envelope[TokenPair]]:
    pair = TokenPair(
        access_token=None if cookies else tokens.access_token,
        refresh_token=None if cookies else tokens.refresh_token,
        expires_in=tokens.expires_in,
        user=user_out(user),
        mfa_enrolment_required=must_enrol_mfa(user, runtime.settings),
    )
    jar = []
    if cookies:
        jar = [
            Cookie(
                key=ACCESS_COOKIE,
                value=tokens.access_token,
                path="/api",
                max_age=tokens.expires_in,
                httponly=True,
                secure=True,
                samesite="strict",
            ),
            Cookie(
                key=REFRESH_COOKIE,
                value=tokens.refresh_token,
                path="/api/v1/auth",
                max_age=runtime.settings.session_max_age,
                httponly=True,
                secure=True,
                samesite="strict",
            ),
        ]
    return Response(ok(pair, message), cookies=jar)


def _cleared_cookies() -> list[Cookie]:
    return [
        Cookie(key=ACCESS_COOKIE, value="", path="/api", max_age=0, httponly=True, secure=True),
        Cookie(
            key=REFRESH_COOKIE, value="", path="/api/v1/auth", max_age=0, httponly=True, secure=True
        ),
    ]


async def _me(db: AsyncSession, principal: Principal) -> User:
    user = await db.get(User, principal.user_id)
    if user is None:
        raise Unauthorized("Your session has ended; sign in again")
    return user


class AuthController(Controller):
    path = "/auth"
    tags = ["clinic: auth"]

    @post(
        "/register",
        status_code=HTTP_201_CREATED,
        summary="Register as a patient",
        opt={"permission": ("account", "register")},
        responses=PUBLIC_WRITE,
    )
    async def register(
        self,
        request: Request,
        data: JSONBody[RegisterRequest],
        clinic_db: NamedDependency[AsyncSession],
        clinic: NamedDependency[TenantInfo],
        runtime: NamedDependency[Runtime],
    ) -> Envelope[UserOut]:
        accounts, _ = _services(clinic_db, clinic, runtime)
        user = await accounts.register(
            Registration(
                email=data.email,
                password=data.password,
                first_name=data.first_name,
                last_name=data.last_name,
                phone=data.phone,
                date_of_birth=data.date_of_birth,
            ),
            caller_of(request),
        )
        return ok(user_out(user), "Registered; check your email to confirm the address", 201)

    @post(
        "/login",
        status_code=HTTP_200_OK,
        summary="Sign in",
        opt={"permission": ("account", "login")},
        responses=PUBLIC_WRITE,
    )
    async def login(
        self,
        request: Request,
        data: JSONBody[LoginRequest],
        clinic_db: NamedDependency[AsyncSession],
        clinic: NamedDependency[TenantInfo],
        runtime: NamedDependency[Runtime],
    ) -> Response[Envelope[TokenPair]]:
        accounts, _ = _services(clinic_db, clinic, runtime)
        user, tokens = await accounts.login(
            data.email, data.password, caller_of(request), data.totp
        )
        return _token_response(user, tokens, runtime, cookies=data.use_cookies, message="Signed in")

    @post(
        "/refresh",
        status_code=HTTP_200_OK,
        summary="Exchange a refresh token for new tokens",
        opt={"permission": ("account", "login")},
        responses=PUBLIC_WRITE,
    )
    async def refresh(
        self,
        request: Request,
        data: JSONBody[RefreshRequest],
        clinic_db: NamedDependency[AsyncSession],
        clinic: NamedDependency[TenantInfo],
        runtime: NamedDependency[Runtime],
    ) -> Response[Envelope[TokenPair]]:
        from_cookie = data.refresh_token is None
        token = data.refresh_token or request.cookies.get(REFRESH_COOKIE)
        if not token:
            raise Unauthorized("No refresh token was sent")
        _, sessions = _services(clinic_db, clinic, runtime)
        user, tokens = await sessions.refresh(token, caller_of(request))
        await clinic_db.commit()
        return _token_response(user, tokens, runtime, cookies=from_cookie, message="Refreshed")

    @post(
        "/logout",
        status_code=HTTP_200_OK,
        summary="End this session",
        opt={"permission": ("sessions", "manage_own")},
        responses=SIGNED_IN,
    )
    async def logout(
        self,
        clinic_db: NamedDependency[AsyncSession],
        clinic: NamedDependency[TenantInfo],
        runtime: NamedDependency[Runtime],
        principal: NamedDependency[Principal],
    ) -> Response[Envelope[None]]:
        _, sessions = _services(clinic_db, clinic, runtime)
        await sessions.end(principal.user_id, principal.session_id, "logout")
        await clinic_db.commit()
        return Response(ok(None, "Signed out"), cookies=_cleared_cookies())

    @post(
        "/logout-all",
        status_code=HTTP_200_OK,
        summary="End every session of this account",
        opt={"permission": ("sessions", "manage_own")},
        responses=SIGNED_IN,
    )
    async def logout_all(
        self,
        clinic_db: NamedDependency[AsyncSession],
        clinic: NamedDependency[TenantInfo],
        runtime: NamedDependency[Runtime],
        principal: NamedDependency[Principal],
    ) -> Response[Envelope[dict[str, int]]]:
        _, sessions = _services(clinic_db, clinic, runtime)
        ended = await sessions.end_all(principal.user_id, "logout_all")
        await clinic_db.commit()
        return Response(
            ok({"endedSessions": ended}, "Signed out everywhere"), cookies=_cleared_cookies()
        )

    @get(
        "/sessions",
        summary="This account's active sessions",
        opt={"permission": ("sessions", "manage_own")},
        responses=SIGNED_IN,
    )
    async def list_sessions(
        self,
        clinic_db: NamedDependency[AsyncSession],
        clinic: NamedDependency[TenantInfo],
        runtime: NamedDependency[Runtime],
        principal: NamedDependency[Principal],
    ) -> Envelope[list[SessionOut]]:
        _, sessions = _services(clinic_db, clinic, runtime)
        active = await sessions.list_active(principal.user_id)
        return ok([session_out(s, principal.session_id) for s in active])

    @delete(
        "/sessions/{session_id:uuid}",
        status_code=HTTP_200_OK,
        summary="End one session",
        opt={"permission": ("sessions", "manage_own")},
        responses=SIGNED_IN,
    )
    async def end_session(
        self,
        session_id: FromPath[uuid.UUID],
        clinic_db: NamedDependency[AsyncSession],
        clinic: NamedDependency[TenantInfo],
        runtime: NamedDependency[Runtime],
        principal: NamedDependency[Principal],
    ) -> Envelope[None]:
        _, sessions = _services(clinic_db, clinic, runtime)
        await sessions.end(principal.user_id, session_id, "ended_by_user")
        await clinic_db.commit()
        return ok(None, "Session ended")

    @post(
        "/verify-email",
        status_code=HTTP_200_OK,
        summary="Confirm the email address",
        opt={"permission": ("account", "recover")},
        responses=PUBLIC_WRITE,
    )
    async def verify_email(
        self,
        request: Request,
        data: JSONBody[TokenRequest],
        clinic_db: NamedDependency[AsyncSession],
        clinic: NamedDependency[TenantInfo],
        runtime: NamedDependency[Runtime],
    ) -> Envelope[UserOut]:
        accounts, _ = _services(clinic_db, clinic, runtime)
        user = await accounts.verify_email(data.token, caller_of(request))
        return ok(user_out(user), "Email address confirmed")

    @post(
        "/resend-verification",
        status_code=HTTP_200_OK,
        summary="Send the confirmation again",
        opt={"permission": ("account", "update_own")},
        responses=SIGNED_IN,
    )
    async def resend_verification(
        self,
        clinic_db: NamedDependency[AsyncSession],
        clinic: NamedDependency[TenantInfo],
        runtime: NamedDependency[Runtime],
        principal: NamedDependency[Principal],
    ) -> Envelope[None]:
        accounts, _ = _services(clinic_db, clinic, runtime)
        await accounts.resend_verification(await _me(clinic_db, principal))
        return ok(None, "Confirmation sent")

    @post(
        "/forgot-password",
        status_code=HTTP_200_OK,
        summary="Ask for a password reset",
        opt={"permission": ("account", "recover")},
        responses=PUBLIC_WRITE,
    )
    async def forgot_password(
        self,
        request: Request,
        data: JSONBody[EmailRequest],
        clinic_db: NamedDependency[AsyncSession],
        clinic: NamedDependency[TenantInfo],
        runtime: NamedDependency[Runtime],
    ) -> Envelope[None]:
        accounts, _ = _services(clinic_db, clinic, runtime)
        await accounts.forgot_password(data.email, caller_of(request))
        return ok(None, "If an account uses this address, a reset message is on its way")

    @post(
        "/reset-password",
        status_code=HTTP_200_OK,
        summary="Choose a new password",
        opt={"permission": ("account", "recover")},
        responses=PUBLIC_WRITE,
    )
    async def reset_password(
        self,
        request: Request,
        data: JSONBody[ResetPasswordRequest],
        clinic_db: NamedDependency[AsyncSession],
        clinic: NamedDependency[TenantInfo],
        runtime: NamedDependency[Runtime],
    ) -> Envelope[None]:
        accounts, _ = _services(clinic_db, clinic, runtime)
        await accounts.reset_password(data.token, data.password, caller_of(request))
        return ok(None, "Password changed; sign in with the new one")

    @post(
        "/accept-invitation",
        status_code=HTTP_201_CREATED,
        summary="Accept a staff invitation and set a password",
        opt={"permission": ("account", "accept_invitation")},
        responses=PUBLIC_WRITE,
    )
    async def accept_invitation(
        self,
        request: Request,
        data: JSONBody[AcceptInvitationRequest],
        clinic_db: NamedDependency[AsyncSession],
        clinic: NamedDependency[TenantInfo],
        runtime: NamedDependency[Runtime],
    ) -> Envelope[UserOut]:
        invitations = Invitations(clinic_db, clinic, runtime.mail)
        user = await invitations.accept(
            data.token, data.password, data.first_name, data.last_name, caller_of(request)
        )
        return ok(user_out(user), "Welcome; sign in with your new password", HTTP_201_CREATED)

    @post(
        "/mfa/setup",
        status_code=HTTP_200_OK,
        summary="Start two-factor sign-in: a new secret for the authenticator app",
        opt={"permission": ("account", "mfa")},
        responses=SIGNED_IN,
    )
    async def mfa_setup(
        self,
        clinic_db: NamedDependency[AsyncSession],
        clinic: NamedDependency[TenantInfo],
        runtime: NamedDependency[Runtime],
        principal: NamedDependency[Principal],
    ) -> Envelope[MfaSetupOut]:
        secret, uri = await Mfa(clinic_db, clinic, runtime.settings).setup(
            await _me(clinic_db, principal)
        )
        return ok(MfaSetupOut(secret=secret, otpauth_uri=uri), "Scan it, then confirm a code")

    @post(
        "/mfa/enable",
        status_code=HTTP_200_OK,
        summary="Confirm a code; turns two-factor sign-in on and returns recovery codes once",
        opt={"permission": ("account", "mfa")},
        responses=SIGNED_IN,
    )
    async def mfa_enable(
        self,
        request: Request,
        data: JSONBody[MfaCodeRequest],
        clinic_db: NamedDependency[AsyncSession],
        clinic: NamedDependency[TenantInfo],
        runtime: NamedDependency[Runtime],
        principal: NamedDependency[Principal],
    ) -> Envelope[MfaEnabledOut]:
        codes = await Mfa(clinic_db, clinic, runtime.settings).enable(
            await _me(clinic_db, principal), data.code, caller_of(request)
        )
        return ok(MfaEnabledOut(recovery_codes=codes), "Two-factor sign-in is on")

    @post(
        "/mfa/disable",
        status_code=HTTP_200_OK,
        summary="Turn two-factor sign-in off",
        opt={"permission": ("account", "mfa")},
        responses=SIGNED_IN,
    )
    async def mfa_disable(
        self,
        request: Request,
        data: JSONBody[PasswordRequest],
        clinic_db: NamedDependency[AsyncSession],
        clinic: NamedDependency[TenantInfo],
        runtime: NamedDependency[Runtime],
        principal: NamedDependency[Principal],
    ) -> Envelope[None]:
        await Mfa(clinic_db, clinic, runtime.settings).disable(
            await _me(clinic_db, principal), data.password, caller_of(request)
        )
        return ok(None, "Two-factor sign-in is off")

    @get(
        "/me",
        summary="My account",
        opt={"permission": ("account", "read_own")},
        responses=SIGNED_IN,
    )
    async def me(
        self, clinic_db: NamedDependency[AsyncSession], principal: NamedDependency[Principal]
    ) -> Envelope[UserOut]:
        return ok(user_out(await _me(clinic_db, principal)))

    @patch(
        "/me",
        summary="Change my details",
        opt={"permission": ("account", "update_own")},
        responses=SIGNED_IN,
    )
    async def update_me(
        self,
        data: JSONBody[UpdateMeRequest],
        clinic_db: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
    ) -> Envelope[UserOut]:
        user = await _me(clinic_db, principal)
        for field in ("first_name", "last_name", "phone", "date_of_birth"):
            value = getattr(data, field)
            if value is not msgspec.UNSET:
                setattr(user, field, value.strip() if isinstance(value, str) else value)
        await clinic_db.commit()
        return ok(user_out(user), "Saved")

    @post(
        "/change-password",
        status_code=HTTP_200_OK,
        summary="Change my password",
        opt={"permission": ("account", "update_own")},
        responses=SIGNED_IN,
    )
    async def change_password(
        self,
        request: Request,
        data: JSONBody[ChangePasswordRequest],
        clinic_db: NamedDependency[AsyncSession],
        clinic: NamedDependency[TenantInfo],
        runtime: NamedDependency[Runtime],
        principal: NamedDependency[Principal],
    ) -> Envelope[None]:
        accounts, _ = _services(clinic_db, clinic, runtime)
        user = await _me(clinic_db, principal)
        await accounts.change_password(
            user,
            data.current_password,
            data.new_password,
            principal.session_id,
            caller_of(request),
        )
        return ok(None, "Password changed; your other sessions were signed out")
