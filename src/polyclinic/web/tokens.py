"""Short-lived access tokens: JWTs signed with a key that carries a `kid` (joserfc)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, OctKey

from polyclinic.config import Settings

ALGORITHM = "HS256"
PLATFORM_AUDIENCE = "platform"


def clinic_audience(clinic_id: uuid.UUID) -> str:
    """A clinic's tokens name that clinic: every other host refuses them."""
    return f"clinic:{clinic_id}"


class InvalidToken(Exception):
    """The token is malformed, expired, tampered, or not meant for this audience."""


class TokenSigner:
    def __init__(self, settings: Settings) -> None:
        self._key = OctKey.import_key(
            settings.jwt_signing_key.encode(), {"kid": settings.jwt_key_id, "alg": ALGORITHM}
        )
        retired = [
            OctKey.import_key(secret.encode(), {"kid": kid, "alg": ALGORITHM})
            for kid, secret in settings.jwt_retired_keys
        ]
        # Tokens signed with a retired key stay valid until they expire: keys rotate smoothly.
        self._keys = KeySet([self._key, *retired])
        self._kid = settings.jwt_key_id
        self.ttl = settings.access_token_ttl

    def issue(self, subject: uuid.UUID, audience: str, **claims: Any) -> str:
        now = int(time.time())
        payload = {
            "sub": str(subject),
            "aud": audience,
            "iat": now,
            "exp": now + self.ttl,
            "jti": uuid.uuid4().hex,
            **claims,
        }
        return jwt.encode({"alg": ALGORITHM, "kid": self._kid, "typ": "JWT"}, payload, self._key)

    def verify(self, token: str, audience: str) -> dict[str, Any]:
        try:
            decoded = jwt.decode(token, self._keys, algorithms=[ALGORITHM])
            jwt.JWTClaimsRegistry(
                aud={"essential": True, "value": audience},
                sub={"essential": True},
                exp={"essential": True},
            ).validate(decoded.claims)
        except (JoseError, ValueError, TypeError) as exc:
            raise InvalidToken(str(exc)) from None
        return decoded.claims
