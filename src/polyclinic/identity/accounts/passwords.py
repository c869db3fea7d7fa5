"""Argon2id password hashes in PHC string form (cryptography's implementation).

A hash records the parameters it was made with. When they fall behind the current ones, the
next successful sign-in hashes the password again (`verify_and_update`), so raising the cost
reaches every account that signs in.
"""

from __future__ import annotations

import base64
import binascii
import os
from functools import cache

from cryptography.exceptions import InvalidKey
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from zxcvbn.frequency_lists import FREQUENCY_LISTS

MIN_LENGTH = 10
MAX_LENGTH = 256

# OWASP's baseline for Argon2id: 19 MiB, 2 passes, 1 lane.
_MEMORY_KIB = 19 * 1024
_ITERATIONS = 2
_LANES = 1
_LENGTH = 32
# What a hash made now says in its PHC header.
_CURRENT_HEADER = ("argon2id", "v=19", f"m={_MEMORY_KIB},t={_ITERATIONS},p={_LANES}")


def hash_password(password: str) -> str:
    kdf = Argon2id(
        salt=os.urandom(16),
        length=_LENGTH,
        iterations=_ITERATIONS,
        lanes=_LANES,
        memory_cost=_MEMORY_KIB,
    )
    return kdf.derive_phc_encoded(password.encode())


def verify_password(password: str, encoded: str | None) -> bool:
    try:
        Argon2id.verify_phc_encoded(password.encode(), encoded or _dummy_hash())
    except (InvalidKey, ValueError):
        return False
    return encoded is not None


def needs_rehash(encoded: str) -> bool:
    """Whether a stored hash was made with other parameters than a new one would be."""
    parts = encoded.split("$")
    if len(parts) != 6:
        return True
    _, algorithm, version, parameters, _, digest = parts
    try:
        length = len(base64.b64decode(digest + "=" * (-len(digest) % 4)))
    except (binascii.Error, ValueError):
        return True
    return (algorithm, version, parameters) != _CURRENT_HEADER or length != _LENGTH


def verify_and_update(password: str, encoded: str | None) -> tuple[bool, str | None]:
    """(whether the password matches, a new hash to store when the old one is outdated)."""
    if not verify_password(password, encoded):
        return False, None
    assert encoded is not None
    return True, hash_password(password) if needs_rehash(encoded) else None


@cache
def _dummy_hash() -> str:
    """Verified against when the account does not exist, so a miss costs what a hit costs."""
    return hash_password(os.urandom(16).hex())


@cache
def _common_passwords() -> frozenset[str]:
    return frozenset(FREQUENCY_LISTS["passwords"])


def password_problem(password: str) -> str | None:
    """Why a new password is refused, or None."""
    if len(password) < MIN_LENGTH:
        return f"must be at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"must be at most {MAX_LENGTH} characters"
    if password.lower() in _common_passwords() or len(set(password)) < 4:
        return "is too common; choose one that is hard to guess"
    return None
