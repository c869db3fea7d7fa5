"""What a request or job knows about its clinic."""

from __future__ import annotations

import uuid
from contextvars import ContextVar

import msgspec


class TenantInfo(msgspec.Struct, frozen=True):
    id: uuid.UUID
    slug: str
    name: str
    schema_name: str
    db_role: str
    status: str
    timezone: str
    suspension_reason: str | None = None
    suspended_by: str | None = None


current_tenant: ContextVar[TenantInfo | None] = ContextVar("current_tenant", default=None)
