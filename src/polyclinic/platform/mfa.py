"""Two-factor sign-in for platform super-admins (same TOTP and recovery codes as clinics)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.config import Settings
from polyclinic.db.base import utcnow
from polyclinic.errors import Conflict, FieldError, InvalidInput
from polyclinic.identity.mfa.totp import (
    TwoFactorKeys,
    accepted_step,
    code_required,
    new_recovery_codes,
    new_secret,
    wrong_enrolment_code,
)
from polyclinic.platform.models import PlatformUser

ISSUER = "Polyclinic platform"


def must_enrol(user: PlatformUser, settings: Settings) -> bool:
    return settings.mfa_required_for_super_admins and user.mfa_enabled_at is None


class PlatformMfa:
    def __init__(self, session: AsyncSession, settings: Settings) -> None:
        self.db = session
        self.keys = TwoFactorKeys(settings)

    @staticmethod
    def _owner(user: PlatformUser) -> str:
        return f"platform:{user.id}"

    async def setup(self, user: PlatformUser) -> tuple[str, str]:
        if user.mfa_enabled_at is not None:
            raise Conflict("Two-factor sign-in is already on; turn it off first to replace it")
        user.mfa_secret, shown, uri = new_secret(self.keys, self._owner(user), user.email, ISSUER)
        user.mfa_last_step = None
        await self.db.commit()
        return shown, uri

    async def enable(self, user: PlatformUser, code: str) -> list[str]:
        if user.mfa_enabled_at is not None:
            raise Conflict("Two-factor sign-in is already on")
        secret = self.keys.open(user.mfa_secret, self._owner(user))
        step = accepted_step(secret, code, user.mfa_last_step)
        if step is None:
            raise wrong_enrolment_code()
        codes = new_recovery_codes()
        user.mfa_enabled_at = utcnow()
        user.mfa_last_step = step
        user.mfa_recovery_hashes = [self.keys.fingerprint(c) for c in codes]
        await self.db.commit()
        return codes

    async def disable(self, user: PlatformUser, code: str) -> None:
        """Needs a current code (or a recovery code); the caller confirms the password first."""
        if not await self.passes(user, code):
            raise InvalidInput("The code is wrong", [FieldError("code", "does not match")])
        user.mfa_secret = user.mfa_enabled_at = user.mfa_recovery_hashes = None
        user.mfa_last_step = None
        await self.db.commit()

    async def passes(self, user: PlatformUser, code: str | None) -> bool:
        if user.mfa_enabled_at is None:
            return True
        if not code:
            raise code_required()
        # Locked: two sign-ins cannot spend the same code, TOTP or recovery.
        await self.db.refresh(user, with_for_update=True)
        remaining = list(user.mfa_recovery_hashes or [])
        spent = next((f for f in self.keys.fingerprints(code) if f in remaining), None)
        if spent is not None:
            remaining.remove(spent)
            user.mfa_recovery_hashes = remaining
            await self.db.commit()
            return True
        secret, resealed = self.keys.reopen(user.mfa_secret, self._owner(user))
        step = accepted_step(secret, code, user.mfa_last_step)
        if step is None:
            await self.db.commit()
            return False
        user.mfa_last_step = step
        if resealed is not None:  # sealed under a retired key: under the current one now
            user.mfa_secret = resealed
        await self.db.commit()
        return True
