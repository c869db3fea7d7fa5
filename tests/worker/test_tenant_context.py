"""A job sent from a clinic's context runs in that clinic's context, on a real Redis broker."""

from __future__ import annotations

import uuid

import dramatiq
from dramatiq import Worker
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.config import Settings
from polyclinic.db.context import current_tenant
from polyclinic.tenancy.models import Tenant, TenantStatus
from polyclinic.worker.broker import create_broker
from tests.tenancy.test_isolation import info


async def test_jobs_run_in_the_clinic_they_were_sent_from(
    settings: Settings, engine: AsyncEngine, two_clinics: tuple[Tenant, Tenant]
) -> None:
    a, b = two_clinics
    broker = create_broker(settings, namespace=f"polyclinic-test-{uuid.uuid4().hex[:8]}")
    seen: list[tuple[str, str | None]] = []

    @dramatiq.actor(broker=broker, queue_name="test", max_retries=0)
    def record(label: str) -> None:
        tenant = current_tenant.get()
        seen.append((label, tenant.slug if tenant else None))

    for tenant, label in ((a, "for a"), (b, "for b")):
        token = current_tenant.set(info(tenant))
        try:
            record.send(label)
        finally:
            current_tenant.reset(token)
    record.send("platform job")

    worker = Worker(broker, worker_timeout=100, worker_threads=2)
    worker.start()
    try:
        broker.join("test", timeout=10_000)
        worker.join()
        assert sorted(seen) == [("for a", a.slug), ("for b", b.slug), ("platform job", None)]

        async with engine.begin() as connection:
            await connection.execute(
                update(Tenant).where(Tenant.id == b.id).values(status=TenantStatus.DELETED)
            )
        token = current_tenant.set(info(b))
        try:
            record.send("after deletion")
        finally:
            current_tenant.reset(token)
        broker.join("test", timeout=10_000)
        worker.join()
        assert "after deletion" not in {label for label, _ in seen}
    finally:
        worker.stop()
        broker.flush_all()
        broker.close()


async def test_dev_runs_jobs_in_process_without_redis(
    database_url: str, two_clinics: tuple[Tenant, Tenant]
) -> None:
    """With nothing but a database configured, jobs still run, in the web process."""
    import asyncio

    from litestar.testing import AsyncTestClient

    from polyclinic.app import create_app
    from tests.conftest import make_settings

    a, _ = two_clinics
    settings = make_settings(database_url, REDIS_URL="", IN_PROCESS_WORKERS="true")
    app = create_app(settings)
    seen: list[str | None] = []
    async with AsyncTestClient(app=app):
        broker = dramatiq.get_broker()
        assert type(broker).__name__ == "StubBroker"

        @dramatiq.actor(queue_name="dev", max_retries=0)
        def record() -> None:
            tenant = current_tenant.get()
            seen.append(tenant.slug if tenant else None)

        token = current_tenant.set(info(a))
        try:
            record.send()
        finally:
            current_tenant.reset(token)
        await asyncio.to_thread(broker.join, "dev", timeout=10_000)
    assert seen == [a.slug]
