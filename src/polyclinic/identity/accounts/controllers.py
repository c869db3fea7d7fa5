"""The clinic account under /api/v1/auth: registration, email confirmation, password reset and
change, and the signed-in user's own details."""

from __future__ import annotations

from litestar import Controller, Response, get, patch, post
from litestar.background_tasks import BackgroundTask
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.db.context import TenantInfo
from polyclinic.identity.accounts.models import User
from polyclinic.identity.accounts.schemas import (
    ChangePasswordRequest,
    ClaimAccountRequest,
    EmailRequest,
    RegisterRequest,
    ResetPasswordRequest,
    TokenRequest,
    UpdateMeRequest,
    UserOut,
    user_out,
)
from polyclinic.identity.accounts.services import Accounts, Registration
from polyclinic.identity.dependencies import request_password_reset
from polyclinic.identity.permissions.auth_routes import (
    PUBLIC_WRITE,
    SIGNED_IN,
    UPDATE_OWN,
    public,
)
from polyclinic.identity.permissions.guards import (
    Principal,
)
from polyclinic.web.caller import Caller
from polyclinic.web.envelope import Envelope, ok
from polyclinic.web.patching import sent_fields
from polyclinic.web.state import Runtime


class AccountsController(Controller):
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
        "/claim-account",
        status_code=HTTP_200_OK,
        summary="Claim the patient record the clinic made for you, by choosing a password",
        opt=public("accept_invitation"),
        responses=PUBLIC_WRITE,
    )
    async def claim_account(
        self,
        data: JSONBody[ClaimAccountRequest],
        accounts: NamedDependency[Accounts],
        caller: NamedDependency[Caller],
    ) -> Envelope[UserOut]:
        user = await accounts.claim_account(data.token, data.password, caller)
        return ok(user_out(user), "Your account is ready; sign in with your new password")

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
