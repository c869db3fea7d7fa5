"""The start-up check: a process whose master key is not the one in use stops at once.

The first process started with a master key records a value wrapped by it in
`platform.master_key_check`; every later start unwraps that value. `rotate-master` moves the
record to the new key once every clinic is rewrapped.
"""

from __future__ import annotations

import logging
import os

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from polyclinic.db.base import utcnow
from polyclinic.db.session import platform_session
from polyclinic.messaging.errors import MasterKeyMismatch, SecretUnreadable
from polyclinic.messaging.keys.masters import Keyring, MasterKey
from polyclinic.messaging.keys.models import MasterKeyCheck

CHECK_ID = 1
CHECK_CONTEXT = {"purpose": "polyclinic-master-key-check"}
logger = logging.getLogger("polyclinic.messaging")


async def verify_master_key(engine: AsyncEngine, keyring: Keyring) -> None:
    """Raise `MasterKeyMismatch`, naming the setting, unless the configured master key (or,
    during a rotation, the previous one) is the one in use."""
    async with platform_session(engine) as session, session.begin():
        row = await session.get(MasterKeyCheck, CHECK_ID)
        if row is None:
            if not keyring.configured:
                return
            await _record(session, keyring.current)
            row = await session.get(MasterKeyCheck, CHECK_ID, populate_existing=True)
            assert row is not None
        if not keyring.configured:
            raise MasterKeyMismatch(
                f"Clinic secrets are sealed under master key {row.master_key_id}, but no master "
                "key is configured: set MESSAGING_MASTER_KEY (or MESSAGING_MASTER_KEY_SOURCE=kms "
                "and MESSAGING_KMS_KEY_ID) to that key"
            )
        master = keyring.for_id(row.master_key_id)
        await _unwrap_check(master, row)
        if master.key_id != keyring.current.key_id:
            logger.warning(
                "data keys are still wrapped by master key %s: run `polyclinic keys "
                "rotate-master` to finish the rotation",
                row.master_key_id,
            )


async def rewrap_check(engine: AsyncEngine, keyring: Keyring) -> None:
    """Record the current master key as the one in use (the end of a master rotation)."""
    current = keyring.current
    async with platform_session(engine) as session, session.begin():
        row = await session.get(MasterKeyCheck, CHECK_ID, with_for_update=True)
        if row is None:
            await _record(session, current)
            return
        await _unwrap_check(keyring.for_id(row.master_key_id), row)
        row.check_blob = await current.wrap(os.urandom(32), CHECK_CONTEXT)
        row.master_key_id = current.key_id
        row.updated_at = utcnow()


async def _record(session: AsyncSession, master: MasterKey) -> None:
    now = utcnow()
    await session.execute(
        insert(MasterKeyCheck)
        .values(
            id=CHECK_ID,
            master_key_id=master.key_id,
            check_blob=await master.wrap(os.urandom(32), CHECK_CONTEXT),
            created_at=now,
            updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["id"])
    )


async def _unwrap_check(master: MasterKey, row: MasterKeyCheck) -> None:
    try:
        await master.unwrap(row.check_blob, CHECK_CONTEXT)
    except SecretUnreadable:
        raise MasterKeyMismatch(
            f"{master.setting} does not unwrap the check value recorded under master key "
            f"{row.master_key_id}: it is not the master key the clinics' data keys are "
            "wrapped with"
        ) from None
