"""Resolves every request's host to the platform, a clinic, or nothing.

`/platform/*` and `/webhooks/*` answer only on the platform host, `/api/*` only on an
active clinic's host; the clinic goes into `scope["state"]` and a contextvar.
"""

from __future__ import annotations

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from polyclinic.db.context import TenantInfo, current_tenant
from polyclinic.errors import Forbidden, NotFound, Unavailable
from polyclinic.tenancy.models import PLATFORM_SUSPENSION, SUSPENDED_BY_BILLING, TenantStatus
from polyclinic.tenancy.resolver import TenantResolver, TrustedProxies, normalize_host

PLATFORM_PREFIXES = ("/platform/", "/webhooks/")
CLINIC_PREFIX = "/api/"
# A clinic suspended for not paying keeps these, so its admin can sign in and pay.
OPEN_WHILE_UNPAID = ("/api/v1/auth/", "/api/v1/billing/")


def request_host(scope: Scope, trusted: TrustedProxies) -> str:
    headers = dict(scope.get("headers", []))
    client = scope.get("client")
    raw = None
    if client and client[0] in trusted:
        forwarded = headers.get(b"x-forwarded-host")
        if forwarded:
            raw = forwarded.decode("latin-1").split(",")[0]
    if raw is None:
        raw = headers.get(b"host", b"").decode("latin-1")
    return normalize_host(raw)


class TenancyMiddleware(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    def __init__(
        self, resolver: TenantResolver, platform_hosts: frozenset[str], trusted: TrustedProxies
    ) -> None:
        self.resolver = resolver
        self.platform_hosts = platform_hosts
        self.trusted = trusted

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        path = scope["path"]
        on_platform_route = path.startswith(PLATFORM_PREFIXES)
        on_clinic_route = path.startswith(CLINIC_PREFIX)
        if not (on_platform_route or on_clinic_route):
            await next_app(scope, receive, send)
            return
        host = request_host(scope, self.trusted)
        if on_platform_route:
            if host not in self.platform_hosts:
                raise NotFound("The platform API answers only on the platform host")
            await next_app(scope, receive, send)
            return
        if host in self.platform_hosts:
            raise NotFound("The clinic API answers only on a clinic's own address")
        tenant = await self.resolver.resolve(host)
        self._check(tenant, path)
        assert tenant is not None
        scope["state"]["tenant"] = tenant  # type: ignore[typeddict-item]
        token = current_tenant.set(tenant)
        try:
            await next_app(scope, receive, send)
        finally:
            current_tenant.reset(token)

    @staticmethod
    def _check(tenant: TenantInfo | None, path: str) -> None:
        if tenant is None or tenant.status in (TenantStatus.DELETED, TenantStatus.FAILED):
            raise NotFound("No clinic answers at this address")
        if tenant.status == TenantStatus.SUSPENDED:
            if tenant.suspended_by == SUSPENDED_BY_BILLING and path.startswith(OPEN_WHILE_UNPAID):
                return
            raise Forbidden(tenant.suspension_reason or PLATFORM_SUSPENSION)
        if tenant.status == TenantStatus.PROVISIONING:
            raise Unavailable("This clinic is still being set up; try again in a moment")
