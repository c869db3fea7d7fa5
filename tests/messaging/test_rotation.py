"""Master-key rotation rewraps every clinic's data keys; clinic-key rotation re-seals."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.cli import main
from polyclinic.config import Settings
from polyclinic.db.session import clinic_transaction
from polyclinic.messaging.channels.models import ChannelSecret
from polyclinic.messaging.errors import MasterKeyMismatch
from polyclinic.messaging.keys.check import verify_master_key
from polyclinic.messaging.keys.masters import keyring_from_settings
from polyclinic.messaging.keys.models import DataKey
from polyclinic.messaging.keys.rotation import rotate_clinic_key, rotate_master_key
from polyclinic.messaging.keys.services import SecretBox
from polyclinic.tenancy.models import Tenant
from tests.conftest import make_settings
from tests.messaging.conftest import env_box, info, kms_box, new_master_key, put, reveal

SECRETS = {
    "a": {"password": "riverside-smtp-pw", "username": "riverside"},
    "b": {"password": "hilltop-smtp-pw", "api_key": "hilltop-key"},
}


async def wrapped(engine: AsyncEngine, tenant: Tenant) -> dict[int, tuple[bytes, str]]:
    async with clinic_transaction(engine, info(tenant)) as session:
        rows = await session.scalars(select(DataKey))
        return {row.version: (row.wrapped_key, row.master_key_id) for row in rows}


async def secret_versions(engine: AsyncEngine, tenant: Tenant) -> dict[str, int]:
    async with clinic_transaction(engine, info(tenant)) as session:
        rows = await session.scalars(select(ChannelSecret))
        return {row.name: row.key_version for row in rows}


async def all_readable(engine: AsyncEngine, box: SecretBox, a: Tenant, b: Tenant) -> bool:
    for tenant, secrets in ((a, SECRETS["a"]), (b, SECRETS["b"])):
        for name, value in secrets.items():
            if await reveal(engine, box, tenant, name) != value:
                return False
    return True


async def seal_everything(engine: AsyncEngine, box: SecretBox, a: Tenant, b: Tenant) -> None:
    await put(engine, box, a, **SECRETS["a"])
    await put(engine, box, b, **SECRETS["b"])


async def test_master_rotation_rewraps_every_clinic_and_keeps_secrets_readable(
    engine: AsyncEngine, clinics: tuple[Tenant, Tenant]
) -> None:
    a, b = clinics
    old, new = new_master_key(), new_master_key()
    old_box = env_box(old)
    await verify_master_key(engine, old_box.keyring)  # the first start records the old key
    await seal_everything(engine, old_box, a, b)
    # Clinic A also has a second data key version, which must be rewrapped as well.
    await rotate_clinic_key(engine, old_box, info(a))
    before = {tenant.slug: await wrapped(engine, tenant) for tenant in clinics}

    rotating = env_box(new, previous=old)
    # While it runs, a process with both keys starts and reads everything.
    await verify_master_key(engine, rotating.keyring)
    report = await rotate_master_key(engine, rotating)

    assert report.rewrapped[a.slug] == 2 and report.rewrapped[b.slug] == 1
    assert report.ok and report.check_moved, report.failed
    new_id = rotating.keyring.current.key_id
    for tenant in clinics:
        after = await wrapped(engine, tenant)
        assert after.keys() == before[tenant.slug].keys()
        for version, (wrapped_key, master_key_id) in after.items():
            assert master_key_id == new_id
            assert wrapped_key != before[tenant.slug][version][0]
    # Nothing re-encrypted: the secrets keep their key versions and blobs open as before.
    assert await secret_versions(engine, a) == {"password": 2, "username": 2}
    only_new = env_box(new)
    assert await all_readable(engine, only_new, a, b)
    await verify_master_key(engine, only_new.keyring)
    with pytest.raises(MasterKeyMismatch, match="MESSAGING_MASTER_KEY is not master key"):
        await verify_master_key(engine, env_box(old).keyring)
    # A second run has nothing left to do.
    again = await rotate_master_key(engine, only_new, slug=a.slug)
    assert again.rewrapped == {a.slug: 0}


async def test_master_rotation_from_env_to_kms_and_back_without_the_kms_setting(
    engine: AsyncEngine, clinics: tuple[Tenant, Tenant], kms_key: str, database_url: str
) -> None:
    a, b = clinics
    env_key = new_master_key()
    await seal_everything(engine, env_box(env_key), a, b)

    to_kms = SecretBox(
        keyring_from_settings(
            make_settings(
                database_url,
                MESSAGING_MASTER_KEY_SOURCE="kms",
                MESSAGING_KMS_KEY_ID=kms_key,
                MESSAGING_PREVIOUS_MASTER_KEY=env_key,
            )
        )
    )
    for tenant in clinics:
        assert (await rotate_master_key(engine, to_kms, slug=tenant.slug)).ok
    assert all(m == f"kms:{kms_key}" for _, m in (await wrapped(engine, a)).values())
    assert await all_readable(engine, kms_box(kms_key), a, b)

    # Back to an env key: the KMS key is named in each row, so no setting is needed for it.
    back = env_box(new_master_key())
    for tenant in clinics:
        assert (await rotate_master_key(engine, back, slug=tenant.slug)).rewrapped == {
            tenant.slug: 1
        }
    assert await all_readable(engine, back, a, b)


async def test_master_rotation_without_the_old_key_fails_per_clinic_and_changes_nothing(
    engine: AsyncEngine, clinics: tuple[Tenant, Tenant]
) -> None:
    a, b = clinics
    old = new_master_key()
    await seal_everything(engine, env_box(old), a, b)
    before = await wrapped(engine, a)

    report = await rotate_master_key(engine, env_box(new_master_key()), slug=a.slug)

    assert not report.ok and not report.check_moved
    assert "MESSAGING_PREVIOUS_MASTER_KEY" in report.failed[a.slug]
    assert await wrapped(engine, a) == before
    assert await all_readable(engine, env_box(old), a, b)


async def test_clinic_rotation_reseals_under_the_new_version_and_old_blobs_still_open(
    engine: AsyncEngine, clinics: tuple[Tenant, Tenant]
) -> None:
    a, b = clinics
    box = env_box(new_master_key())
    await seal_everything(engine, box, a, b)
    # A blob sealed under version 1 and held by a caller outside channel_secrets.
    async with clinic_transaction(engine, info(a)) as session:
        held = await box.seal(session, "sms", "twilio", b"held-elsewhere", name="auth_token")
    assert held.key_version == 1

    result = await rotate_clinic_key(engine, box, info(a))

    assert (result.version, result.resealed) == (2, 2)
    assert await secret_versions(engine, a) == {"password": 2, "username": 2}
    assert await secret_versions(engine, b) == {"password": 1, "api_key": 1}
    assert sorted(await wrapped(engine, a)) == [1, 2]
    assert sorted(await wrapped(engine, b)) == [1]
    fresh = SecretBox(box.keyring)
    assert await all_readable(engine, fresh, a, b)
    async with clinic_transaction(engine, info(a)) as session:
        assert await fresh.open(session, "sms", "twilio", held, name="auth_token") == (
            b"held-elsewhere"
        )
        # New secrets go under the new version.
        assert (await fresh.seal(session, "sms", "twilio", b"x", name="sid")).key_version == 2


async def invoke(*args: Any, **kwargs: Any) -> Result:
    """The command runs its own event loop, so it runs in a thread here."""
    return await asyncio.to_thread(CliRunner().invoke, *args, **kwargs)


def cli_env(settings: Settings, database_url: str, **extra: str) -> dict[str, str]:
    return {
        "DATABASE_URL": database_url,
        "BASE_DOMAIN": settings.base_domain,
        "JWT_SIGNING_KEY": settings.jwt_signing_key,
        **extra,
    }


async def test_keys_commands_rotate_a_clinic_and_the_master_key(
    engine: AsyncEngine, clinics: tuple[Tenant, Tenant], settings: Settings, database_url: str
) -> None:
    a, b = clinics
    old, new = new_master_key(), new_master_key()
    await seal_everything(engine, env_box(old), a, b)

    rotated = await invoke(
        main,
        ["keys", "rotate-clinic", a.slug],
        env=cli_env(settings, database_url, MESSAGING_MASTER_KEY=old),
    )
    assert rotated.exit_code == 0, rotated.output
    assert f"{a.slug}: data key version 2, 2 secrets re-sealed" in rotated.output

    unknown = await invoke(
        main,
        ["keys", "rotate-clinic", "nobody-here"],
        env=cli_env(settings, database_url, MESSAGING_MASTER_KEY=old),
    )
    assert unknown.exit_code != 0
    assert "No clinic has the subdomain 'nobody-here'" in unknown.output

    master = await invoke(
        main,
        ["keys", "rotate-master", "--tenant", b.slug],
        env=cli_env(
            settings, database_url, MESSAGING_MASTER_KEY=new, MESSAGING_PREVIOUS_MASTER_KEY=old
        ),
    )
    assert master.exit_code == 0, master.output
    assert f"  {b.slug}: 1 rewrapped" in master.output
    for output in (rotated.output, unknown.output, master.output):
        assert old not in output and new not in output
    assert await all_readable(engine, env_box(new, previous=old), a, b)
