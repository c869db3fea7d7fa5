"""The clinic's auth event trail, for its administrators."""

from __future__ import annotations

from advanced_alchemy.filters import LimitOffset, OrderBy
from advanced_alchemy.repository import SQLAlchemyAsyncRepository
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import FromQuery
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.identity.trail.models import AuthEvent
from polyclinic.identity.trail.schemas import AuthEventOut
from polyclinic.web.envelope import PagedEnvelope, page
from polyclinic.web.openapi import error_responses
from polyclinic.web.paging import Limit, Offset


class AuthEventRepository(SQLAlchemyAsyncRepository[AuthEvent]):
    model_type = AuthEvent


class AuthEventsController(Controller):
    path = "/auth-events"
    tags = ["clinic: auth"]

    @get(
        "/",
        summary="Sign-ins, failures, password and role changes, newest first",
        opt={"permission": ("auth_events", "read")},
        responses=error_responses(400, 401, 403),
    )
    async def list_events(
        self,
        clinic_db: NamedDependency[AsyncSession],
        event: FromQuery[str | None] = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> PagedEnvelope[AuthEventOut]:
        filters: list = [LimitOffset(limit, offset), OrderBy("occurred_at", "desc")]
        if event:
            filters.append(AuthEvent.event == event)
        rows, total = await AuthEventRepository(session=clinic_db).get_many_and_count(*filters)
        items = [
            AuthEventOut(
                id=e.id,
                occurred_at=e.occurred_at,
                event=e.event,
                user_id=e.user_id,
                actor_id=e.actor_id,
                email=e.email,
                ip=e.ip,
                request_id=e.request_id,
                detail=e.detail,
            )
            for e in rows
        ]
        return page(items, total=total, limit=limit, offset=offset)
