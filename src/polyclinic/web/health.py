"""Liveness and readiness, on every host."""

from __future__ import annotations

import asyncio

import msgspec
from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import FromQuery
from sqlalchemy import text

from polyclinic.errors import FieldError, NotFound, Unavailable
from polyclinic.tenancy.models import TenantStatus
from polyclinic.tenancy.resolver import normalize_host
from polyclinic.web.envelope import Envelope, ok
from polyclinic.web.openapi import error_responses
from polyclinic.web.state import Runtime

CHECK_TIMEOUT_SECONDS = 2.0


class Readiness(msgspec.Struct):
    database: str
    redis: str


class HealthController(Controller):
    tags = ["health"]

    @get("/health", summary="The process is up")
    async def health(self) -> Envelope[dict[str, str]]:
        return ok({"status": "up"})

    @get(
        "/ready",
        summary="The database and Redis answer",
        responses=error_responses(503),
    )
    async def ready(self, runtime: NamedDependency[Runtime]) -> Envelope[Readiness]:
        database = await _check(self._database(runtime))
        redis = (
            await _check(runtime.redis.ping()) if runtime.redis is not None else "not configured"
        )
        failing = [
            FieldError(name, state)
            for name, state in (("database", database), ("redis", redis))
            if state.startswith("unreachable")
        ]
        if failing:
            raise Unavailable("Not ready", failing)
        return ok(Readiness(database=database, redis=redis), "Ready")

    @get(
        "/tls/allowed",
        summary="Whether the proxy may get a certificate for this host (on-demand TLS)",
        responses=error_responses(400, 404),
    )
    async def tls_allowed(
        self, request: Request, domain: FromQuery[str], runtime: NamedDependency[Runtime]
    ) -> Envelope[dict[str, str]]:
        """Answers only the proxy (a TRUSTED_PROXIES or loopback address)."""
        client = request.client.host if request.client else None
        if client not in runtime.trusted_proxies and client not in ("127.0.0.1", "::1"):
            raise NotFound("Nothing is here: check the address")
        host = normalize_host(domain)
        tenant = await runtime.resolver.resolve(host)
        if tenant is None or tenant.status in (TenantStatus.DELETED, TenantStatus.FAILED):
            raise NotFound(f"{host} is not a clinic's domain")
        return ok({"domain": host})

    @staticmethod
    async def _database(runtime: Runtime) -> None:
        async with runtime.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))


async def _check(probe: object) -> str:
    try:
        await asyncio.wait_for(probe, CHECK_TIMEOUT_SECONDS)  # type: ignore[arg-type]
    except Exception as exc:
        return f"unreachable ({type(exc).__name__})"
    return "ok"
