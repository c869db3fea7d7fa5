"""Two-factor secrets are sealed under MFA_SEALING_KEYS, not under the token signing key:
rotating JWT_SIGNING_KEY leaves enrolled users signing in with their codes, secrets sealed
the old way still open and are sealed again under the new key, and the sealing keys rotate
on their own."""

from __future__ import annotations

import base64
import datetime
import os
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from litestar import Litestar
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.app import create_app
from polyclinic.config import Settings
from polyclinic.db.session import clinic_transaction, platform_session
from polyclinic.errors import Conflict
from polyclinic.identity.accounts.models import User
from polyclinic.identity.mfa.totp import TwoFactorKeys
from polyclinic.platform.models import PlatformUser
from polyclinic.platform.services import PlatformUsers
from polyclinic.tenancy.models import Tenant
from polyclinic.tenancy.resolver import tenant_info
from tests.conftest import Client, make_settings
from tests.identity.conftest import ClinicApi, add_user
from tests.identity.test_mfa import code_for, enrol, login_body

NEW_JWT_KEY = "a-brand-new-signing-key-" + "n" * 32
OLD_SEALING_KEY = "the-sealing-key-before-" + "o" * 32
NEW_SEALING_KEY = "the-sealing-key-after-" + "s" * 32


@asynccontextmanager
async def app_with(database_url: str, **overrides: str) -> AsyncIterator[Litestar]:
    """Another deployment of the same database, with other settings."""
    app = create_app(make_settings(database_url, **overrides))
    try:
        yield app
    finally:
        runtime = app.state.runtime
        await runtime.engine.dispose()
        if runtime.redis is not None:
            await runtime.redis.aclose()


def legacy_seal(settings: Settings, secret: bytes, owner: str) -> str:
    """A TOTP secret as it was sealed before MFA_SEALING_KEYS: under a key derived from
    JWT_SIGNING_KEY."""
    key = HKDF(algorithm=SHA256(), length=32, salt=None, info=b"polyclinic mfa secrets").derive(
        settings.jwt_signing_key.encode()
    )
    nonce = os.urandom(12)
    return base64.b64encode(nonce + AESGCM(key).encrypt(nonce, secret, owner.encode())).decode()


def secret_b32(secret: bytes) -> str:
    return base64.b32encode(secret).decode().rstrip("=")


async def stored_secret(engine: AsyncEngine, tenant: Tenant, email: str) -> str:
    info = tenant_info(tenant)
    assert info is not None
    async with clinic_transaction(engine, info) as session:
        sealed = await session.scalar(select(User.mfa_secret).where(User.email == email))
    assert sealed is not None
    return sealed


async def give_secret(engine: AsyncEngine, tenant: Tenant, email: str, sealed: str) -> None:
    info = tenant_info(tenant)
    assert info is not None
    async with clinic_transaction(engine, info) as session:
        await session.execute(
            update(User)
            .where(User.email == email)
            .values(mfa_secret=sealed, mfa_enabled_at=datetime.datetime.now(datetime.UTC))
        )


async def test_rotating_the_jwt_signing_key_leaves_two_factor_sign_in_working(
    database_url: str, clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    await add_user(engine, clinic_a.tenant, "keeps-mfa@example.com", "doctor")
    token = (await clinic_a.login("keeps-mfa@example.com"))["accessToken"]
    secret, recovery = await enrol(clinic_a, token)

    # A new deployment: a new signing key, the old one not even kept as retired.
    async with app_with(database_url, JWT_SIGNING_KEY=NEW_JWT_KEY) as rotated:
        clinic = ClinicApi(Client(rotated), clinic_a.tenant)
        without = await clinic.call("POST", "/auth/login", json=login_body("keeps-mfa@example.com"))
        assert without.status_code == 401  # still asks for the code
        signed_in = await clinic.call(
            "POST",
            "/auth/login",
            json=login_body("keeps-mfa@example.com", totp=code_for(secret, time.time() + 30)),
        )
        assert signed_in.status_code == 200, signed_in.text
        assert signed_in.json()["data"]["user"]["mfaEnabled"] is True
        by_recovery = await clinic.call(
            "POST", "/auth/login", json=login_body("keeps-mfa@example.com", totp=recovery[0])
        )
        assert by_recovery.status_code == 200, by_recovery.text


async def test_a_secret_sealed_under_the_signing_key_still_opens_and_is_sealed_again(
    database_url: str, settings: Settings, clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    user = await add_user(engine, clinic_a.tenant, "enrolled-long-ago@example.com", "nurse")
    secret = os.urandom(20)
    owner = f"{clinic_a.tenant.id}:{user.id}"
    before = legacy_seal(settings, secret, owner)
    await give_secret(engine, clinic_a.tenant, user.email, before)

    signed_in = await clinic_a.call(
        "POST", "/auth/login", json=login_body(user.email, totp=code_for(secret_b32(secret)))
    )
    assert signed_in.status_code == 200, signed_in.text

    after = await stored_secret(engine, clinic_a.tenant, user.email)
    assert after != before
    # Sealed under the sealing key now: it opens whatever the signing key is.
    other_jwt_key = make_settings(database_url, JWT_SIGNING_KEY=NEW_JWT_KEY)
    assert TwoFactorKeys(other_jwt_key).open(after, owner) == secret
    async with app_with(database_url, JWT_SIGNING_KEY=NEW_JWT_KEY) as rotated:
        clinic = ClinicApi(Client(rotated), clinic_a.tenant)
        later = await clinic.call(
            "POST",
            "/auth/login",
            json=login_body(user.email, totp=code_for(secret_b32(secret), time.time() + 30)),
        )
        assert later.status_code == 200, later.text


async def test_a_wrong_code_seals_nothing_again(
    settings: Settings, clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    user = await add_user(engine, clinic_a.tenant, "wrong-code-legacy@example.com", "nurse")
    before = legacy_seal(settings, os.urandom(20), f"{clinic_a.tenant.id}:{user.id}")
    await give_secret(engine, clinic_a.tenant, user.email, before)

    wrong = await clinic_a.call("POST", "/auth/login", json=login_body(user.email, totp="000000"))

    assert wrong.status_code == 401
    assert await stored_secret(engine, clinic_a.tenant, user.email) == before


async def test_the_sealing_keys_rotate_on_their_own(
    database_url: str, two_clinics: tuple[Tenant, Tenant], engine: AsyncEngine
) -> None:
    tenant = two_clinics[0]
    email = f"rotating-{uuid.uuid4().hex[:6]}@example.com"
    await add_user(engine, tenant, email, "doctor")
    async with app_with(database_url, MFA_SEALING_KEYS=OLD_SEALING_KEY) as old:
        clinic = ClinicApi(Client(old), tenant)
        secret, _ = await enrol(clinic, (await clinic.login(email))["accessToken"])
    sealed_old = await stored_secret(engine, tenant, email)

    # The new key first; the old one still opens until every secret was used once.
    both = f"{NEW_SEALING_KEY},{OLD_SEALING_KEY}"
    async with app_with(database_url, MFA_SEALING_KEYS=both) as rotating:
        clinic = ClinicApi(Client(rotating), tenant)
        signed_in = await clinic.call(
            "POST", "/auth/login", json=login_body(email, totp=code_for(secret, time.time() + 30))
        )
        assert signed_in.status_code == 200, signed_in.text
    resealed = await stored_secret(engine, tenant, email)
    assert resealed != sealed_old

    # Now the old key can go: what is stored opens under the new one alone.
    info = tenant_info(tenant)
    assert info is not None
    async with clinic_transaction(engine, info) as session:
        user_id = await session.scalar(select(User.id).where(User.email == email))
    only_new = TwoFactorKeys(make_settings(database_url, MFA_SEALING_KEYS=NEW_SEALING_KEY))
    only_old = TwoFactorKeys(make_settings(database_url, MFA_SEALING_KEYS=OLD_SEALING_KEY))
    owner = f"{tenant.id}:{user_id}"
    assert secret_b32(only_new.open(resealed, owner)) == secret
    with pytest.raises(Conflict, match="unreadable"):
        only_old.open(resealed, owner)


async def test_a_super_admins_secret_survives_a_new_signing_key(
    database_url: str, settings: Settings, engine: AsyncEngine
) -> None:
    email, password = f"ops-{uuid.uuid4().hex[:8]}@platform.test", "a-long-admin-password"
    secret = os.urandom(20)
    async with platform_session(engine) as session:
        admin = await PlatformUsers(session).create_admin(email, password)
        # Enrolled before MFA_SEALING_KEYS existed.
        await session.execute(
            update(PlatformUser)
            .where(PlatformUser.id == admin.id)
            .values(
                mfa_secret=legacy_seal(settings, secret, f"platform:{admin.id}"),
                mfa_enabled_at=datetime.datetime.now(datetime.UTC),
            )
        )
        await session.commit()

    body = {"email": email, "password": password}
    async with app_with(database_url) as app:
        first = await Client(app).platform(
            "POST", "/platform/v1/auth/login", json={**body, "totp": code_for(secret_b32(secret))}
        )
        assert first.status_code == 200, first.text
    async with app_with(database_url, JWT_SIGNING_KEY=NEW_JWT_KEY) as rotated:
        later = await Client(rotated).platform(
            "POST",
            "/platform/v1/auth/login",
            json={**body, "totp": code_for(secret_b32(secret), time.time() + 30)},
        )
        assert later.status_code == 200, later.text


async def test_without_sealing_keys_two_factor_setup_is_refused_naming_the_setting(
    database_url: str, two_clinics: tuple[Tenant, Tenant], engine: AsyncEngine
) -> None:
    tenant = two_clinics[1]
    email = f"no-keys-{uuid.uuid4().hex[:6]}@example.com"
    await add_user(engine, tenant, email, "doctor")
    async with app_with(database_url, MFA_SEALING_KEYS="") as app:
        clinic = ClinicApi(Client(app), tenant)
        token = (await clinic.login(email))["accessToken"]
        setup = await clinic.call("POST", "/auth/mfa/setup", token)
    assert setup.status_code == 503
    assert "MFA_SEALING_KEYS" in setup.json()["message"]
    info = tenant_info(tenant)
    assert info is not None
    async with clinic_transaction(engine, info) as session:
        assert await session.scalar(select(User.mfa_secret).where(User.email == email)) is None


@pytest.mark.parametrize("keys", ["short", f"{'k' * 40},short"])
def test_malformed_sealing_keys_are_named(database_url: str, keys: str) -> None:
    from polyclinic.config import SettingsError

    with pytest.raises(SettingsError, match=r"^MFA_SEALING_KEYS is malformed"):
        make_settings(database_url, MFA_SEALING_KEYS=keys)


def test_serving_needs_sealing_keys(settings: Settings, database_url: str) -> None:
    from polyclinic.cli import main

    env = {
        "DATABASE_URL": database_url,
        "BASE_DOMAIN": settings.base_domain,
        "JWT_SIGNING_KEY": settings.jwt_signing_key,
        "MFA_SEALING_KEYS": "",
    }
    result = CliRunner().invoke(main, ["run"], env=env)
    assert result.exit_code != 0
    assert "MFA_SEALING_KEYS is required" in result.output


def test_development_keeps_a_generated_sealing_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str
) -> None:
    from polyclinic.dev import dev_environment

    monkeypatch.chdir(tmp_path)
    for name, value in {
        "DATABASE_URL": database_url,
        "BASE_DOMAIN": "localhost",
        "IN_PROCESS_WORKERS": "true",
        "DEV_MAIL_TO_LOG": "true",
        "JWT_SIGNING_KEY": "",
        "MFA_SEALING_KEYS": "",
    }.items():
        monkeypatch.setenv(name, value)

    dev_environment()
    first = os.environ["MFA_SEALING_KEYS"]
    monkeypatch.setenv("MFA_SEALING_KEYS", "")
    dev_environment()

    assert len(first) >= 32 and os.environ["MFA_SEALING_KEYS"] == first
    assert first != os.environ["JWT_SIGNING_KEY"]
    assert (tmp_path / "var" / "dev-mfa-sealing-key").stat().st_mode & 0o077 == 0
