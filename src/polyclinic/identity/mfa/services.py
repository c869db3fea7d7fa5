"""Two-factor sign-in for clinic users: TOTP and single-use recovery codes (see `totp`)."""

from __future__ import annotations

import datetime
import uuid

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.config import Settings
from polyclinic.db.base import utcnow
from polyclinic.db.context import TenantInfo
from polyclinic.errors import Conflict, FieldError, InvalidInput
from polyclinic.identity.accounts.models import User, UserToken
from polyclinic.identity.mfa.totp import (
    TwoFactorKeys,
    accepted_step,
    code_required,
    new_recovery_codes,
    new_secret,
    wrong_enrolment_code,
)
from polyclinic.identity.trail import services as trail
from polyclinic.web.caller import Caller

RECOVERY = "mfa_recovery"


_NEVER = datetime.timedelta(days=365 * 100)


class Mfa:
    def __init__(self, session: AsyncSession, tenant: TenantInfo, settings: Settings) -> None:
        self.db = session
        self.tenant = tenant
        self.keys = TwoFactorKeys(settings)

    def _owner(self, user: User) -> str:
        return f"{self.tenant.id}:{user.id}"

    async def setup(self, user: User) -> tuple[str, str]:
        """A new secret awaiting confirmation: (base32 secret, otpauth URI)."""
        if user.mfa_enabled_at is not None:
            raise Conflict("Two-factor sign-in is already on; turn it off first to replace it")
        user.mfa_secret, shown, uri = new_secret(
            self.keys, self._owner(user), user.email, self.tenant.name
        )
        user.mfa_last_step = None
        await self.db.commit()
        return shown, uri

    async def enable(self, user: User, code: str, caller: Caller) -> list[str]:
        if user.mfa_enabled_at is not None:
            raise Conflict("Two-factor sign-in is already on")
        secret = self.keys.open(user.mfa_secret, self._owner(user))
        step = accepted_step(secret, code, user.mfa_last_step)
        if step is None:
            raise wrong_enrolment_code()
        user.mfa_enabled_at = utcnow()
        user.mfa_last_step = step
        codes = await self._new_recovery_codes(user)
        trail.record(self.db, caller, "mfa_enabled", user_id=user.id)
        await self.db.commit()
        return codes

    async def disable(self, user: User, code: str, caller: Caller) -> None:
        """Needs a current code (or a recovery code); the caller confirms the password first."""
        if not await self.passes(user, code, caller):
            raise InvalidInput("The code is wrong", [FieldError("code", "does not match")])
        user.mfa_secret = None
        user.mfa_enabled_at = None
        user.mfa_last_step = None
        await self._drop_recovery_codes(user.id)
        trail.record(self.db, caller, "mfa_disabled", user_id=user.id)
        await self.db.commit()

    async def passes(self, user: User, code: str | None, caller: Caller) -> bool:
        """Whether sign-in may go on; raises when the code is missing."""
        if user.mfa_enabled_at is None:
            return True
        if not code:
            raise code_required()
        if await self._spend_recovery_code(user, code, caller):
            return True
        # Locked so two sign-ins with the same code cannot both pass.
        await self.db.refresh(user, with_for_update=True)
        secret, resealed = self.keys.reopen(user.mfa_secret, self._owner(user))
        step = accepted_step(secret, code, user.mfa_last_step)
        if step is None:
            return False
        user.mfa_last_step = step
        if resealed is not None:  # sealed under a retired key: under the current one now
            user.mfa_secret = resealed
        return True

    async def _spend_recovery_code(self, user: User, code: str, caller: Caller) -> bool:
        recovery = (
            await self.db.execute(
                select(UserToken)
                .where(
                    UserToken.user_id == user.id,
                    UserToken.purpose == RECOVERY,
                    UserToken.token_hash.in_(self.keys.fingerprints(code)),
                    UserToken.used_at.is_(None),
                )
                .with_for_update()
            )
        ).scalar_one_or_none()
        if recovery is None:
            return False
        recovery.used_at = utcnow()
        trail.record(self.db, caller, "mfa_recovery_code_used", user_id=user.id)
        return True

    async def _new_recovery_codes(self, user: User) -> list[str]:
        await self._drop_recovery_codes(user.id)
        codes = new_recovery_codes()
        self.db.add_all(
            UserToken(
                id=uuid.uuid4(),
                user_id=user.id,
                purpose=RECOVERY,
                token_hash=self.keys.fingerprint(code),
                expires_at=utcnow() + _NEVER,
            )
            for code in codes
        )
        return codes

    async def _drop_recovery_codes(self, user_id: uuid.UUID) -> None:
        await self.db.execute(
            delete(UserToken).where(UserToken.user_id == user_id, UserToken.purpose == RECOVERY)
        )
