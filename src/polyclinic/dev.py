"""`polyclinic dev`: a working service on a fresh machine with nothing configured."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

from polyclinic.config import Settings
from polyclinic.db.embedded import embedded_postgres_url

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from polyclinic.tenancy.models import Tenant

DEV_DIR = Path("var")
DEV_DATABASE = "polyclinic"
DEV_ADMIN_EMAIL = "admin@localhost"
DEV_ADMIN_PASSWORD = "polyclinic-dev-admin"
DEMO_SUBDOMAIN = "demo"
DEMO_CLINIC_ADMIN = "owner@demo.localhost"


def dev_environment() -> None:
    """Fill in what a newcomer has not configured, keeping anything that is set."""
    DEV_DIR.mkdir(exist_ok=True)
    if not os.environ.get("DATABASE_URL"):
        os.environ["DATABASE_URL"] = embedded_postgres_url(DEV_DIR / "pgdata", DEV_DATABASE)
    os.environ.setdefault("BASE_DOMAIN", "localhost")
    os.environ.setdefault("IN_PROCESS_WORKERS", "true")
    os.environ.setdefault("DEV_MAIL_TO_LOG", "true")
    for setting, name in (
        ("JWT_SIGNING_KEY", "dev-signing-key"),
        ("MFA_SEALING_KEYS", "dev-mfa-sealing-key"),
    ):
        if not os.environ.get(setting):
            key_file = DEV_DIR / name
            if not key_file.exists():
                key_file.write_text(secrets.token_urlsafe(48))
                key_file.chmod(0o600)
            os.environ[setting] = key_file.read_text().strip()


async def seed_demo(settings: Settings) -> None:
    """The demo clinic with a signed-up clinic admin, and a super-admin, each created once."""
    from sqlalchemy import select

    from polyclinic.billing.plans import seed_default_plans
    from polyclinic.db.engine import create_app_engine
    from polyclinic.db.session import platform_session
    from polyclinic.platform.lifecycle import clinic_provisioner
    from polyclinic.platform.services import PlatformUsers
    from polyclinic.tenancy.models import Tenant, TenantStatus
    from polyclinic.tenancy.provisioning import NewClinic

    engine = create_app_engine(settings, pool_size=2)
    try:
        async with platform_session(engine) as session:
            await seed_default_plans(session)
            demo = (
                await session.execute(select(Tenant).where(Tenant.slug == DEMO_SUBDOMAIN))
            ).scalar_one_or_none()
            users = PlatformUsers(session)
            if await users.by_email(DEV_ADMIN_EMAIL) is None:
                await users.create_admin(DEV_ADMIN_EMAIL, DEV_ADMIN_PASSWORD)
        if demo is None or demo.status == TenantStatus.FAILED:
            demo = await clinic_provisioner(engine, settings).create(
                NewClinic("Demo Clinic", DEMO_SUBDOMAIN, "Europe/London", DEMO_CLINIC_ADMIN)
            )
        await _ensure_demo_admin(engine, demo)
    finally:
        await engine.dispose()


async def _ensure_demo_admin(engine: AsyncEngine, demo: Tenant) -> None:
    """The demo clinic's admin, already past the invitation, so a newcomer can sign in."""
    from sqlalchemy import select

    from polyclinic.db.base import utcnow
    from polyclinic.db.session import clinic_transaction
    from polyclinic.identity.accounts.models import User
    from polyclinic.identity.accounts.passwords import hash_password
    from polyclinic.identity.permissions.roles import Role
    from polyclinic.tenancy.resolver import tenant_info

    info = tenant_info(demo)
    assert info is not None
    async with clinic_transaction(engine, info) as session:
        exists = await session.scalar(select(User.id).where(User.email == DEMO_CLINIC_ADMIN))
        if exists is None:
            session.add(
                User(
                    email=DEMO_CLINIC_ADMIN,
                    password_hash=hash_password(DEV_ADMIN_PASSWORD),
                    first_name="Demo",
                    last_name="Admin",
                    role=Role.CLINIC_ADMIN,
                    is_active=True,
                    email_verified_at=utcnow(),
                )
            )


def welcome(settings: Settings, host: str, port: int) -> str:
    base = f"http://{settings.base_domain}:{port}"
    return f"""
Polyclinic is starting on {host}:{port}
  demo clinic   curl http://{DEMO_SUBDOMAIN}.{settings.base_domain}:{port}/api/v1/clinic
  clinic admin  {DEMO_CLINIC_ADMIN} / {DEV_ADMIN_PASSWORD}  (POST .../api/v1/auth/login on demo)
  super-admin   {DEV_ADMIN_EMAIL} / {DEV_ADMIN_PASSWORD}
                curl -X POST {base}/platform/v1/auth/login -H 'content-type: application/json' \\
                     -d '{{"email": "{DEV_ADMIN_EMAIL}", "password": "{DEV_ADMIN_PASSWORD}"}}'
  API docs      {base}/schema
"""
