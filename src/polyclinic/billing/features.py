"""What a clinic's plan allows: features (a guard) and limits (checked where things are made)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.billing.models import Plan
from polyclinic.billing.quota import PaymentRequired
from polyclinic.billing.subscriptions import clinic_subscription
from polyclinic.db.context import TenantInfo
from polyclinic.db.session import clinic_session
from polyclinic.web.state import runtime_of

FEATURE_NAMES = {
    "videoVisits": "video visits",
    "sms": "text messages",
    "whatsapp": "WhatsApp",
    # The platform's own providers, for clinics that have none for the channel.
    "platformEmail": "the platform's email",
    "platformSms": "the platform's text messages",
}


async def clinic_plan(session: AsyncSession, tenant_id: uuid.UUID) -> Plan | None:
    found = await clinic_subscription(session, tenant_id)
    return found[1] if found is not None else None


async def require_feature(session: AsyncSession, tenant_id: uuid.UUID, feature: str) -> None:
    """402 naming the plan unless the clinic's plan includes `feature`."""
    plan = await clinic_plan(session, tenant_id)
    if plan is None or not plan.features.get(feature):
        name = plan.name if plan else "current"
        raise PaymentRequired(
            f"The {name} plan does not include {FEATURE_NAMES.get(feature, feature)}; "
            "a clinic admin can change plan in billing"
        )


def requires_feature(feature: str) -> Callable[[ASGIConnection, BaseRouteHandler], Awaitable[None]]:
    """A guard: the route answers only for clinics whose plan includes `feature`."""

    async def guard(connection: ASGIConnection, _: BaseRouteHandler) -> None:
        runtime = runtime_of(connection.app.state)
        tenant: TenantInfo = connection.scope["state"]["tenant"]  # type: ignore[typeddict-item]
        async with clinic_session(runtime.engine, tenant) as session:
            await require_feature(session, tenant.id, feature)

    return guard


async def check_limit(
    session: AsyncSession,
    tenant_id: uuid.UUID,
    limit: str,
    noun: str,
    count_in_use: Callable[[], Awaitable[int]],
) -> None:
    """Refuse one more `noun` when the plan's `limit` (e.g. max_staff) is reached.

    A lock per clinic and limit, held to the end of the caller's transaction, is taken
    before counting: two requests cannot both take the last seat."""
    key = func.hashtextextended(f"{tenant_id}:{limit}", 0)
    await session.execute(select(func.pg_advisory_xact_lock(key)))
    plan = await clinic_plan(session, tenant_id)
    allowed = getattr(plan, limit) if plan is not None else None
    if allowed is not None and await count_in_use() >= allowed:
        raise PaymentRequired(
            f"The {plan.name} plan allows {allowed} {noun}; "  # type: ignore[union-attr]
            "a clinic admin can move to a larger plan"
        )
