"""Request and response bodies of the account routes (camelCase on the wire)."""

import datetime
import uuid
from typing import Annotated, Literal, cast

import msgspec

from polyclinic.identity.accounts.models import User, accepted_channels
from polyclinic.web.openapi import published_as

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


class TokenRequest(msgspec.Struct, rename="camel"):
    token: Token


class EmailRequest(msgspec.Struct, rename="camel"):
    email: Annotated[str, msgspec.Meta(min_length=3, max_length=320)]


class ResetPasswordRequest(msgspec.Struct, rename="camel"):
    token: Token
    password: Password


class ClaimAccountRequest(msgspec.Struct, rename="camel"):
    """The token from the clinic's invitation to claim a patient record, and a password."""

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


@published_as("polyclinic.identity.schemas")
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


def message_preferences(user: User) -> MessagePreferences:
    channels = cast("list[Channel]", accepted_channels(user))
    return MessagePreferences(channels=channels, locale=user.locale)


@published_as("polyclinic.identity.schemas")
class UserOut(msgspec.Struct, rename="camel"):
    id: uuid.UUID
    email: str | None
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
