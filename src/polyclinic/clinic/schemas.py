from __future__ import annotations

from typing import Annotated

import msgspec


class ClinicPublic(msgspec.Struct, rename="camel"):
    name: str
    subdomain: str
    timezone: str
    phone: str | None = None
    address: str | None = None
    contact_email: str | None = None


class ProfileUpdate(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    phone: (
        Annotated[str, msgspec.Meta(pattern=r"^\+?[0-9 ()./-]{5,40}$")] | msgspec.UnsetType | None
    ) = msgspec.UNSET
    address: (
        Annotated[str, msgspec.Meta(min_length=3, max_length=500)] | msgspec.UnsetType | None
    ) = msgspec.UNSET
    contact_email: (
        Annotated[str, msgspec.Meta(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=320)]
        | msgspec.UnsetType
        | None
    ) = msgspec.UNSET


Origin = Annotated[str, msgspec.Meta(max_length=300, examples=["https://www.riverside.example"])]


class AllowedOrigins(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    """Origins (`https://host[:port]`) whose pages may call the clinic's API from a browser."""

    origins: list[Origin]
