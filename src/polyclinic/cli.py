"""The `polyclinic` command.

The same groups are offered to Litestar's own CLI through `PolyclinicCLIPlugin`
(`litestar --app polyclinic.app:create_app tenants list`).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import click
from litestar.plugins import CLIPluginProtocol

from polyclinic.config import Settings, SettingsError, load_settings
from polyclinic.logs import configure_logging

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

T = TypeVar("T")


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
def main() -> None:
    """Polyclinic: a multi-tenant backend for outpatient clinics."""
    configure_logging("INFO")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def dev(host: str, port: int) -> None:
    """Run locally: embedded PostgreSQL unless DATABASE_URL is set, migrations, demo data."""
    import uvicorn

    from polyclinic.dev import DEV_DIR, dev_environment, seed_demo, welcome
    from polyclinic.messaging.keys.masters import ensure_dev_master_key

    dev_environment()
    ensure_dev_master_key(DEV_DIR)
    settings = _settings()
    _upgrade_all(settings, jobs=1)
    asyncio.run(seed_demo(settings))
    _check_master_key(settings)
    click.echo(welcome(settings, host, port))
    uvicorn.run(
        "polyclinic.app:create_app",
        factory=True,
        host=host,
        port=port,
        log_level=settings.log_level.lower(),
    )


@main.command()
@click.option("--host", default="0.0.0.0", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=4, show_default=True, type=int)
def run(host: str, port: int, workers: int) -> None:
    """Serve for production with several worker processes."""
    import uvicorn

    settings = _settings()
    if not settings.mfa_sealing_keys:
        raise click.ClickException(
            "MFA_SEALING_KEYS is required to serve: it seals two-factor secrets (see .env.example)"
        )
    _check_master_key(settings)
    if workers > 1 and not settings.redis_url:
        click.echo(
            "warning: without REDIS_URL, a change to a clinic reaches the other worker "
            f"processes only after TENANT_CACHE_TTL ({settings.tenant_cache_ttl} s)",
            err=True,
        )
    uvicorn.run(
        "polyclinic.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        proxy_headers=False,
        log_level=settings.log_level.lower(),
    )


@main.command()
@click.option("--processes", default=2, show_default=True, type=int)
@click.option("--threads", default=8, show_default=True, type=int)
def worker(processes: int, threads: int) -> None:
    """Run the background-job workers (dramatiq on Redis)."""
    import os

    settings = _settings()
    if not settings.redis_url:
        raise click.ClickException("REDIS_URL is required for background jobs")
    _check_master_key(settings)
    command = [
        sys.executable,
        "-m",
        "dramatiq",
        "polyclinic.workers",
        "--processes",
        str(processes),
        "--threads",
        str(threads),
    ]
    os.execv(sys.executable, command)


@main.command()
def scheduler() -> None:
    """Send periodic jobs (outbox relay, scheduling and billing housekeeping) to the workers."""
    settings = _settings()
    if not settings.redis_url:
        raise click.ClickException("REDIS_URL is required for background jobs")
    asyncio.run(_run_scheduler(settings))


async def _run_scheduler(settings: Settings) -> None:
    from redis.asyncio import Redis

    from polyclinic.worker.broker import create_broker
    from polyclinic.worker.scheduler import Scheduler

    broker = create_broker(settings)
    redis = Redis.from_url(settings.redis_url or "")
    click.echo("scheduler running; Ctrl-C stops it")
    try:
        await Scheduler(broker, redis, settings.redis_namespace).run()
    finally:
        await redis.aclose()


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--jobs", default=2, show_default=True, type=int)
def db_upgrade(jobs: int) -> None:
    """Migrate the shared schemas, then every clinic."""
    if not _upgrade_all(_settings(), jobs=jobs):
        sys.exit(1)


def _upgrade_all(settings: Settings, jobs: int) -> bool:
    from polyclinic.db.engine import create_sync_engine
    from polyclinic.db.migrations import upgrade_shared

    engine = create_sync_engine(settings, pool_size=1)
    try:
        upgrade_shared(engine)
    finally:
        engine.dispose()
    click.echo("shared schemas at head")
    return _migrate_tenants(settings, jobs=jobs, slug=None)


@main.group()
def tenants() -> None:
    """Clinic schemas."""


@tenants.command("migrate")
@click.option("--jobs", default=2, show_default=True, type=int, help="Clinics migrated at once.")
@click.option("--tenant", "slug", default=None, help="Only the clinic with this subdomain.")
def tenants_migrate(jobs: int, slug: str | None) -> None:
    """Bring every clinic behind head to head; resumable, goes on past failures."""
    if not _migrate_tenants(_settings(), jobs=jobs, slug=slug):
        sys.exit(1)


def _migrate_tenants(settings: Settings, *, jobs: int, slug: str | None) -> bool:
    from polyclinic.tenancy.migrations import migrate_tenants

    if slug is not None and not _clinic_exists(settings, slug):
        raise click.ClickException(f"No clinic has the subdomain {slug!r}")

    def echo(clinic: str, error: str | None) -> None:
        click.echo(f"  {clinic}: {'ok' if error is None else 'FAILED ' + error}")

    report = migrate_tenants(settings, jobs=jobs, slug=slug, on_result=echo)
    click.echo(
        f"clinics at {report.head}: {len(report.migrated)} migrated, {len(report.failed)} failed"
    )
    for clinic, error in report.failed.items():
        click.echo(f"FAILED {clinic}: {error}", err=True)
    if report.ahead:
        click.echo(
            f"left alone, on revisions newer than this release: {', '.join(report.ahead)}", err=True
        )
    return report.ok


def _clinic_exists(settings: Settings, slug: str) -> bool:
    from sqlalchemy import select

    from polyclinic.db.engine import create_sync_engine
    from polyclinic.tenancy.models import Tenant

    engine = create_sync_engine(settings, pool_size=1)
    try:
        with engine.connect() as connection:
            return connection.scalar(select(Tenant.id).where(Tenant.slug == slug)) is not None
    finally:
        engine.dispose()


@tenants.command("list")
@click.option(
    "--status",
    default=None,
    type=click.Choice(["provisioning", "active", "suspended", "deleted", "failed"]),
    help="Only clinics in this status.",
)
def tenants_list(status: str | None) -> None:
    """Every clinic with its status and schema version."""
    from sqlalchemy import select

    from polyclinic.db.engine import create_sync_engine
    from polyclinic.tenancy.models import Tenant

    engine = create_sync_engine(_settings(), pool_size=1)
    query = select(
        Tenant.slug,
        Tenant.status,
        Tenant.schema_name,
        Tenant.schema_version,
        Tenant.migration_failed,
        Tenant.name,
    ).order_by(Tenant.slug)
    if status:
        query = query.where(Tenant.status == status)
    try:
        with engine.connect() as connection:
            rows = connection.execute(query).all()
    finally:
        engine.dispose()
    click.echo(f"{'SUBDOMAIN':<24} {'STATUS':<13} {'SCHEMA':<20} {'VERSION':<12} NAME")
    for row in rows:
        version = (row.schema_version or "-") + (" !" if row.migration_failed else "")
        click.echo(
            f"{row.slug:<24} {row.status!s:<13} {row.schema_name:<20} {version:<12} {row.name}"
        )


@tenants.command("purge")
@click.option("--tenant", "slug", default=None, help="Only the deleted clinic with this subdomain.")
@click.option("--archive-dir", default=None, help="Where pg_dump archives go (ARCHIVE_DIR).")
def tenants_purge(slug: str | None, archive_dir: str | None) -> None:
    """Archive deleted clinics with pg_dump, then drop their schemas and roles."""
    settings = _settings()
    target = Path(archive_dir or settings.archive_dir)
    asyncio.run(_purge(settings, slug, target))


async def _purge(settings: Settings, slug: str | None, archive_dir: Path) -> None:
    from sqlalchemy import select

    from polyclinic.db.engine import create_app_engine
    from polyclinic.platform.lifecycle import clinic_provisioner
    from polyclinic.tenancy.models import Tenant, TenantStatus

    engine = create_app_engine(settings, pool_size=1)
    query = select(Tenant.id, Tenant.slug).where(
        Tenant.status == TenantStatus.DELETED, Tenant.purged_at.is_(None)
    )
    if slug:
        query = query.where(Tenant.slug == slug)
    failures = 0
    try:
        async with engine.connect() as connection:
            targets = (await connection.execute(query)).all()
        provisioner = clinic_provisioner(engine, settings)
        for tenant_id, tenant_slug in targets:
            try:
                archive = await provisioner.purge(tenant_id, archive_dir)
            except Exception as exc:
                failures += 1
                click.echo(f"FAILED {tenant_slug}: {exc}", err=True)
                continue
            where = f"archived to {archive}" if archive else "it had no schema to archive"
            click.echo(f"purged {tenant_slug}: {where}")
        if not targets:
            click.echo("no deleted clinics to purge")
    finally:
        await engine.dispose()
    if failures:
        raise click.ClickException(f"{failures} clinic(s) could not be purged")


@main.group()
def billing() -> None:
    """Plans and subscriptions."""


@billing.command("seed-plans")
def seed_plans() -> None:
    """Create the default plans that do not exist yet."""
    created = asyncio.run(_seed_plans(_settings()))
    click.echo(f"created plans: {', '.join(created)}" if created else "all default plans exist")


@billing.command("housekeeping")
def billing_housekeeping() -> None:
    """Once, now: apply stored Stripe events left unapplied, close ended periods, suspend
    clinics lapsed too long and reactivate those in good standing again."""
    asyncio.run(_billing_housekeeping(_settings()))
    click.echo("billing housekeeping done")


async def _billing_housekeeping(settings: Settings) -> None:
    from redis.asyncio import Redis

    from polyclinic.db.engine import create_app_engine
    from polyclinic.platform.jobs import housekeeping

    engine = create_app_engine(settings, pool_size=1)
    redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
    try:
        await housekeeping(engine, redis, settings)
    finally:
        await engine.dispose()
        if redis is not None:
            await redis.aclose()


async def _seed_plans(settings: Settings) -> list[str]:
    from polyclinic.billing.plans import seed_default_plans
    from polyclinic.db.engine import create_app_engine
    from polyclinic.db.session import platform_session

    engine = create_app_engine(settings, pool_size=1)
    try:
        async with platform_session(engine) as session:
            return await seed_default_plans(session)
    finally:
        await engine.dispose()


@main.group()
def platform() -> None:
    """Platform operators."""


@platform.command("create-admin")
@click.option("--email", required=True)
@click.option("--password", required=True, prompt=True, hide_input=True)
def create_admin(email: str, password: str) -> None:
    """Create a platform super-admin."""
    asyncio.run(_create_admin(_settings(), email, password))
    click.echo(f"super-admin {email} created")


async def _create_admin(settings: Settings, email: str, password: str) -> None:
    from polyclinic.db.engine import create_app_engine
    from polyclinic.db.session import platform_session
    from polyclinic.errors import DomainError
    from polyclinic.platform.services import PlatformUsers

    engine = create_app_engine(settings, pool_size=1)
    try:
        async with platform_session(engine) as session:
            await PlatformUsers(session).create_admin(email, password)
    except DomainError as exc:
        raise click.ClickException(exc.message) from None
    finally:
        await engine.dispose()


@main.group()
def keys() -> None:
    """Messaging keys: the master key and each clinic's data keys."""


@keys.command("check")
def keys_check() -> None:
    """Check the master key against the one in use (recorded by the first start)."""
    settings = _settings()
    _check_master_key(settings)
    from polyclinic.messaging.keys.masters import keyring_for

    keyring = keyring_for(settings)
    if keyring.configured:
        click.echo(f"master key {keyring.current.key_id} is the one in use")
    else:
        click.echo("no master key is configured and no clinic secret is sealed")


def _check_master_key(settings: Settings) -> None:
    """Stop with one line naming the setting when the master key is not the one in use."""
    from polyclinic.messaging.keys.check import verify_master_key
    from polyclinic.messaging.keys.masters import keyring_for

    async def check(engine: AsyncEngine) -> None:
        await verify_master_key(engine, keyring_for(settings))

    _run_with_engine(settings, check)


@keys.command("rotate-master")
@click.option("--tenant", "slug", default=None, help="Only the clinic with this subdomain.")
def keys_rotate_master(slug: str | None) -> None:
    """Rewrap every clinic's data keys under the current master key; nothing is
    re-encrypted. The old key comes from MESSAGING_PREVIOUS_MASTER_KEY (a KMS key needs
    no setting)."""
    from polyclinic.messaging.keys.rotation import MasterRotation, rotate_master_key
    from polyclinic.messaging.keys.services import secret_box_for

    settings = _settings()

    def echo(clinic: str, count: int | None, error: str | None) -> None:
        click.echo(f"  {clinic}: {f'{count} rewrapped' if error is None else 'FAILED ' + error}")

    async def rotate(engine: AsyncEngine) -> MasterRotation:
        return await rotate_master_key(engine, secret_box_for(settings), slug=slug, on_result=echo)

    report = _run_with_engine(settings, rotate)
    click.echo(
        f"data keys wrapped by {report.master_key_id}: {len(report.rewrapped)} clinics done, "
        f"{len(report.failed)} failed"
    )
    if report.check_moved:
        click.echo("the master key check now names the new key; the previous one can go")
    for clinic, error in report.failed.items():
        click.echo(f"FAILED {clinic}: {error}", err=True)
    if not report.ok:
        sys.exit(1)


@keys.command("rotate-clinic")
@click.argument("subdomain")
def keys_rotate_clinic(subdomain: str) -> None:
    """A new data key for one clinic; its secrets are re-sealed with it."""
    from polyclinic.messaging.keys.rotation import (
        ClinicRotation,
        clinic_by_subdomain,
        rotate_clinic_key,
    )
    from polyclinic.messaging.keys.services import secret_box_for

    settings = _settings()

    async def rotate(engine: AsyncEngine) -> ClinicRotation:
        clinic = await clinic_by_subdomain(engine, subdomain)
        return await rotate_clinic_key(engine, secret_box_for(settings), clinic)

    result = _run_with_engine(settings, rotate)
    click.echo(
        f"{result.clinic}: data key version {result.version}, {result.resealed} secrets re-sealed"
    )


@main.group()
def audit() -> None:
    """The audit trail of protected health information."""


@audit.command("verify")
@click.option("--tenant", "slug", default=None, help="Only the clinic with this subdomain.")
def audit_verify(slug: str | None) -> None:
    """Walk each clinic's hash chain; report every entry changed or removed (exit 1)."""
    from polyclinic.chart.audit.verify import ChainReport, VerifyReport, verify_clinics

    settings = _settings()
    if slug is not None and not _clinic_exists(settings, slug):
        raise click.ClickException(f"No clinic has the subdomain {slug!r}")

    def echo(clinic: str, chain: ChainReport | None, error: str | None) -> None:
        if chain is None:
            click.echo(f"  {clinic}: FAILED {error}")
        elif not chain.present:
            click.echo(f"  {clinic}: no audit trail yet (migrate the clinic)")
        elif chain.ok:
            click.echo(f"  {clinic}: ok ({chain.entries} entries)")
        else:
            click.echo(f"  {clinic}: BROKEN ({chain.entries} entries)")
            for problem in chain.problems:
                click.echo(f"    {problem}")

    async def verify(engine: AsyncEngine) -> VerifyReport:
        return await verify_clinics(engine, slug, on_result=echo)

    report = _run_with_engine(settings, verify)
    broken = [slug for slug, chain in report.clinics.items() if not chain.ok]
    click.echo(
        f"audit chains: {len(report.clinics) - len(broken)} intact, {len(broken)} broken, "
        f"{len(report.failed)} not checked"
    )
    for clinic in broken:
        for problem in report.clinics[clinic].problems:
            click.echo(f"BROKEN {clinic}: {problem}", err=True)
    for clinic, error in report.failed.items():
        click.echo(f"FAILED {clinic}: {error}", err=True)
    if not report.ok:
        sys.exit(1)


def _run_with_engine(settings: Settings, work: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    """Run `work` on a one-connection engine; a domain error ends the command with its
    message."""
    from polyclinic.db.engine import create_app_engine
    from polyclinic.errors import DomainError

    async def run() -> T:
        engine = create_app_engine(settings, pool_size=1)
        try:
            return await work(engine)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except DomainError as exc:
        raise click.ClickException(exc.message) from None


class PolyclinicCLIPlugin(CLIPluginProtocol):
    """Adds the project's groups to Litestar's CLI."""

    def on_cli_init(self, cli: click.Group) -> None:
        for command in (db, tenants, platform, billing, keys, audit):
            cli.add_command(command)


if __name__ == "__main__":
    main()
