"""Request and response bodies of the clinic auth API (camelCase on the wire)."""

from __future__ import annotations

import datetime
import uuid
from typing import Annotated, Literal, cast

import msgspec

from polyclinic.identity.models import AuthSession, Invitation, User, accepted_channels

Email = Annotated[
    str,
    msgspec.Meta(
        max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", examples=["ana@example.com"]
    ),
]
Name = Annotated[str, msgspec.Meta(pattern=r"\S", max_length=100)]
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
Token = Annotated[str, msgspec.Meta(min_length=10, max_length=200)]
Channel = Literal["email", "sms", "whatsapp"]
# The locales message templates are kept in, so a template can match it.
Locale = Annotated[
    str,
    msgspec.Meta(
        pattern=r"^[a-z]{2}(-[A-Z]{2})?$",
        max_length=12,
        description="a language, optionally with a region, e.g. en, de or de-AT",
        examples=["de-AT"],
    ),
]


class RegisterRequest(msgspec.Struct, rename="camel"):
    email: Email
    password: Password
    first_name: Name
    last_name: Name
    phone: Annotated[str, msgspec.Meta(pattern=r"^\+?[0-9 ()-]{5,30}$")] | None = None
    date_of_birth: datetime.date | None = None


class LoginRequest(msgspec.Struct, rename="camel"):
    email: Annotated[str, msgspec.Meta(min_length=3, max_length=320)]
    password: Password
    totp: Annotated[str, msgspec.Meta(pattern=r"^[0-9A-Za-z-]{6,20}$")] | None = None
    use_cookies: bool = False


class RefreshRequest(msgspec.Struct, rename="camel"):
    refresh_token: Token | None = None


class TokenRequest(msgspec.Struct, rename="camel"):
    token: Token


class EmailRequest(msgspec.Struct, rename="camel"):
    email: Annotated[str, msgspec.Meta(min_length=3, max_length=320)]


class ResetPasswordRequest(msgspec.Struct, rename="camel"):
    token: Token
    password: Password


class ChangePasswordRequest(msgspec.Struct, rename="camel"):
    current_password: Password
    new_password: Password


class UpdateMeRequest(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    first_name: Name | msgspec.UnsetType = msgspec.UNSET
    last_name: Name | msgspec.UnsetType = msgspec.UNSET
    phone: (
        Annotated[str, msgspec.Meta(pattern=r"^\+?[0-9 ()-]{5,30}$")] | msgspec.UnsetType | None
    ) = msgspec.UNSET
    date_of_birth: datetime.date | msgspec.UnsetType | None = msgspec.UNSET


class MessagePreferences(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """The channels the user accepts messages on and their language. Email and SMS are on
    until turned off; WhatsApp needs turning on. Channels other than email need a phone
    number in international form on the account. A null locale means the clinic's
    default (en)."""

    channels: Annotated[
        list[Channel],
        msgspec.Meta(max_length=3, description="each at most once; empty: no messages at all"),
    ]
    locale: Locale | None


class UserOut(msgspec.Struct, rename="camel"):
    id: uuid.UUID
    email: str
    first_name: str
    last_name: str
    phone: str | None
    date_of_birth: datetime.date | None
    role: str
    is_active: bool
    email_verified: bool
    mfa_enabled: bool
    created_at: datetime.datetime
    message_preferences: MessagePreferences


class TokenPair(msgspec.Struct, rename="camel"):
    """With `useCookies`, the tokens travel only in HTTP-only cookies and are null here."""

    access_token: str | None
    refresh_token: str | None
    expires_in: int
    user: UserOut
    mfa_enrolment_required: bool = False
    token_type: str = "Bearer"


class SessionOut(msgspec.Struct, rename="camel"):
    id: uuid.UUID
    created_at: datetime.datetime
    last_seen_at: datetime.datetime
    expires_at: datetime.datetime
    ip: str | None
    user_agent: str | None
    current: bool


def user_out(user: User) -> UserOut:
    return UserOut(
        id=user.id,
        email=user.email,
        first_name=user.first_name,
        last_name=user.last_name,
        phone=user.phone,
        date_of_birth=user.date_of_birth,
        role=user.role,
        is_active=user.is_active,
        email_verified=user.email_verified_at is not None,
        mfa_enabled=user.mfa_enabled_at is not None,
        created_at=user.created_at,
        message_preferences=message_preferences(user),
    )


def message_preferences(user: User) -> MessagePreferences:
    channels = cast("list[Channel]", accepted_channels(user))
    return MessagePreferences(channels=channels, locale=user.locale)


def session_out(auth_session: AuthSession, current: uuid.UUID) -> SessionOut:
    return SessionOut(
        id=auth_session.id,
        created_at=auth_session.created_at,
        last_seen_at=auth_session.last_seen_at,
        expires_at=auth_session.expires_at,
        ip=auth_session.ip,
        user_agent=auth_session.user_agent,
        current=auth_session.id == current,
    )


class AuthEventOut(msgspec.Struct, rename="camel"):
    id: uuid.UUID
    occurred_at: datetime.datetime
    event: str
    user_id: uuid.UUID | None
    actor_id: uuid.UUID | None
    email: str | None
    ip: str | None
    request_id: str | None
    detail: dict[str, object] | None


class InviteRequest(msgspec.Struct, rename="camel"):
    email: Email
    role: Annotated[str, msgspec.Meta(examples=["doctor"])]


class AcceptInvitationRequest(msgspec.Struct, rename="camel"):
    token: Token
    password: Password
    first_name: Name
    last_name: Name


class RoleChangeRequest(msgspec.Struct, rename="camel"):
    role: Annotated[str, msgspec.Meta(examples=["nurse"])]


class InvitationOut(msgspec.Struct, rename="camel"):
    id: uuid.UUID
    email: str
    role: str
    status: str
    expires_at: datetime.datetime
    created_at: datetime.datetime


def invitation_out(invitation: Invitation) -> InvitationOut:
    if invitation.accepted_at is not None:
        status = "accepted"
    elif invitation.revoked_at is not None:
        status = "revoked"
    elif invitation.expires_at <= datetime.datetime.now(datetime.UTC):
        status = "expired"
    else:
        status = "pending"
    return InvitationOut(
        id=invitation.id,
        email=invitation.email,
        role=invitation.role,
        status=status,
        expires_at=invitation.expires_at,
        created_at=invitation.created_at,
    )


class MfaSetupOut(msgspec.Struct, rename="camel"):
    secret: str
    otpauth_uri: str


class MfaCodeRequest(msgspec.Struct, rename="camel"):
    code: Annotated[str, msgspec.Meta(pattern=r"^[0-9]{6}$")]


class MfaEnabledOut(msgspec.Struct, rename="camel"):
    recovery_codes: list[str]


class DisableMfaRequest(msgspec.Struct, rename="camel"):
    """The password and a current code, or one of the recovery codes."""

    password: Password
    code: Annotated[str, msgspec.Meta(pattern=r"^[0-9A-Za-z-]{6,20}$")]
