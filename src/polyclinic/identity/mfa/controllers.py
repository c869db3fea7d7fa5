"""Two-factor sign-in under /api/v1/auth/mfa: setup, enabling with recovery codes, disabling."""

from __future__ import annotations

from litestar import Controller, post
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK

from polyclinic.identity.accounts.models import User
from polyclinic.identity.accounts.services import Accounts
from polyclinic.identity.mfa.schemas import (
    DisableMfaRequest,
    MfaCodeRequest,
    MfaEnabledOut,
    MfaSetupOut,
)
from polyclinic.identity.mfa.services import Mfa
from polyclinic.identity.permissions.auth_routes import (
    OWN_MFA,
    SIGNED_IN,
)
from polyclinic.web.caller import Caller
from polyclinic.web.envelope import Envelope, ok


class MfaController(Controller):
    path = "/auth"
    tags = ["clinic: auth"]

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
