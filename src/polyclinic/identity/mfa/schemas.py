"""Request and response bodies of two-factor sign-in (camelCase on the wire)."""

from typing import Annotated

import msgspec

from polyclinic.identity.accounts.schemas import Password
from polyclinic.web.openapi import published_as


@published_as("polyclinic.identity.schemas")
class MfaSetupOut(msgspec.Struct, rename="camel"):
    secret: str
    otpauth_uri: str


class MfaCodeRequest(msgspec.Struct, rename="camel"):
    code: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{6}$")]


@published_as("polyclinic.identity.schemas")
class MfaEnabledOut(msgspec.Struct, rename="camel"):
    recovery_codes: list[str]


class DisableMfaRequest(msgspec.Struct, rename="camel"):
    """The password and a current code, or one of the recovery codes."""

    password: Password
    code: Annotated[str, msgspec.Meta(pattern=r"^[0-9A-Za-z-]{6,20}$")]
