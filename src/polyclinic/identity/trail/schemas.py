"""The auth event trail as its API gives it (camelCase on the wire)."""

import datetime
import uuid

import msgspec

from polyclinic.web.openapi import published_as


@published_as("polyclinic.identity.schemas")
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
