"""The audit API: the clinic's trail for its admins (with emergency openings), a patient's
own access log, and opening a chart in an emergency."""

from __future__ import annotations

import datetime
import uuid
from typing import Annotated

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, QueryParameter
from litestar.status_codes import HTTP_201_CREATED
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.chart.audit.access import open_in_emergency, own_patient_id
from polyclinic.chart.audit.models import AuditEntry, EmergencyGrant
from polyclinic.chart.audit.schemas import (
    AccessLogEntryOut,
    AuditEntryOut,
    EmergencyAccessIn,
    EmergencyGrantOut,
)
from polyclinic.chart.audit.trail import AuditTrail
from polyclinic.db.base import utcnow
from polyclinic.errors import FieldError, InvalidInput
from polyclinic.identity.accounts.models import User
from polyclinic.identity.permissions.guards import Principal
from polyclinic.web.envelope import Envelope, PagedEnvelope, ok, page
from polyclinic.web.openapi import error_responses
from polyclinic.web.paging import Limit, Offset
from polyclinic.web.state import Runtime

Instant = Annotated[
    datetime.datetime | None,
    QueryParameter(name="from", description="From this instant on (ISO 8601; UTC when no offset)"),
]
Until = Annotated[
    datetime.datetime | None,
    QueryParameter(name="to", description="Up to this instant, included"),
]


def _utc(value: datetime.datetime | None) -> datetime.datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=datetime.UTC)


def entry_out(e: AuditEntry) -> AuditEntryOut:
    return AuditEntryOut(
        id=e.id,
        seq=e.seq,
        occurred_at=e.occurred_at,
        actor_id=e.actor_id,
        actor_role=e.actor_role,
        patient_id=e.patient_id,
        action=e.action,
        resource=e.resource,
        resource_id=e.resource_id,
        request_id=e.request_id,
        ip=e.ip,
        emergency=e.emergency,
        reason=e.reason,
    )


def grant_out(g: EmergencyGrant, now: datetime.datetime) -> EmergencyGrantOut:
    return EmergencyGrantOut(
        id=g.id,
        user_id=g.user_id,
        patient_id=g.patient_id,
        reason=g.reason,
        granted_at=g.granted_at,
        expires_at=g.expires_at,
        active=g.expires_at > now,
    )


async def _paged(
    session: AsyncSession, where: list[ColumnElement[bool]], limit: int, offset: int
) -> tuple[list[AuditEntry], int]:
    total = await session.scalar(select(func.count()).select_from(AuditEntry).where(*where))
    rows = await session.scalars(
        select(AuditEntry).where(*where).order_by(AuditEntry.seq.desc()).limit(limit).offset(offset)
    )
    return list(rows), total or 0


class AuditController(Controller):
    path = "/audit"
    tags = ["clinic: audit"]

    @get(
        "/",
        summary="Every access to patients' data, newest first",
        description="Filter by patient, actor, time (`from`, `to`), action or emergency access.",
        opt={"permission": ("audit", "read")},
        responses=error_responses(400, 401, 403),
    )
    async def list_entries(
        self,
        clinic_db: NamedDependency[AsyncSession],
        patient_id: Annotated[uuid.UUID | None, QueryParameter(name="patientId")] = None,
        actor_id: Annotated[uuid.UUID | None, QueryParameter(name="actorId")] = None,
        from_: Instant = None,
        to: Until = None,
        action: Annotated[str | None, QueryParameter(name="action", max_length=40)] = None,
        emergency: Annotated[bool | None, QueryParameter(name="emergency")] = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> PagedEnvelope[AuditEntryOut]:
        since, until = _utc(from_), _utc(to)
        if since is not None and until is not None and until < since:
            raise InvalidInput(
                "The period ends before it starts", [FieldError("to", "must not be before from")]
            )
        where: list[ColumnElement[bool]] = []
        if patient_id is not None:
            where.append(AuditEntry.patient_id == patient_id)
        if actor_id is not None:
            where.append(AuditEntry.actor_id == actor_id)
        if since is not None:
            where.append(AuditEntry.occurred_at >= since)
        if until is not None:
            where.append(AuditEntry.occurred_at <= until)
        if action:
            where.append(AuditEntry.action == action)
        if emergency is not None:
            where.append(AuditEntry.emergency.is_(emergency))
        rows, total = await _paged(clinic_db, where, limit, offset)
        return page([entry_out(e) for e in rows], total=total, limit=limit, offset=offset)

    @get(
        "/emergency-access",
        summary="Charts opened in an emergency: who, whose, why, until when; newest first",
        opt={"permission": ("audit", "read")},
        responses=error_responses(400, 401, 403),
    )
    async def list_emergency_access(
        self,
        clinic_db: NamedDependency[AsyncSession],
        active: Annotated[bool | None, QueryParameter(name="active")] = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> PagedEnvelope[EmergencyGrantOut]:
        now = utcnow()
        where: list[ColumnElement[bool]] = []
        if active is True:
            where.append(EmergencyGrant.expires_at > now)
        elif active is False:
            where.append(EmergencyGrant.expires_at <= now)
        total = await clinic_db.scalar(
            select(func.count()).select_from(EmergencyGrant).where(*where)
        )
        rows = await clinic_db.scalars(
            select(EmergencyGrant)
            .where(*where)
            .order_by(EmergencyGrant.granted_at.desc(), EmergencyGrant.id)
            .limit(limit)
            .offset(offset)
        )
        items = [grant_out(g, now) for g in rows]
        return page(items, total=total or 0, limit=limit, offset=offset)


class AccessLogController(Controller):
    path = "/me/access-log"
    tags = ["clinic: audit"]

    @get(
        "/",
        summary="Who accessed my record: name and role, what, when; newest first",
        opt={"permission": ("audit", "read_own")},
        responses=error_responses(400, 401, 403),
    )
    async def my_access_log(
        self,
        clinic_db: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> PagedEnvelope[AccessLogEntryOut]:
        where = [AuditEntry.patient_id == own_patient_id(principal)]
        total = await clinic_db.scalar(select(func.count()).select_from(AuditEntry).where(*where))
        name = func.concat_ws(" ", User.first_name, User.last_name)
        rows = await clinic_db.execute(
            select(AuditEntry, name)
            .outerjoin(User, User.id == AuditEntry.actor_id)
            .where(*where)
            .order_by(AuditEntry.seq.desc())
            .limit(limit)
            .offset(offset)
        )
        items = [
            AccessLogEntryOut(
                occurred_at=e.occurred_at,
                actor_name=actor_name,
                actor_role=e.actor_role,
                action=e.action,
                resource=e.resource,
                emergency=e.emergency,
            )
            for e, actor_name in rows
        ]
        return page(items, total=total or 0, limit=limit, offset=offset)


class EmergencyAccessController(Controller):
    path = "/patients/{patient_id:uuid}/emergency-access"
    tags = ["clinic: audit"]

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        summary="Open a patient's chart in an emergency (staff whose role does not open it)",
        description="The reason is required; the chart opens for `EMERGENCY_ACCESS_MINUTES` "
        "to the caller only, and the opening and every read under it are flagged in the "
        "audit trail for the clinic's admins.",
        opt={"permission": ("chart", "emergency_access")},
        responses=error_responses(400, 401, 403, 404, 409),
    )
    async def open_chart(
        self,
        patient_id: FromPath[uuid.UUID],
        data: JSONBody[EmergencyAccessIn],
        clinic_db: NamedDependency[AsyncSession],
        principal: NamedDependency[Principal],
        audit: NamedDependency[AuditTrail],
        runtime: NamedDependency[Runtime],
    ) -> Envelope[EmergencyGrantOut]:
        grant = await open_in_emergency(
            clinic_db,
            principal,
            audit.actor,
            patient_id,
            data.reason,
            runtime.settings.emergency_access_minutes,
        )
        return ok(
            grant_out(grant, utcnow()),
            "The chart is open to you until the time shown; this is recorded",
            status_code=201,
        )
