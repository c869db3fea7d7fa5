"""Opaque single-use tokens (refresh, verification, reset, invitation): only hashes are kept."""

from __future__ import annotations

import hashlib
import secrets


def new_token() -> tuple[str, str]:
    """(token to hand out, hash to store)."""
    token = secrets.token_urlsafe(32)
    return token, hash_token(token)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
