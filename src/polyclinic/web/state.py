"""What the app holds for its lifetime, reachable from `app.state.runtime`."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from dramatiq import Broker
from litestar.datastructures import State
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from polyclinic.config import Settings
from polyclinic.db.context import TenantInfo
from polyclinic.tenancy.resolver import TenantResolver, TrustedProxies
from polyclinic.web.tokens import TokenSigner
from polyclinic.worker.mail import MailQueue


class PlanLimits(Protocol):
    """The clinic's plan refuses one more of something (staff seats, practitioners) once its
    limit is reached; billing answers it, domains below billing ask through this."""

    async def __call__(
        self,
        session: AsyncSession,
        clinic_id: uuid.UUID,
        limit: str,
        noun: str,
        count_in_use: Callable[[], Awaitable[int]],
    ) -> None: ...


class ClinicOrigins(Protocol):
    """The origins (`https://host[:port]`, lower case) a clinic lets call its API from a
    browser; the clinic domain answers it, the CORS middleware asks through this."""

    async def allowed(self, clinic: TenantInfo) -> frozenset[str]: ...

    def forget(self, clinic_id: uuid.UUID) -> None:
        """The clinic changed its list: read it again next time."""


class NoOrigins:
    """No clinic allows any other origin (CORS closed)."""

    async def allowed(self, clinic: TenantInfo) -> frozenset[str]:
        return frozenset()

    def forget(self, clinic_id: uuid.UUID) -> None:
        pass


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    resolver: TenantResolver
    signer: TokenSigner
    trusted_proxies: TrustedProxies
    mail: MailQueue
    plan_limits: PlanLimits
    redis: Redis | None = field(default=None)
    # The job broker, once the app has started (None: jobs run as background tasks).
    broker: Broker | None = field(default=None)
    clinic_origins: ClinicOrigins = field(default_factory=NoOrigins)


def runtime_of(state: State) -> Runtime:
    return state.runtime  # type: ignore[no-any-return]
