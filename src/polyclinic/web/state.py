"""What the app holds for its lifetime, reachable from `app.state.runtime`."""

from __future__ import annotations

from dataclasses import dataclass, field

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.config import Settings
from polyclinic.identity.tokens import TokenSigner
from polyclinic.tenancy.resolver import TenantResolver, TrustedProxies


@dataclass
class Runtime:
    settings: Settings
    engine: AsyncEngine
    resolver: TenantResolver
    signer: TokenSigner
    trusted_proxies: TrustedProxies
    redis: Redis | None = field(default=None)
