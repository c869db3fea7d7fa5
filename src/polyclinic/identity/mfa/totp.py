"""What clinic users and platform operators share for two-factor sign-in.

- TOTP codes (cryptography's implementation), each accepted once: the last accepted time
  step is kept and a code for that step or an earlier one is refused.
- The TOTP secret is stored sealed with AES-256-GCM; the associated data binds it to its
  owner, so a secret copied to another row or clinic does not open.
- Recovery codes are kept as HMAC fingerprints, so a database copy alone cannot test guesses.

Keys derive from `MFA_SEALING_KEYS`: the first seals, every one opens, so that list rotates on
its own and `JWT_SIGNING_KEY` can change without touching two-factor sign-in. Secrets and
recovery codes from before that setting derive from the signing keys (current and retired);
they still open, and a secret is sealed again under the first sealing key the next time it
is used.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA1, SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.twofactor import InvalidToken
from cryptography.hazmat.primitives.twofactor.totp import TOTP

from polyclinic.config import Settings
from polyclinic.errors import Conflict, FieldError, InvalidInput, Unauthorized, Unavailable

STEP_SECONDS = 30
RECOVERY_CODES = 10
# Sealed under a sealing key; a value without it is of the signing-key era.
_SEALED_PREFIX = "s1:"


def _derive(secret: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=SHA256(), length=32, salt=None, info=purpose).derive(secret.encode())


def _unseal(sealers: list[AESGCM], raw: bytes, owner: str) -> tuple[bytes, int] | None:
    """The secret and the index of the sealer that opened it."""
    for index, sealer in enumerate(sealers):
        try:
            return sealer.decrypt(raw[:12], raw[12:], owner.encode()), index
        except (InvalidTag, ValueError):
            continue
    return None


class TwoFactorKeys:
    def __init__(self, settings: Settings) -> None:
        signing = [settings.jwt_signing_key, *(key for _, key in settings.jwt_retired_keys)]
        sealing = settings.mfa_sealing_keys
        self._sealers = [AESGCM(_derive(k, b"polyclinic mfa sealing")) for k in sealing]
        self._legacy_sealers = [AESGCM(_derive(k, b"polyclinic mfa secrets")) for k in signing]
        self._fingerprinters = [
            *(_derive(k, b"polyclinic mfa recovery codes") for k in sealing),
            *(_derive(k, b"polyclinic recovery codes") for k in signing),
        ]

    def seal(self, secret: bytes, owner: str) -> str:
        if not self._sealers:
            raise Unavailable(
                "Two-factor sign-in cannot be set up: the server has no MFA_SEALING_KEYS"
            )
        nonce = os.urandom(12)
        sealed = self._sealers[0].encrypt(nonce, secret, owner.encode())
        return _SEALED_PREFIX + base64.b64encode(nonce + sealed).decode()

    def open(self, sealed: str | None, owner: str) -> bytes:
        return self.reopen(sealed, owner)[0]

    def reopen(self, sealed: str | None, owner: str) -> tuple[bytes, str | None]:
        """The secret, and the value to store in place of `sealed` when it is not sealed
        under the first sealing key (None when it is, or when there is no sealing key)."""
        if sealed is None:
            raise Conflict("Start with the two-factor setup step first")
        current = sealed.startswith(_SEALED_PREFIX)
        try:
            raw = base64.b64decode(sealed.removeprefix(_SEALED_PREFIX), validate=True)
        except ValueError:
            raw = b""
        opened = _unseal(self._sealers if current else self._legacy_sealers, raw, owner)
        if opened is None:
            raise Conflict("The stored two-factor secret is unreadable; set it up again")
        secret, index = opened
        if not self._sealers or (current and index == 0):
            return secret, None
        return secret, self.seal(secret, owner)

    def fingerprint(self, code: str) -> str:
        """Of a recovery code, under the current key (what is stored)."""
        return self.fingerprints(code)[0]

    def fingerprints(self, code: str) -> list[str]:
        """Under every key, current first: a code stored before a rotation still matches."""
        normalised = code.strip().lower().encode()
        return [
            hmac.new(key, normalised, hashlib.sha256).hexdigest() for key in self._fingerprinters
        ]


def _totp(secret: bytes) -> TOTP:
    return TOTP(secret, 6, SHA1(), STEP_SECONDS, enforce_key_length=False)


def new_secret(keys: TwoFactorKeys, owner: str, account: str, issuer: str) -> tuple[str, str, str]:
    """(sealed secret to store, base32 secret to show, otpauth URI for a QR code)."""
    secret = os.urandom(20)
    uri = _totp(secret).get_provisioning_uri(account, issuer)
    return keys.seal(secret, owner), base64.b32encode(secret).decode().rstrip("="), uri


def accepted_step(
    secret: bytes, code: str, last_step: int | None, at: float | None = None
) -> int | None:
    """The time step `code` belongs to, if it is valid now (one step of drift either way)
    and newer than the last one accepted; else None."""
    if not code.isdigit():
        return None
    now = time.time() if at is None else at
    totp = _totp(secret)
    for drift in (-STEP_SECONDS, 0, STEP_SECONDS):
        moment = int(now + drift)
        try:
            totp.verify(code.encode(), moment)
        except InvalidToken:
            continue
        step = moment // STEP_SECONDS
        return step if last_step is None or step > last_step else None
    return None


def new_recovery_codes() -> list[str]:
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = secrets.token_hex(6)
        codes.append(f"{raw[:6]}-{raw[6:]}")
    return codes


def code_required() -> Unauthorized:
    return Unauthorized(
        "Enter the code from your authenticator app", [FieldError("totp", "is required")]
    )


def wrong_enrolment_code() -> InvalidInput:
    return InvalidInput("The code is wrong", [FieldError("code", "does not match")])
