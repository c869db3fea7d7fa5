"""Each clinic's data keys, and sealing secrets under them.

A clinic's data key (32 random bytes) lives in the clinic's own schema, only ever wrapped by
the master key (`masters.py`). Secrets are sealed with AES-256-GCM under the current data key
version, with associated data naming the clinic, channel, provider, secret name and key
version: a blob copied to another clinic, channel or provider does not open.

Sealing and opening happen in the caller's clinic session; the clinic is the session's own.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.config import Settings
from polyclinic.db.base import utcnow
from polyclinic.db.context import TenantInfo
from polyclinic.db.session import clinic_of
from polyclinic.messaging.errors import SecretUnreadable
from polyclinic.messaging.keys.masters import Keyring, keyring_for
from polyclinic.messaging.keys.models import DataKey

DATA_KEY_BYTES = 32


NONCE_BYTES = 12


_FORMAT = b"\x01"  # first byte of every blob, so the format can change later


_CACHE_SIZE = 128


@dataclass(frozen=True)
class Sealed:
    key_version: int
    blob: bytes


def data_key_context(clinic: TenantInfo, version: int) -> dict[str, str]:
    """What a wrapped data key is bound to (AAD, or the KMS encryption context)."""
    return {"purpose": "polyclinic-data-key", "clinic": str(clinic.id), "version": str(version)}


def _associated_data(
    clinic: TenantInfo, channel: str, provider: str, name: str, version: int
) -> bytes:
    return msgspec.json.encode(
        ["polyclinic-secret", str(clinic.id), channel, provider, name, version]
    )


async def lock_data_keys(session: AsyncSession, *, exclusive: bool) -> None:
    """Held to the end of the caller's transaction: sealers share it, a rotation takes it
    alone, so nothing is sealed under a version a rotation is retiring."""
    key = func.hashtextextended(f"{clinic_of(session).id}:data_keys", 0)
    lock = func.pg_advisory_xact_lock if exclusive else func.pg_advisory_xact_lock_shared
    await session.execute(select(lock(key)))


class SecretBox:
    """Seals and opens clinic secrets. Unwrapped data keys are kept in a small per-process
    cache, so a send does not call KMS each time."""

    def __init__(self, keyring: Keyring, cache_size: int = _CACHE_SIZE) -> None:
        self.keyring = keyring
        self._cache: OrderedDict[tuple[object, ...], bytes] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    async def seal(
        self,
        session: AsyncSession,
        channel: str,
        provider: str,
        plaintext: bytes,
        *,
        name: str = "",
    ) -> Sealed:
        """Seal under the clinic's current data key (made on first use)."""
        clinic = clinic_of(session)
        await lock_data_keys(session, exclusive=False)
        row = await session.scalar(select(DataKey).order_by(DataKey.version.desc()).limit(1))
        if row is None:
            row = await self.add_data_key(session, version=1)
        key = await self._unwrap(clinic, row)
        nonce = os.urandom(NONCE_BYTES)
        aad = _associated_data(clinic, channel, provider, name, row.version)
        return Sealed(row.version, _FORMAT + nonce + AESGCM(key).encrypt(nonce, plaintext, aad))

    async def open(
        self,
        session: AsyncSession,
        channel: str,
        provider: str,
        sealed: Sealed,
        *,
        name: str = "",
    ) -> bytes:
        clinic = clinic_of(session)
        unreadable = SecretUnreadable(
            f"A sealed {channel} secret does not open at this clinic: it was sealed for "
            "another clinic, channel or provider, or altered"
        )
        row = await session.get(DataKey, sealed.key_version)
        if row is None or not sealed.blob.startswith(_FORMAT):
            raise unreadable
        key = await self._unwrap(clinic, row)
        body = sealed.blob[len(_FORMAT) :]
        aad = _associated_data(clinic, channel, provider, name, sealed.key_version)
        try:
            return AESGCM(key).decrypt(body[:NONCE_BYTES], body[NONCE_BYTES:], aad)
        except (InvalidTag, ValueError):
            raise unreadable from None

    async def add_data_key(self, session: AsyncSession, *, version: int) -> DataKey:
        """A new data key version, wrapped by the current master key. A version made
        meanwhile by a concurrent transaction is taken as it is."""
        clinic = clinic_of(session)
        master = self.keyring.current
        wrapped = await master.wrap(os.urandom(DATA_KEY_BYTES), data_key_context(clinic, version))
        await session.execute(
            insert(DataKey)
            .values(
                version=version,
                wrapped_key=wrapped,
                master_key_id=master.key_id,
                created_at=utcnow(),
            )
            .on_conflict_do_nothing(index_elements=["version"])
        )
        row = await session.get(DataKey, version, populate_existing=True)
        assert row is not None
        return row

    async def unwrap(self, session: AsyncSession, row: DataKey) -> bytes:
        """The data key in a row of the session's clinic (for rotation)."""
        return await self._unwrap(clinic_of(session), row)

    async def _unwrap(self, clinic: TenantInfo, row: DataKey) -> bytes:
        cache_key = (clinic.id, row.version, row.master_key_id, row.wrapped_key)
        with self._lock:
            if (key := self._cache.get(cache_key)) is not None:
                self._cache.move_to_end(cache_key)
                return key
        master = self.keyring.for_id(row.master_key_id)
        try:
            key = await master.unwrap(row.wrapped_key, data_key_context(clinic, row.version))
        except SecretUnreadable:
            raise SecretUnreadable(
                f"Data key version {row.version} of this clinic does not unwrap with master key "
                f"{row.master_key_id}: it was copied from another clinic or altered"
            ) from None
        with self._lock:
            self._cache[cache_key] = key
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return key


@lru_cache(maxsize=4)
def secret_box_for(settings: Settings) -> SecretBox:
    """The process's SecretBox for these settings."""
    return SecretBox(keyring_for(settings))
