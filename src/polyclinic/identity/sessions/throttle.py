"""Failed sign-ins, counted in the database per account and per client address: a clinic's in
its own schema (`login_failures`), the super-admins' in the platform schema. Nothing here
needs Redis, so the lockout holds under a bare `polyclinic dev` too.

After `LOGIN_MAX_FAILURES` failures within the lockout window an account is locked for
`LOGIN_LOCKOUT_SECONDS`; an address with `LOGIN_MAX_FAILURES_PER_ADDRESS` failures is turned
away for the same time. Unknown emails count like known ones, so a lock reveals nothing.

Each step commits the caller's session (which holds nothing else of its own then): a count
must stay even when the request then fails.
"""

from __future__ import annotations

import datetime
import math

from sqlalchemy import and_, case, delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.config import Settings
from polyclinic.db.base import utcnow
from polyclinic.errors import DomainError
from polyclinic.identity.sessions.models import FailureCounter


class TooManyAttempts(DomainError):
    status_code = 429


class LoginThrottle:
    def __init__(
        self, session: AsyncSession, counters: type[FailureCounter], settings: Settings
    ) -> None:
        """`counters` is the table: the clinic's `LoginFailure`, or the platform's."""
        self.db = session
        self.model = counters
        self.table = counters.__table__  # type: ignore[attr-defined]
        self.settings = settings
        self.window = datetime.timedelta(seconds=settings.login_lockout_seconds)

    async def begin(self, email: str, ip: str | None) -> None:
        """Reserve this attempt before any password is checked.

        The attempt counts as a failure until `succeeded` refunds it, so parallel guesses
        cannot slip past the limit while their hashes are being verified.
        """
        now = utcnow()
        account, address = _account(email), _address(ip)
        rows = {
            row.key: row
            for row in await self.db.execute(
                select(self.table).where(self.table.c.key.in_((account, address)))
            )
        }
        held = rows.get(account)
        if held is not None and held.locked_until is not None and held.locked_until > now:
            await self.db.commit()
            raise self._locked(held.locked_until - now)
        busy = rows.get(address)
        if (
            busy is not None
            and busy.expires_at > now
            and busy.attempts >= self.settings.login_max_failures_per_address
        ):
            await self.db.commit()
            raise TooManyAttempts(
                "Too many failed sign-ins from your address; try again in "
                f"{_minutes(busy.expires_at - now)}"
            )
        attempts = await self._count(account, now)
        if attempts > self.settings.login_max_failures:
            await self._lock(account, now)
            await self.db.commit()
            raise self._locked(self.window)
        await self.db.commit()

    async def failed(self, email: str, ip: str | None) -> bool:
        """The reserved attempt failed; True when that locked the account."""
        now = utcnow()
        account = _account(email)
        await self._count(_address(ip), now)
        attempts = await self.db.scalar(
            select(self.table.c.attempts).where(
                self.table.c.key == account, self.table.c.expires_at > now
            )
        )
        locked = (attempts or 0) >= self.settings.login_max_failures
        if locked:
            await self._lock(account, now)
        await self.db.commit()
        return locked

    async def succeeded(self, email: str) -> None:
        """Only once every factor passed: the failure count starts again. Counts whose
        window has passed are cleared on the way."""
        now = utcnow()
        not_locked = or_(self.table.c.locked_until.is_(None), self.table.c.locked_until <= now)
        await self.db.execute(
            delete(self.table).where(
                or_(
                    and_(self.table.c.key == _account(email), not_locked),
                    and_(self.table.c.expires_at <= now, not_locked),
                )
            )
        )
        await self.db.commit()

    async def _count(self, key: str, now: datetime.datetime) -> int:
        """One more failure under `key`; a count whose window had passed starts again."""
        ends = now + self.window
        statement = (
            insert(self.table)
            .values(key=key, attempts=1, expires_at=ends)
            .on_conflict_do_update(
                index_elements=[self.table.c.key],
                set_={
                    "attempts": case(
                        (self.table.c.expires_at <= now, 1), else_=self.table.c.attempts + 1
                    ),
                    "expires_at": ends,
                },
            )
            .returning(self.table.c.attempts)
        )
        return int((await self.db.execute(statement)).scalar_one())

    async def _lock(self, account: str, now: datetime.datetime) -> None:
        until = now + self.window
        await self.db.execute(
            update(self.table)
            .where(self.table.c.key == account)
            .values(attempts=0, locked_until=until, expires_at=until)
        )

    @staticmethod
    def _locked(remaining: datetime.timedelta) -> TooManyAttempts:
        return TooManyAttempts(
            f"Too many failed sign-ins for this account; try again in {_minutes(remaining)}"
        )


def _account(email: str) -> str:
    return f"account:{email}"


def _address(ip: str | None) -> str:
    return f"address:{ip or '-'}"


def _minutes(remaining: datetime.timedelta) -> str:
    minutes = max(1, math.ceil(remaining.total_seconds() / 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"
