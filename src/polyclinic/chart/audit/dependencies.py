"""The request's audit trail, injected by name (`audit`) into clinic routes."""

from __future__ import annotations

from litestar.di import NamedDependency, Provide
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.chart.audit.trail import AuditTrail
from polyclinic.identity.permissions.guards import Principal
from polyclinic.web.caller import Caller


async def provide_audit(
    clinic_db: NamedDependency[AsyncSession],
    principal: NamedDependency[Principal],
    caller: NamedDependency[Caller],
) -> AuditTrail:
    return AuditTrail(clinic_db, principal, caller)


AUDIT_DEPENDENCIES = {"audit": Provide(provide_audit)}
