"""What a request or job knows about its clinic."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def in_clinic(clinic: TenantInfo) -> Iterator[TenantInfo]:
    """Work on one clinic's behalf outside a request: its jobs and log lines carry it."""
    token = current_tenant.set(clinic)
    try:
        yield clinic
    finally:
        current_tenant.reset(token)
