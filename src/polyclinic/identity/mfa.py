"""Two-factor sign-in with TOTP (cryptography's implementation) and single-use recovery codes.

The TOTP secret is stored encrypted (AES-256-GCM); the associated data binds it to its clinic
and user, so a secret copied to another row or clinic does not decrypt.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import os
import secrets
import time
import uuid

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA1, SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.twofactor import InvalidToken
from cryptography.hazmat.primitives.twofactor.totp import TOTP
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.config import Settings
from polyclinic.db.base import utcnow
from polyclinic.errors import Conflict, FieldError, InvalidInput, Unauthorized
from polyclinic.identity import events
from polyclinic.identity.events import Caller
from polyclinic.identity.models import User, UserToken
from polyclinic.identity.opaque import hash_token
from polyclinic.identity.passwords import verify_password
from polyclinic.tenancy.context import TenantInfo

RECOVERY = "mfa_recovery"
RECOVERY_CODES = 10
_STEP = 30
_NEVER = datetime.timedelta(days=365 * 100)


class SecretBox:
    """AES-GCM under a key derived from the signing key; nonce stored with the ciphertext."""

    def __init__(self, settings: Settings) -> None:
        key = HKDF(algorithm=SHA256(), length=32, salt=None, info=b"polyclinic mfa secrets").derive(
            settings.jwt_signing_key.encode()
        )
        self._aead = AESGCM(key)

    def seal(self, secret: bytes, bound_to: str) -> str:
        nonce = os.urandom(12)
        return base64.b64encode(
            nonce + self._aead.encrypt(nonce, secret, bound_to.encode())
        ).decode()

    def open(self, sealed: str, bound_to: str) -> bytes:
        raw = base64.b64decode(sealed)
        return self._aead.decrypt(raw[:12], raw[12:], bound_to.encode())


def _totp(secret: bytes) -> TOTP:
    return TOTP(secret, 6, SHA1(), _STEP, enforce_key_length=False)


def code_matches(secret: bytes, code: str, at: float | None = None) -> bool:
    """Accept the current step and one on either side (clock drift)."""
    now = time.time() if at is None else at
    totp = _totp(secret)
    for drift in (-_STEP, 0, _STEP):
        try:
            totp.verify(code.encode(), int(now + drift))
            return True
        except InvalidToken:
            continue
    return False


def new_recovery_codes() -> list[str]:
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = secrets.token_hex(5)
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


def new_secret(box: SecretBox, bound_to: str, account: str, issuer: str) -> tuple[str, str, str]:
    """(sealed secret to store, base32 secret to show, otpauth URI for a QR code)."""
    secret = os.urandom(20)
    uri = _totp(secret).get_provisioning_uri(account, issuer)
    return box.seal(secret, bound_to), base64.b32encode(secret).decode().rstrip("="), uri


def open_secret(box: SecretBox, sealed: str | None, bound_to: str) -> bytes:
    if sealed is None:
        raise Conflict("Start with the two-factor setup step first")
    try:
        return box.open(sealed, bound_to)
    except (InvalidTag, ValueError):
        raise Conflict("The stored two-factor secret is unreadable; set it up again") from None


def code_required() -> Unauthorized:
    return Unauthorized(
        "Enter the code from your authenticator app", [FieldError("totp", "is required")]
    )


def wrong_enrolment_code() -> InvalidInput:
    return InvalidInput("The code is wrong", [FieldError("code", "does not match")])


class Mfa:
    def __init__(self, session: AsyncSession, tenant: TenantInfo, settings: Settings) -> None:
        self.db = session
        self.tenant = tenant
        self.box = SecretBox(settings)

    def _bound(self, user: User) -> str:
        return f"{self.tenant.id}:{user.id}"

    def _secret(self, user: User) -> bytes:
        return open_secret(self.box, user.mfa_secret, self._bound(user))

    async def setup(self, user: User) -> tuple[str, str]:
        """A new secret awaiting confirmation: (base32 secret, otpauth URI)."""
        if user.mfa_enabled_at is not None:
            raise Conflict("Two-factor sign-in is already on; turn it off first to replace it")
        user.mfa_secret, shown, uri = new_secret(
            self.box, self._bound(user), user.email, self.tenant.name
        )
        await self.db.commit()
        return shown, uri

    async def enable(self, user: User, code: str, caller: Caller) -> list[str]:
        if user.mfa_enabled_at is not None:
            raise Conflict("Two-factor sign-in is already on")
        if not code_matches(self._secret(user), code):
            raise wrong_enrolment_code()
        user.mfa_enabled_at = utcnow()
        codes = await self._new_recovery_codes(user)
        events.record(self.db, caller, "mfa_enabled", user_id=user.id)
        await self.db.commit()
        return codes

    async def disable(self, user: User, password: str, caller: Caller) -> None:
        if not await asyncio.to_thread(verify_password, password, user.password_hash):
            raise InvalidInput("The password is wrong", [FieldError("password", "is wrong")])
        user.mfa_secret = None
        user.mfa_enabled_at = None
        await self._drop_recovery_codes(user.id)
        events.record(self.db, caller, "mfa_disabled", user_id=user.id)
        await self.db.commit()

    async def passes(self, user: User, code: str | None, caller: Caller) -> bool:
        """Whether sign-in may go on; raises when the code is missing."""
        if user.mfa_enabled_at is None:
            return True
        if not code:
            raise code_required()
        if code.isdigit() and code_matches(self._secret(user), code):
            return True
        recovery = (
            await self.db.execute(
                select(UserToken)
                .where(
                    UserToken.user_id == user.id,
                    UserToken.purpose == RECOVERY,
                    UserToken.token_hash == hash_token(code.lower()),
                    UserToken.used_at.is_(None),
                )
                .with_for_update()
            )
        ).scalar_one_or_none()
        if recovery is None:
            return False
        recovery.used_at = utcnow()
        events.record(self.db, caller, "mfa_recovery_code_used", user_id=user.id)
        return True

    async def _new_recovery_codes(self, user: User) -> list[str]:
        await self._drop_recovery_codes(user.id)
        codes = new_recovery_codes()
        self.db.add_all(
            UserToken(
                id=uuid.uuid4(),
                user_id=user.id,
                purpose=RECOVERY,
                token_hash=hash_token(code),
                expires_at=utcnow() + _NEVER,
            )
            for code in codes
        )
        return codes

    async def _drop_recovery_codes(self, user_id: uuid.UUID) -> None:
        await self.db.execute(
            delete(UserToken).where(UserToken.user_id == user_id, UserToken.purpose == RECOVERY)
        )
