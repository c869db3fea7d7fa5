"""No secret, data key or master key reaches the logs, even at DEBUG."""

from __future__ import annotations

import base64
import logging

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.db.session import clinic_transaction
from polyclinic.messaging.keys.check import verify_master_key
from polyclinic.messaging.keys.masters import keyring_from_settings
from polyclinic.messaging.keys.models import DataKey
from polyclinic.messaging.keys.rotation import rotate_clinic_key, rotate_master_key
from polyclinic.messaging.keys.services import SecretBox
from polyclinic.tenancy.models import Tenant
from tests.conftest import make_settings
from tests.messaging.conftest import info, new_master_key, put, reveal

SECRET = "p@ss-Wörd-that-must-not-leak-7731"


def forms(value: bytes) -> list[str]:
    return [value.hex(), base64.b64encode(value).decode(), repr(value)[2:-1]]


@pytest.mark.parametrize("master", ["env", "kms"])
async def test_captured_logs_hold_no_secret(
    engine: AsyncEngine,
    clinics: tuple[Tenant, Tenant],
    database_url: str,
    caplog: pytest.LogCaptureFixture,
    request: pytest.FixtureRequest,
    master: str,
) -> None:
    a, _ = clinics
    env_key, next_key = new_master_key(), new_master_key()
    if master == "kms":
        kms_key = request.getfixturevalue("kms_key")
        first = {"MESSAGING_MASTER_KEY_SOURCE": "kms", "MESSAGING_KMS_KEY_ID": kms_key}
    else:
        first = {"MESSAGING_MASTER_KEY": env_key}
    box = SecretBox(keyring_from_settings(make_settings(database_url, **first)))
    caplog.set_level(logging.DEBUG)

    await verify_master_key(engine, box.keyring)
    await put(engine, box, a, password=SECRET)
    assert await reveal(engine, box, a, "password") == SECRET
    await rotate_clinic_key(engine, box, info(a))
    rotated = SecretBox(
        keyring_from_settings(
            make_settings(
                database_url, MESSAGING_MASTER_KEY=next_key, MESSAGING_PREVIOUS_MASTER_KEY=env_key
            )
        )
    )
    await verify_master_key(engine, rotated.keyring)
    assert (await rotate_master_key(engine, rotated, slug=a.slug)).ok
    assert await reveal(engine, rotated, a, "password") == SECRET

    caplog.set_level(logging.WARNING)
    async with clinic_transaction(engine, info(a)) as session:
        rows = list(await session.scalars(select(DataKey)))
        data_keys = [await rotated.unwrap(session, row) for row in rows]
    logged = caplog.text
    assert SECRET not in logged
    for key in (env_key, next_key):
        assert key not in logged
    for data_key in data_keys:
        for form in forms(data_key):
            assert form not in logged
