"""Fair shares between clinics: one clinic's traffic must not slow the others down.

Each clinic's requests (anything the tenancy middleware bound to a clinic; the platform API
and health checks are not) pass three limits:

- a request rate, as a token bucket per clinic (`CLINIC_RATE_LIMIT_PER_MINUTE`, bursts of
  `CLINIC_RATE_BURST`), kept in Redis by one Lua script so every process shares it, or in the
  process when there is no Redis (or it cannot be reached); over it: 429 with Retry-After,
  answered only after about `CLINIC_REFUSAL_DELAY_MS`, so a client that ignores Retry-After and
  asks again at once gets one refusal per connection per delay, not as many as a CPU can make;
- requests in flight per process (`CLINIC_MAX_CONCURRENT_REQUESTS`), so one clinic cannot
  hold the whole connection pool; one more waits up to `CLINIC_QUEUE_WAIT_MS` for a place,
  then gets 503 with Retry-After;
- a statement timeout (`CLINIC_STATEMENT_TIMEOUT_MS`) on every clinic transaction opened for
  the request; a statement cancelled by it answers 503, not 500.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import msgspec
from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.plugins import ReceiveRoutePlugin
from litestar.routes import BaseRoute, HTTPRoute
from litestar.types import ASGIApp, Receive, Scope, Send
from redis.asyncio import Redis
from redis.exceptions import RedisError

from polyclinic.config import Settings
from polyclinic.db.context import TenantInfo
from polyclinic.db.session import statement_timeout_ms
from polyclinic.tenancy.middleware import CLINIC_PREFIX
from polyclinic.web.envelope import ErrorEnvelope
from polyclinic.web.openapi import error_spec

logger = logging.getLogger("polyclinic.fairness")

TOO_MANY = "This clinic is sending too many requests; try again in {seconds} s"
TOO_BUSY = "This clinic has too many requests in progress; try again in a moment"
TOO_SLOW = "The request took too long and was stopped; try again in a moment"
QUERY_CANCELED = "57014"  # SQLSTATE of a statement cancelled by statement_timeout
# Past this many remembered clinics, those whose state no longer matters are forgotten.
PRUNE_AT = 10_000
# After Redis fails, clinics are counted in the process for this long before Redis is tried
# again, and a Redis slower than REDIS_TIMEOUT counts as failed: requests never wait on it.
REDIS_RETRY_SECONDS = 5.0
REDIS_TIMEOUT = 0.25

# One token bucket per key: refill at `rate` tokens a second up to `burst`, take one.
# Answers 0 when taken, else the milliseconds until one is there. Redis' own clock, so every
# process agrees whatever their clocks say.
TOKEN_BUCKET = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.ceil((1 - tokens) / rate * 1000)
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return wait
"""


@dataclass(frozen=True)
class FairnessLimits:
    rate_per_minute: int
    burst: int
    refusal_delay_ms: int
    max_concurrent: int
    queue_wait_ms: int
    statement_timeout_ms: int

    @classmethod
    def of(cls, settings: Settings) -> FairnessLimits:
        return cls(
            rate_per_minute=settings.clinic_rate_limit_per_minute,
            burst=settings.clinic_rate_burst,
            refusal_delay_ms=settings.clinic_refusal_delay_ms,
            max_concurrent=settings.clinic_max_concurrent_requests,
            queue_wait_ms=settings.clinic_queue_wait_ms,
            statement_timeout_ms=settings.clinic_statement_timeout_ms,
        )


class LocalBuckets:
    """Token buckets in this process: the rate limit when there is no Redis."""

    def __init__(
        self, per_second: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.per_second = per_second
        self.burst = burst
        self.clock = clock
        self._buckets: dict[uuid.UUID, tuple[float, float]] = {}  # tokens, when
        self._prune_at = PRUNE_AT

    def take(self, key: uuid.UUID) -> float:
        """0 when a token was taken, else the seconds until there is one."""
        now = self.clock()
        tokens, at = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.per_second)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / self.per_second
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > self._prune_at:
            self._prune(now)
        return wait

    def _prune(self, now: float) -> None:
        """Forget the buckets that have filled up again: they are as good as new."""
        self._buckets = {
            key: (tokens, at)
            for key, (tokens, at) in self._buckets.items()
            if tokens + (now - at) * self.per_second < self.burst
        }
        self._prune_at = max(PRUNE_AT, 2 * len(self._buckets))


class ClinicRateLimit:
    """A token bucket per clinic, shared through Redis when there is one."""

    def __init__(
        self, per_minute: int, burst: int, redis: Redis | None, namespace: str = "polyclinic"
    ) -> None:
        self.per_second = per_minute / 60
        self.burst = burst
        self.redis = redis
        self.prefix = f"{namespace}:clinic-rate:"
        self.local = LocalBuckets(self.per_second, burst) if per_minute else None
        self._script = redis.register_script(TOKEN_BUCKET) if redis is not None else None
        # A refused clinic is refused here until its next token is due, without asking Redis:
        # no other process can make tokens come sooner, and a clinic hammering the API costs
        # one dictionary look-up a request.
        self._refused_until: dict[uuid.UUID, float] = {}
        self._redis_failed_at = -math.inf

    async def wait(self, clinic: uuid.UUID) -> float:
        """0 when the clinic may go ahead, else the seconds until it may."""
        if self.local is None:
            return 0.0
        now = time.monotonic()
        until = self._refused_until.get(clinic)
        if until is not None:
            if now < until:
                return until - now
            del self._refused_until[clinic]
        wait = await self._take(clinic)
        if wait > 0:
            self._refused_until[clinic] = now + wait
            if len(self._refused_until) > PRUNE_AT:
                self._refused_until = {k: t for k, t in self._refused_until.items() if t > now}
        return wait

    async def _take(self, clinic: uuid.UUID) -> float:
        assert self.local is not None
        if self._script is None or time.monotonic() - self._redis_failed_at < REDIS_RETRY_SECONDS:
            return self.local.take(clinic)
        try:
            async with asyncio.timeout(REDIS_TIMEOUT):
                wait_ms = await self._script(
                    keys=[f"{self.prefix}{clinic}"], args=[self.per_second, self.burst]
                )
        except (RedisError, OSError, TimeoutError) as exc:
            # Counted in this process meanwhile: each process then allows the full rate.
            logger.warning(
                "clinic rate limit counted in-process for %.0f s: Redis failed (%s)",
                REDIS_RETRY_SECONDS,
                type(exc).__name__,
            )
            self._redis_failed_at = time.monotonic()
            return self.local.take(clinic)
        return int(wait_ms) / 1000


class _Lane:
    __slots__ = ("semaphore", "users")

    def __init__(self, size: int) -> None:
        self.semaphore = asyncio.Semaphore(size)
        self.users = 0


class ClinicGate:
    """At most `size` requests of one clinic in flight in this process; one more waits up to
    `wait_seconds` for a place. Lanes exist only while a clinic has requests here."""

    def __init__(self, size: int, wait_seconds: float) -> None:
        self.size = size
        self.wait_seconds = wait_seconds
        self._lanes: dict[uuid.UUID, _Lane] = {}

    async def enter(self, clinic: uuid.UUID) -> bool:
        lane = self._lanes.get(clinic)
        if lane is None:
            lane = self._lanes[clinic] = _Lane(self.size)
        lane.users += 1
        if not lane.semaphore.locked():
            await lane.semaphore.acquire()  # free: returns at once
            return True
        try:
            async with asyncio.timeout(self.wait_seconds):
                await lane.semaphore.acquire()
        except TimeoutError:
            self._drop(clinic, lane)
            return False
        except BaseException:
            self._drop(clinic, lane)
            raise
        return True

    def leave(self, clinic: uuid.UUID) -> None:
        lane = self._lanes[clinic]
        lane.semaphore.release()
        self._drop(clinic, lane)

    def _drop(self, clinic: uuid.UUID, lane: _Lane) -> None:
        lane.users -= 1
        if lane.users == 0:
            del self._lanes[clinic]


class FairnessMiddleware(ASGIMiddleware):
    """The clinic's limits around each of its requests; runs after tenancy resolution."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, limits: FairnessLimits, redis: Redis | None, namespace: str) -> None:
        self.limits = limits
        self.rate = ClinicRateLimit(limits.rate_per_minute, limits.burst, redis, namespace)
        self.gate = ClinicGate(limits.max_concurrent, limits.queue_wait_ms / 1000)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        tenant: TenantInfo | None = scope["state"].get("tenant")  # type: ignore[typeddict-item]
        if tenant is None:
            await next_app(scope, receive, send)
            return
        wait = await self.rate.wait(tenant.id)
        if wait > 0:
            # Spread around the delay: refusals held alike would come back, and ask again,
            # all at once.
            delay = self.limits.refusal_delay_ms / 1000 * random.uniform(0.5, 1.5)
            if delay:
                await asyncio.sleep(delay)
            seconds = max(1, math.ceil(wait - delay))
            await refuse(send, 429, TOO_MANY.format(seconds=seconds), seconds)
            return
        if not await self.gate.enter(tenant.id):
            await refuse(send, 503, TOO_BUSY, 1)
            return
        token = statement_timeout_ms.set(self.limits.statement_timeout_ms)
        try:
            await next_app(scope, receive, send)
        finally:
            statement_timeout_ms.reset(token)
            self.gate.leave(tenant.id)


async def refuse(send: Send, status: int, message: str, retry_after: int) -> None:
    """The error envelope, sent straight away: a refusal must cost next to nothing."""
    body = msgspec.json.encode(ErrorEnvelope(status_code=status, message=message))
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(retry_after).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


def statement_timed_out(exc: BaseException) -> bool:
    """Whether a clinic's statement was cancelled by its statement timeout, however wrapped."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if getattr(current, "sqlstate", None) == QUERY_CANCELED:
            return True
        orig = getattr(current, "orig", None)
        pending += [
            orig if isinstance(orig, BaseException) else None,
            current.__cause__,
            current.__context__,
        ]
    return False


class FairShareResponses(ReceiveRoutePlugin):
    """Every clinic route declares the answers the limits above give: 429 past the rate,
    503 when the clinic's share is busy or a statement ran out of time."""

    def receive_route(self, route: BaseRoute) -> None:
        if not isinstance(route, HTTPRoute) or not route.path.startswith(CLINIC_PREFIX):
            return
        for handler in route.route_handlers:
            handler.responses = {
                429: error_spec(429),
                503: error_spec(503),
                **(handler.responses or {}),
            }
