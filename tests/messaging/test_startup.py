"""A wrong master key stops the app, the workers and the commands at start-up."""

from __future__ import annotations

import boto3
import pytest
from click.testing import CliRunner
from litestar import Litestar
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.app import create_app
from polyclinic.cli import main
from polyclinic.config import Settings
from polyclinic.errors import UpstreamFailed
from polyclinic.messaging.errors import MasterKeyMismatch
from polyclinic.messaging.keys.check import verify_master_key
from polyclinic.messaging.keys.masters import Keyring
from tests.conftest import make_settings
from tests.messaging.conftest import env_box, kms_box, new_kms_key, new_master_key


async def start(app: Litestar) -> None:
    """Run the app's start-up (and shut-down); raise what stopped it."""
    try:
        async with app.lifespan():
            pass
    except BaseExceptionGroup as group:  # litestar runs its hooks in a task group
        raise group.exceptions[0] from None
    finally:
        await app.state.runtime.engine.dispose()


async def test_the_app_does_not_start_with_another_master_key(
    engine: AsyncEngine, database_url: str
) -> None:
    in_use = new_master_key()
    await verify_master_key(engine, env_box(in_use).keyring)  # recorded by the first start

    wrong = create_app(make_settings(database_url, MESSAGING_MASTER_KEY=new_master_key()))
    with pytest.raises(MasterKeyMismatch, match=r"^MESSAGING_MASTER_KEY is not master key"):
        await start(wrong)

    unset = create_app(make_settings(database_url))
    with pytest.raises(MasterKeyMismatch, match="set MESSAGING_MASTER_KEY"):
        await start(unset)

    await verify_master_key(engine, env_box(in_use).keyring)


async def test_a_recorded_key_id_that_matches_but_does_not_unwrap_still_stops_it(
    engine: AsyncEngine,
) -> None:
    """Should two keys ever share a fingerprint, the check value itself decides."""
    box = env_box(new_master_key())
    await verify_master_key(engine, box.keyring)
    impostor = env_box(new_master_key()).keyring.current
    impostor.key_id = box.keyring.current.key_id
    with pytest.raises(MasterKeyMismatch, match="MESSAGING_MASTER_KEY does not unwrap"):
        await verify_master_key(engine, Keyring(impostor))


async def test_nothing_configured_and_nothing_sealed_starts(engine: AsyncEngine) -> None:
    await verify_master_key(engine, Keyring(None))


async def test_a_kms_alias_pointed_at_another_key_stops_the_start(
    engine: AsyncEngine, kms_key: str
) -> None:
    kms = boto3.client("kms")
    kms.create_alias(AliasName="alias/polyclinic-test", TargetKeyId=kms_key)
    await verify_master_key(engine, kms_box("alias/polyclinic-test").keyring)
    await verify_master_key(engine, kms_box("alias/polyclinic-test").keyring)

    kms.update_alias(AliasName="alias/polyclinic-test", TargetKeyId=new_kms_key())
    with pytest.raises((MasterKeyMismatch, UpstreamFailed), match="MESSAGING_KMS_KEY_ID"):
        await verify_master_key(engine, kms_box("alias/polyclinic-test").keyring)


def test_the_commands_stop_with_one_line_naming_the_setting(
    settings: Settings, database_url: str
) -> None:
    env = {
        "DATABASE_URL": database_url,
        "BASE_DOMAIN": settings.base_domain,
        "JWT_SIGNING_KEY": settings.jwt_signing_key,
    }
    in_use = new_master_key()
    first = CliRunner().invoke(main, ["keys", "check"], env={**env, "MESSAGING_MASTER_KEY": in_use})
    assert first.exit_code == 0, first.output
    assert "is the one in use" in first.output

    wrong = new_master_key()
    for command in (["keys", "check"], ["worker"], ["keys", "rotate-master"]):
        result = CliRunner().invoke(
            main, command, env={**env, "MESSAGING_MASTER_KEY": wrong, "REDIS_URL": "redis://x"}
        )
        assert result.exit_code == 1, result.output
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("Error: MESSAGING_MASTER_KEY is not"), lines
        assert wrong not in result.output and in_use not in result.output
