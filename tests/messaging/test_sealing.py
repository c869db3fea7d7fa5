"""Sealing and opening clinic secrets, with an `env` master key and with KMS (moto)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.config import SettingsError
from polyclinic.db.session import clinic_transaction
from polyclinic.messaging.channels.models import ChannelSecret
from polyclinic.messaging.errors import MasterKeyUnavailable, SecretUnreadable
from polyclinic.messaging.keys.masters import Keyring, keyring_from_settings
from polyclinic.messaging.keys.models import DataKey
from polyclinic.messaging.keys.services import Sealed, SecretBox
from polyclinic.tenancy.models import Tenant
from tests.conftest import make_settings
from tests.messaging.conftest import env_box, info, new_master_key, put, reveal

SHARED_ID = uuid.UUID("00000000-0000-4000-8000-00000000c0de")


async def data_keys(engine: AsyncEngine, tenant: Tenant) -> list[DataKey]:
    async with clinic_transaction(engine, info(tenant)) as session:
        return list(await session.scalars(select(DataKey).order_by(DataKey.version)))


async def test_env_master_key_seals_and_opens(
    engine: AsyncEngine, clinics: tuple[Tenant, Tenant], database_url: str
) -> None:
    a, _ = clinics
    settings = make_settings(database_url, MESSAGING_MASTER_KEY=new_master_key())
    box = SecretBox(keyring_from_settings(settings))
    await put(engine, box, a, password="smtp-pass-Ab3!", username="mailer")

    assert await reveal(engine, box, a, "password") == "smtp-pass-Ab3!"
    assert await reveal(engine, box, a, "username") == "mailer"
    assert await reveal(engine, box, a, "missing") is None
    # A fresh process (no cached data key) opens it too.
    fresh = SecretBox(keyring_from_settings(settings))
    assert await reveal(engine, fresh, a, "password") == "smtp-pass-Ab3!"

    [key] = await data_keys(engine, a)
    assert key.version == 1
    assert key.master_key_id == box.keyring.current.key_id
    assert key.master_key_id.startswith("env:")
    assert len(key.wrapped_key) == 12 + 32 + 16  # nonce, key, tag: never the bare key
    async with clinic_transaction(engine, info(a)) as session:
        rows = list(await session.scalars(select(ChannelSecret)))
    assert {row.key_version for row in rows} == {1}
    assert all(b"smtp-pass" not in row.blob for row in rows)


async def test_kms_master_key_seals_and_opens(
    engine: AsyncEngine, clinics: tuple[Tenant, Tenant], database_url: str, kms_key: str
) -> None:
    a, b = clinics
    settings = make_settings(
        database_url, MESSAGING_MASTER_KEY_SOURCE="kms", MESSAGING_KMS_KEY_ID=kms_key
    )
    box = SecretBox(keyring_from_settings(settings))
    await put(engine, box, a, token="twilio-token-1")
    await put(engine, box, b, token="twilio-token-2")

    fresh = SecretBox(keyring_from_settings(settings))
    assert await reveal(engine, fresh, a, "token") == "twilio-token-1"
    assert await reveal(engine, fresh, b, "token") == "twilio-token-2"
    [key] = await data_keys(engine, a)
    assert key.master_key_id == f"kms:{kms_key}"


@pytest.mark.parametrize("master", ["env", "kms"])
async def test_a_data_key_copied_to_another_clinic_does_not_unwrap(
    engine: AsyncEngine,
    clinics: tuple[Tenant, Tenant],
    database_url: str,
    master: str,
    request: pytest.FixtureRequest,
) -> None:
    """The wrapped data key is bound to its clinic (AAD, or the KMS encryption context):
    copying A's data key and secret into B's rows gives B nothing."""
    a, b = clinics
    if master == "kms":
        overrides = {
            "MESSAGING_MASTER_KEY_SOURCE": "kms",
            "MESSAGING_KMS_KEY_ID": request.getfixturevalue("kms_key"),
        }
    else:
        overrides = {"MESSAGING_MASTER_KEY": new_master_key()}
    settings = make_settings(database_url, **overrides)
    box = SecretBox(keyring_from_settings(settings))
    await put(engine, box, a, password="a-secret")
    [key] = await data_keys(engine, a)
    async with clinic_transaction(engine, info(a)) as session:
        row = await session.scalar(select(ChannelSecret))
        assert row is not None
    async with engine.begin() as connection:
        await connection.execute(
            text(
                f'INSERT INTO "{b.schema_name}".data_keys '
                "(version, wrapped_key, master_key_id, created_at) VALUES (1, :w, :m, now())"
            ),
            {"w": key.wrapped_key, "m": key.master_key_id},
        )
        await connection.execute(
            text(
                f'INSERT INTO "{b.schema_name}".channel_secrets (id, channel, provider, name, '
                "key_version, blob, created_at, updated_at) "
                "VALUES (:id, 'email', 'smtp', 'password', 1, :blob, now(), now())"
            ),
            {"id": row.id, "blob": row.blob},
        )

    with pytest.raises(SecretUnreadable, match="Data key version 1 of this clinic does not"):
        await reveal(engine, SecretBox(keyring_from_settings(settings)), b, "password")
    assert await reveal(engine, box, a, "password") == "a-secret"


async def test_a_secret_copied_to_another_clinics_row_does_not_open(
    engine: AsyncEngine, clinics: tuple[Tenant, Tenant]
) -> None:
    """Two clinics with the same channel, provider and row ids: A's blob in B's row fails."""
    a, b = clinics
    box = env_box(new_master_key())
    await put(engine, box, a, password="riverside-password")
    await put(engine, box, b, password="hilltop-password")
    for tenant in (a, b):
        async with clinic_transaction(engine, info(tenant)) as session:
            await session.execute(update(ChannelSecret).values(id=SHARED_ID))
    async with clinic_transaction(engine, info(a)) as session:
        stolen = await session.get(ChannelSecret, SHARED_ID)
        assert stolen is not None
    async with clinic_transaction(engine, info(b)) as session:
        await session.execute(
            update(ChannelSecret)
            .where(ChannelSecret.id == SHARED_ID)
            .values(blob=stolen.blob, key_version=stolen.key_version)
        )

    with pytest.raises(SecretUnreadable, match="does not open at this clinic"):
        await reveal(engine, box, b, "password")
    assert await reveal(engine, box, a, "password") == "riverside-password"


async def test_a_secret_moved_to_another_channel_provider_or_name_does_not_open(
    engine: AsyncEngine, clinics: tuple[Tenant, Tenant]
) -> None:
    a, _ = clinics
    box = env_box(new_master_key())
    async with clinic_transaction(engine, info(a)) as session:
        sealed = await box.seal(session, "email", "smtp", b"s3cret", name="password")
        assert await box.open(session, "email", "smtp", sealed, name="password") == b"s3cret"
        elsewhere = [
            ("email", "ses", "password"),
            ("sms", "smtp", "password"),
            ("whatsapp", "meta", "password"),
            ("email", "smtp", "username"),
        ]
        for channel, provider, name in elsewhere:
            with pytest.raises(SecretUnreadable):
                await box.open(session, channel, provider, sealed, name=name)
        tampered = bytearray(sealed.blob)
        tampered[-1] ^= 1
        unreadable = [
            Sealed(sealed.key_version, bytes(tampered)),
            Sealed(sealed.key_version + 1, sealed.blob),  # no such key version
            Sealed(sealed.key_version, sealed.blob[:10]),
        ]
        for bad in unreadable:
            with pytest.raises(SecretUnreadable):
                await box.open(session, "email", "smtp", bad, name="password")


async def test_without_a_master_key_nothing_is_sealed_and_the_error_says_what_to_set(
    engine: AsyncEngine, clinics: tuple[Tenant, Tenant]
) -> None:
    a, _ = clinics
    with pytest.raises(MasterKeyUnavailable, match="set MESSAGING_MASTER_KEY") as raised:
        await put(engine, SecretBox(Keyring(None)), a, password="never-stored")
    assert raised.value.status_code == 503
    async with clinic_transaction(engine, info(a)) as session:
        assert await session.scalar(select(ChannelSecret)) is None


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"MESSAGING_MASTER_KEY": "not base64!"}, "MESSAGING_MASTER_KEY is malformed"),
        ({"MESSAGING_MASTER_KEY": "c2hvcnQ="}, "MESSAGING_MASTER_KEY is malformed"),
        (
            {"MESSAGING_PREVIOUS_MASTER_KEY": "QUFBQQ=="},
            "MESSAGING_PREVIOUS_MASTER_KEY is malformed",
        ),
        ({"MESSAGING_MASTER_KEY_SOURCE": "kms"}, "MESSAGING_KMS_KEY_ID is required"),
        ({"MESSAGING_MASTER_KEY_SOURCE": "vault"}, "MESSAGING_MASTER_KEY_SOURCE is malformed"),
    ],
)
def test_bad_master_key_settings_name_the_setting(
    database_url: str, overrides: dict[str, str], named: str
) -> None:
    with pytest.raises(SettingsError, match=named) as raised:
        make_settings(database_url, **overrides)
    for value in overrides.values():
        if value not in ("kms", "vault"):
            assert value not in str(raised.value)
