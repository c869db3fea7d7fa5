"""Messaging's background jobs: the periodic relay of every clinic's outbox, the relay of one
clinic's outbox right after a request wrote to it, and the delivery of one event."""

from __future__ import annotations

import logging
import uuid

import dramatiq
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.config import Settings
from polyclinic.db.context import current_tenant, in_clinic
from polyclinic.db.session import clinic_session, platform_session
from polyclinic.messaging.delivery.services import (
    claim_time,
    close_abandoned,
    deliver,
    relay_again,
    relay_outbox,
)
from polyclinic.tenancy.models import Tenant, TenantStatus
from polyclinic.tenancy.resolver import tenant_info
from polyclinic.worker.jobs import job, job_resources

logger = logging.getLogger("polyclinic.messaging")


async def relay_all(engine: AsyncEngine, broker: dramatiq.Broker, settings: Settings) -> int:
    """Relay every active clinic's outbox; one clinic's trouble does not stop the others."""
    async with platform_session(engine) as session:
        tenants = (
            await session.scalars(select(Tenant).where(Tenant.status == TenantStatus.ACTIVE))
        ).all()
    relayed = 0
    for tenant in tenants:
        clinic = tenant_info(tenant)
        assert clinic is not None
        with in_clinic(clinic):
            try:
                async with clinic_session(engine, clinic) as session:
                    await close_abandoned(session, claim_time(settings))
                    relayed += await relay_outbox(
                        session, broker, again_after=relay_again(settings)
                    )
            except Exception as exc:
                logger.warning("outbox not relayed (%s)", type(exc).__name__)
    return relayed


@job(queue="messaging", max_retries=0)
async def relay_outboxes() -> None:
    resources = job_resources()
    assert resources.broker is not None
    await relay_all(resources.engine, resources.broker, resources.settings)


@job(queue="messaging", max_retries=0)
async def relay_clinic_outbox() -> None:
    """One clinic's outbox, right after a request wrote to it (the periodic relay is the
    safety net when this job is lost)."""
    clinic = current_tenant.get()
    if clinic is None:
        raise RuntimeError("relay_clinic_outbox runs in a clinic's context only")
    resources = job_resources()
    assert resources.broker is not None
    async with clinic_session(resources.engine, clinic) as session:
        await relay_outbox(session, resources.broker, again_after=relay_again(resources.settings))


@job(queue="messaging", max_retries=8, min_backoff=15_000, max_backoff=3_600_000)
async def deliver_event(event_id: str) -> None:
    clinic = current_tenant.get()
    if clinic is None:
        raise RuntimeError("deliver_event runs in a clinic's context only")
    resources = job_resources()
    await deliver(resources.engine, resources.settings, clinic, uuid.UUID(event_id))
