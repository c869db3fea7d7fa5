"""The trail bound to one request: its session, caller, request id and address, so a
controller records with one call (`audit` is injected by name into clinic routes)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.chart.audit.access import CHART_READ, ChartAccess, chart_access
from polyclinic.chart.audit.services import Action, Actor, Event, events_for, record
from polyclinic.identity.permissions.guards import Principal
from polyclinic.identity.permissions.matrix import Permission
from polyclinic.web.caller import Caller


class AuditTrail:
    def __init__(self, session: AsyncSession, principal: Principal, caller: Caller) -> None:
        self.session = session
        self.principal = principal
        self.actor = Actor(principal.user_id, principal.role, caller.request_id, caller.ip)

    async def open_chart(
        self, patient_id: uuid.UUID, permission: Permission = CHART_READ
    ) -> ChartAccess:
        return await chart_access(self.session, self.principal, patient_id, permission)

    async def record(
        self,
        action: str,
        resource: str,
        patient_id: uuid.UUID | None,
        *,
        resource_id: uuid.UUID | None = None,
        access: object | None = None,
    ) -> None:
        """One entry in the request's transaction (committed with the caller's work)."""
        emergency = isinstance(access, ChartAccess) and access.emergency
        reason = access.reason if isinstance(access, ChartAccess) else None
        event = Event(action, resource, patient_id, resource_id, emergency, reason)
        await record(self.session, self.actor, event)

    async def read(
        self,
        resource: str,
        patient_id: uuid.UUID,
        *,
        resource_id: uuid.UUID | None = None,
        access: object | None = None,
    ) -> None:
        """A read: recorded and committed before the data is served."""
        await self.record(Action.READ, resource, patient_id, resource_id=resource_id, access=access)
        await self.session.commit()

    async def listed(self, resource: str, patient_ids: Sequence[uuid.UUID]) -> None:
        """A page listing patients: one entry per patient shown, committed."""
        await record(self.session, self.actor, *events_for(Action.LIST, resource, patient_ids))
        await self.session.commit()

    async def record_many(self, events: Sequence[Event]) -> None:
        await record(self.session, self.actor, *events)
