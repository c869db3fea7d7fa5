"""Failed sign-ins, counted in Redis per account and per client address, per clinic.

After `LOGIN_MAX_FAILURES` failures within the lockout window an account is locked for
`LOGIN_LOCKOUT_SECONDS`; an address with `LOGIN_MAX_FAILURES_PER_ADDRESS` failures is turned
away for the same time. Unknown emails count like known ones, so a lock reveals nothing.
"""

from __future__ import annotations

import logging

from redis.asyncio import Redis

from polyclinic.config import Settings
from polyclinic.errors import DomainError

logger = logging.getLogger("polyclinic.identity")


class TooManyAttempts(DomainError):
    status_code = 429


class LoginThrottle:
    def __init__(self, redis: Redis | None, settings: Settings, scope: str) -> None:
        """`scope` keeps counts apart: `clinic:<id>` for a clinic, `platform` for operators."""
        self.redis = redis
        self.settings = settings
        self.prefix = f"{settings.redis_namespace}:{scope}:login"

    def _keys(self, email: str, ip: str | None) -> tuple[str, str, str]:
        return (
            f"{self.prefix}:fail:account:{email}",
            f"{self.prefix}:fail:address:{ip or '-'}",
            f"{self.prefix}:locked:{email}",
        )

    async def begin(self, email: str, ip: str | None) -> None:
        """Reserve this attempt before any password is checked.

        The attempt counts as a failure until `succeeded` refunds it, so parallel guesses
        cannot slip past the limit while their hashes are being verified.
        """
        if self.redis is None:
            return
        account, address, locked = self._keys(email, ip)
        lock_ttl = await self.redis.ttl(locked)
        if lock_ttl and lock_ttl > 0:
            raise self._locked(lock_ttl)
        if int(await self.redis.get(address) or 0) >= self.settings.login_max_failures_per_address:
            retry = await self.redis.ttl(address)
            raise TooManyAttempts(
                f"Too many failed sign-ins from your address; try again in {_minutes(retry)}"
            )
        window = self.settings.login_lockout_seconds
        async with self.redis.pipeline(transaction=True) as pipe:
            attempts, _ = await pipe.incr(account).expire(account, window).execute()
        if attempts > self.settings.login_max_failures:
            await self.redis.set(locked, 1, ex=window)
            raise self._locked(window)

    async def failed(self, email: str, ip: str | None) -> bool:
        """The reserved attempt failed; True when that locked the account."""
        if self.redis is None:
            return False
        account, address, locked = self._keys(email, ip)
        window = self.settings.login_lockout_seconds
        async with self.redis.pipeline(transaction=True) as pipe:
            _, _, attempts = await pipe.incr(address).expire(address, window).get(account).execute()
        if int(attempts or 0) >= self.settings.login_max_failures:
            await self.redis.set(locked, 1, ex=window)
            await self.redis.delete(account)
            return True
        return False

    async def succeeded(self, email: str) -> None:
        """Only once every factor passed: the failure count starts again."""
        if self.redis is not None:
            await self.redis.delete(self._keys(email, None)[0])

    @staticmethod
    def _locked(seconds: int) -> TooManyAttempts:
        return TooManyAttempts(
            f"Too many failed sign-ins for this account; try again in {_minutes(seconds)}"
        )


def _minutes(seconds: int) -> str:
    minutes = max(1, (seconds + 59) // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"
