"""Master keys for the messaging tests: random `env` keys, and KMS keys in moto.

Every test starts and ends with no master key check recorded and with its clinics' data
keys and secrets gone, so tests elsewhere (which configure no master key) start as before.
"""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator, Iterator

import boto3
import pytest
from moto import mock_aws
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.billing.models import OveragePolicy
from polyclinic.db.context import TenantInfo
from polyclinic.db.session import clinic_transaction, quote_ident
from polyclinic.messaging.channels.secrets import ChannelSecrets
from polyclinic.messaging.keys.masters import EnvMasterKey, Keyring, KmsMasterKey
from polyclinic.messaging.keys.services import SecretBox
from polyclinic.tenancy.models import Tenant
from polyclinic.tenancy.resolver import tenant_info
from tests.billing.test_quota import put_on_plan
from tests.identity.conftest import clinic_a, clinic_b, mailer  # noqa: F401


def new_master_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def env_box(key: str, previous: str | None = None) -> SecretBox:
    old = (
        ()
        if previous is None
        else (EnvMasterKey(base64.b64decode(previous), "MESSAGING_PREVIOUS_MASTER_KEY"),)
    )
    return SecretBox(Keyring(EnvMasterKey(base64.b64decode(key)), old))


def kms_box(key_id: str) -> SecretBox:
    return SecretBox(Keyring(KmsMasterKey(key_id)))


def info(tenant: Tenant) -> TenantInfo:
    bound = tenant_info(tenant)
    assert bound is not None
    return bound


async def put(engine: AsyncEngine, box: SecretBox, tenant: Tenant, **secrets: str) -> None:
    """Store `name=value` secrets of the clinic's email channel (provider smtp)."""
    async with clinic_transaction(engine, info(tenant)) as session:
        store = ChannelSecrets(session, box)
        for name, value in secrets.items():
            await store.put("email", "smtp", name, value)


async def reveal(engine: AsyncEngine, box: SecretBox, tenant: Tenant, name: str) -> str | None:
    async with clinic_transaction(engine, info(tenant)) as session:
        return await ChannelSecrets(session, box).reveal("email", "smtp", name)


async def _forget_master_key_check(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.execute(text("DELETE FROM platform.master_key_check"))


@pytest.fixture(autouse=True)
async def no_master_key_check(engine: AsyncEngine) -> AsyncIterator[None]:
    await _forget_master_key_check(engine)
    yield
    await _forget_master_key_check(engine)


@pytest.fixture
async def clinics(
    engine: AsyncEngine, two_clinics: tuple[Tenant, Tenant]
) -> AsyncIterator[tuple[Tenant, Tenant]]:
    """Two clinics on a plan with every channel, whose data keys and secrets are dropped
    afterwards, so a later master rotation over every clinic meets no key wrapped by a
    test's throwaway master key."""
    for tenant in two_clinics:
        await put_on_plan(
            engine,
            tenant,
            included=None,
            policy=OveragePolicy.BLOCK,
            features={"sms": True, "whatsapp": True},
        )
    yield two_clinics
    async with engine.begin() as connection:
        for tenant in two_clinics:
            schema = quote_ident(tenant.schema_name)
            await connection.execute(text(f"DELETE FROM {schema}.channel_secrets"))
            await connection.execute(text(f"DELETE FROM {schema}.data_keys"))


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """AWS through moto: fake credentials, a fixed region, nothing from the machine."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    with mock_aws():
        yield


@pytest.fixture
def kms_key(aws: None) -> str:
    return new_kms_key()


def new_kms_key() -> str:
    return boto3.client("kms").create_key(Description="polyclinic test")["KeyMetadata"]["KeyId"]  # type: ignore[no-any-return]
