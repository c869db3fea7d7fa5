"""What the app holds for its lifetime, reachable from `app.state.runtime`."""

from __future__ import annotations

from dataclasses import dataclass, field

from dramatiq import Broker
from litestar.datastructures import State
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.config import Settings
from polyclinic.tenancy.resolver import TenantResolver, TrustedProxies
from polyclinic.web.tokens import TokenSigner
from polyclinic.worker.mail import MailQueue


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    resolver: TenantResolver
    signer: TokenSigner
    trusted_proxies: TrustedProxies
    mail: MailQueue
    redis: Redis | None = field(default=None)
    # The job broker, once the app has started (None: jobs run as background tasks).
    broker: Broker | None = field(default=None)


def runtime_of(state: State) -> Runtime:
    return state.runtime  # type: ignore[no-any-return]
