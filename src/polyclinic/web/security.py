"""Browser-facing protections on every response, and CORS closed unless a clinic opens it.

- Every response, errors included: `X-Content-Type-Options: nosniff`, `Referrer-Policy`,
  `X-Frame-Options: DENY` and `Content-Security-Policy: frame-ancestors 'none'` (added to a
  policy a response already has), and on https (the request's own scheme, or
  `X-Forwarded-Proto` from a trusted proxy) `Strict-Transport-Security` for HSTS_MAX_AGE.
- CORS: only a clinic's API (`/api/*` on its host) answers another origin, and only an origin
  the clinic allows (`ClinicOrigins`, answered by the clinic domain): the actual response gets
  `Access-Control-Allow-Origin` for it, a preflight the allowed methods and headers. Any other
  preflight is refused with 403; any other cross-origin request gets no CORS header, so the
  browser keeps its answer from the page. Credentials (cookies) are never allowed across
  origins: pages on other origins use bearer tokens.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from polyclinic.db.context import TenantInfo
from polyclinic.errors import Forbidden
from polyclinic.tenancy.resolver import TrustedProxies
from polyclinic.web.state import ClinicOrigins

REFERRER_POLICY = "strict-origin-when-cross-origin"
FRAME_ANCESTORS = "frame-ancestors 'none'"
CLINIC_API = "/api/"
ALLOWED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
ALLOWED_HEADERS = ("authorization", "content-type", "x-request-id")
EXPOSED_HEADERS = ("x-request-id", "retry-after")
PREFLIGHT_MAX_AGE = 600


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def is_https(scope: Scope, trusted: TrustedProxies) -> bool:
    if scope.get("scheme") == "https":
        return True
    client = scope.get("client")
    if client and client[0] in trusted:
        forwarded = _header(scope, b"x-forwarded-proto")
        return forwarded is not None and forwarded.split(",")[0].strip().lower() == "https"
    return False


def _add_to_list(headers: MutableScopeHeaders, name: str, item: str) -> None:
    """`item` in a comma-separated header such as Vary, once."""
    current = headers.get(name)
    if current is None:
        headers[name] = item
    elif item.lower() not in (part.strip().lower() for part in current.split(",")):
        headers[name] = f"{current}, {item}"


def security_headers(
    hsts_max_age: int, trusted: TrustedProxies
) -> Callable[[Message, Scope], Awaitable[None]]:
    """A `before_send` hook, so errors raised before any route (an unknown host, an unknown
    path) carry the headers too."""

    async def add(message: Message, scope: Scope) -> None:
        if message["type"] != "http.response.start":
            return
        headers = MutableScopeHeaders.from_message(message)
        headers["x-content-type-options"] = "nosniff"
        headers["referrer-policy"] = REFERRER_POLICY
        headers["x-frame-options"] = "DENY"
        policy = headers.get("content-security-policy")
        if policy is None:
            headers["content-security-policy"] = FRAME_ANCESTORS
        elif "frame-ancestors" not in policy:
            headers["content-security-policy"] = f"{policy.rstrip('; ')}; {FRAME_ANCESTORS}"
        if hsts_max_age > 0 and is_https(scope, trusted):
            headers["strict-transport-security"] = f"max-age={hsts_max_age}"

    return add


class CorsMiddleware(ASGIMiddleware):
    """CORS for clinic API routes from the clinic's allowed origins; runs after tenancy, so
    the clinic is known."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, origins: ClinicOrigins) -> None:
        self.origins = origins

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        origin = _header(scope, b"origin")
        preflight = (
            scope["method"] == "OPTIONS"
            and origin is not None
            and _header(scope, b"access-control-request-method") is not None
        )
        on_clinic_api = scope["path"].startswith(CLINIC_API)
        allowed = False
        if origin is not None and on_clinic_api:
            tenant: TenantInfo | None = scope["state"].get("tenant")  # type: ignore[typeddict-item]
            if tenant is not None:
                allowed = origin.lower() in await self.origins.allowed(tenant)
        if preflight:
            await self._preflight(scope, send, origin, allowed)
            return
        if not on_clinic_api:
            await next_app(scope, receive, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)
                _add_to_list(headers, "vary", "Origin")
                if allowed and origin is not None:
                    headers["access-control-allow-origin"] = origin
                    headers["access-control-expose-headers"] = ", ".join(EXPOSED_HEADERS)
            await send(message)

        await next_app(scope, receive, send_with_cors)

    @staticmethod
    async def _preflight(scope: Scope, send: Send, origin: str | None, allowed: bool) -> None:
        method = (_header(scope, b"access-control-request-method") or "").upper()
        if not allowed or origin is None or method not in ALLOWED_METHODS:
            raise Forbidden(
                "This origin may not call this address from a browser",
            )
        headers = [
            (b"access-control-allow-origin", origin.encode("latin-1")),
            (b"access-control-allow-methods", ", ".join(ALLOWED_METHODS).encode()),
            (b"access-control-allow-headers", ", ".join(ALLOWED_HEADERS).encode()),
            (b"access-control-max-age", str(PREFLIGHT_MAX_AGE).encode()),
            (b"vary", b"Origin, Access-Control-Request-Method, Access-Control-Request-Headers"),
            (b"content-length", b"0"),
        ]
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
