"""Request and response bodies of the platform API (camelCase on the wire)."""

from __future__ import annotations

import datetime
import uuid
from typing import Annotated

import msgspec

Email = Annotated[
    str,
    msgspec.Meta(
        max_length=320,
        pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$|^[^@\s]+@localhost$",
        examples=["admin@riverside.example"],
    ),
]


class LoginRequest(msgspec.Struct, rename="camel"):
    email: Annotated[str, msgspec.Meta(min_length=3, max_length=320)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
    totp: Annotated[str, msgspec.Meta(pattern=r"^[0-9A-Za-z-]{6,20}$")] | None = None


class AccessToken(msgspec.Struct, rename="camel"):
    access_token: str
    expires_in: int
    mfa_enrolment_required: bool = False
    token_type: str = "Bearer"


class ClinicCreate(msgspec.Struct, rename="camel"):
    name: Annotated[str, msgspec.Meta(pattern=r"\S", max_length=200, examples=["Riverside Clinic"])]
    subdomain: Annotated[str, msgspec.Meta(min_length=1, max_length=63, examples=["riverside"])]
    timezone: Annotated[str, msgspec.Meta(min_length=1, max_length=64, examples=["Europe/Berlin"])]
    admin_email: Email


class ClinicOut(msgspec.Struct, rename="camel"):
    id: uuid.UUID
    name: str
    subdomain: str
    status: str
    timezone: str
    admin_email: str
    schema_version: str | None
    last_error: str | None
    created_at: datetime.datetime
    updated_at: datetime.datetime
    deleted_at: datetime.datetime | None
    suspended_by: str | None = None
    suspension_reason: str | None = None


class DomainCreate(msgspec.Struct, rename="camel"):
    host: Annotated[
        str, msgspec.Meta(min_length=1, max_length=253, examples=["book.riverside.example"])
    ]


class DomainOut(msgspec.Struct, rename="camel"):
    id: uuid.UUID
    host: str
    is_primary: bool
    created_at: datetime.datetime
