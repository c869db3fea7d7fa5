"""Two-factor sign-in for platform super-admins (same TOTP and recovery codes as clinics)."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.config import Settings
from polyclinic.db.base import utcnow
from polyclinic.errors import Conflict, FieldError, InvalidInput
from polyclinic.identity.mfa import (
    SecretBox,
    code_matches,
    code_required,
    new_recovery_codes,
    new_secret,
    open_secret,
    wrong_enrolment_code,
)
from polyclinic.identity.opaque import hash_token
from polyclinic.identity.passwords import verify_password
from polyclinic.platform.models import PlatformUser

ISSUER = "Polyclinic platform"


def must_enrol(user: PlatformUser, settings: Settings) -> bool:
    return settings.mfa_required_for_super_admins and user.mfa_enabled_at is None


class PlatformMfa:
    def __init__(self, session: AsyncSession, settings: Settings) -> None:
        self.db = session
        self.box = SecretBox(settings)

    @staticmethod
    def _bound(user: PlatformUser) -> str:
        return f"platform:{user.id}"

    async def setup(self, user: PlatformUser) -> tuple[str, str]:
        if user.mfa_enabled_at is not None:
            raise Conflict("Two-factor sign-in is already on; turn it off first to replace it")
        user.mfa_secret, shown, uri = new_secret(self.box, self._bound(user), user.email, ISSUER)
        await self.db.commit()
        return shown, uri

    async def enable(self, user: PlatformUser, code: str) -> list[str]:
        if user.mfa_enabled_at is not None:
            raise Conflict("Two-factor sign-in is already on")
        if not code_matches(open_secret(self.box, user.mfa_secret, self._bound(user)), code):
            raise wrong_enrolment_code()
        codes = new_recovery_codes()
        user.mfa_enabled_at = utcnow()
        user.mfa_recovery_hashes = [hash_token(c) for c in codes]
        await self.db.commit()
        return codes

    async def disable(self, user: PlatformUser, password: str) -> None:
        if not await asyncio.to_thread(verify_password, password, user.password_hash):
            raise InvalidInput("The password is wrong", [FieldError("password", "is wrong")])
        user.mfa_secret = user.mfa_enabled_at = user.mfa_recovery_hashes = None
        await self.db.commit()

    async def passes(self, user: PlatformUser, code: str | None) -> bool:
        if user.mfa_enabled_at is None:
            return True
        if not code:
            raise code_required()
        secret = open_secret(self.box, user.mfa_secret, self._bound(user))
        if code.isdigit() and code_matches(secret, code):
            return True
        remaining = list(user.mfa_recovery_hashes or [])
        if hash_token(code.lower()) not in remaining:
            return False
        remaining.remove(hash_token(code.lower()))
        user.mfa_recovery_hashes = remaining
        await self.db.commit()
        return True
