"""Request-scoped dependencies: database sessions bound to the platform or to the clinic."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.db.context import TenantInfo
from polyclinic.db.session import clinic_session, platform_session
from polyclinic.web.state import Runtime, runtime_of
from polyclinic.worker.outbox import OUTBOX_WRITTEN, nudge_relay


async def provide_runtime(state: State) -> Runtime:
    return runtime_of(state)


async def provide_platform_db(state: State) -> AsyncIterator[AsyncSession]:
    async with platform_session(runtime_of(state).engine) as session:
        yield session


async def provide_clinic(request: Request) -> TenantInfo:
    tenant: TenantInfo | None = request.scope["state"].get("tenant")  # type: ignore[typeddict-item]
    if tenant is None:
        raise RuntimeError("a clinic dependency was used on a route outside /api/")
    return tenant


async def provide_clinic_db(
    state: State, clinic: NamedDependency[TenantInfo]
) -> AsyncIterator[AsyncSession]:
    """A session for this clinic only; committed by the service, rolled back if left open.
    If the request wrote to the clinic's outbox, its relay is asked for at once."""
    runtime = runtime_of(state)
    async with clinic_session(runtime.engine, clinic) as session:
        yield session
    if session.info.get(OUTBOX_WRITTEN) and runtime.broker is not None:
        await asyncio.to_thread(nudge_relay, runtime.broker, clinic)


DEPENDENCIES = {
    "runtime": Provide(provide_runtime),
    "platform_db": Provide(provide_platform_db),
    "clinic": Provide(provide_clinic),
    "clinic_db": Provide(provide_clinic_db),
}
