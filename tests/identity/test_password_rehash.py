"""A password hash made with weaker parameters than today's is made again at the next
successful sign-in, for clinic users and super-admins alike; a failed sign-in leaves it."""

from __future__ import annotations

import os
import uuid

from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.db.session import clinic_transaction, platform_session
from polyclinic.identity.accounts.models import User
from polyclinic.identity.accounts.passwords import hash_password, needs_rehash, verify_password
from polyclinic.platform.models import PlatformUser
from polyclinic.platform.services import PlatformUsers
from polyclinic.tenancy.resolver import tenant_info
from tests.conftest import Client
from tests.identity.conftest import PASSWORD, ClinicApi, add_user

CURRENT = "$argon2id$v=19$m=19456,t=2,p=1$"


def weak_hash(password: str) -> str:
    """What an older release might have stored: less memory, one pass."""
    kdf = Argon2id(salt=os.urandom(16), length=32, iterations=1, lanes=1, memory_cost=8 * 1024)
    return kdf.derive_phc_encoded(password.encode())


def test_only_hashes_made_with_other_parameters_need_making_again() -> None:
    assert not needs_rehash(hash_password(PASSWORD))
    assert needs_rehash(weak_hash(PASSWORD))
    assert needs_rehash("$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA")
    assert needs_rehash("not a hash")


async def stored_hash(engine: AsyncEngine, clinic: ClinicApi, email: str) -> str:
    info = tenant_info(clinic.tenant)
    assert info is not None
    async with clinic_transaction(engine, info) as session:
        stored = await session.scalar(select(User.password_hash).where(User.email == email))
    assert stored is not None
    return stored


async def test_a_clinic_users_weak_hash_is_upgraded_at_sign_in(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    email = "old-hash@example.com"
    await add_user(engine, clinic_a.tenant, email, "doctor")
    info = tenant_info(clinic_a.tenant)
    assert info is not None
    async with clinic_transaction(engine, info) as session:
        await session.execute(
            update(User).where(User.email == email).values(password_hash=weak_hash(PASSWORD))
        )
    before = await stored_hash(engine, clinic_a, email)

    wrong = await clinic_a.call(
        "POST", "/auth/login", json={"email": email, "password": "not-the-password-1"}
    )
    assert wrong.status_code == 401
    assert await stored_hash(engine, clinic_a, email) == before

    await clinic_a.login(email)
    after = await stored_hash(engine, clinic_a, email)
    assert after != before and after.startswith(CURRENT)
    assert verify_password(PASSWORD, after)
    again = await clinic_a.login(email)  # the password still works, and nothing changes
    assert again["user"]["email"] == email
    assert await stored_hash(engine, clinic_a, email) == after


async def test_a_super_admins_weak_hash_is_upgraded_at_sign_in(
    client: Client, engine: AsyncEngine
) -> None:
    email, password = f"old-hash-{uuid.uuid4().hex[:6]}@platform.test", "a-long-admin-password"
    async with platform_session(engine) as session:
        admin = await PlatformUsers(session).create_admin(email, password)
        await session.execute(
            update(PlatformUser)
            .where(PlatformUser.id == admin.id)
            .values(password_hash=weak_hash(password))
        )
        await session.commit()

    signed_in = await client.platform(
        "POST", "/platform/v1/auth/login", json={"email": email, "password": password}
    )
    assert signed_in.status_code == 200, signed_in.text
    async with platform_session(engine) as session:
        after = await session.scalar(
            select(PlatformUser.password_hash).where(PlatformUser.id == admin.id)
        )
    assert after is not None and after.startswith(CURRENT)
    again = await client.platform(
        "POST", "/platform/v1/auth/login", json={"email": email, "password": password}
    )
    assert again.status_code == 200
