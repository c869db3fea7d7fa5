"""Scheduling's periodic job: expire unpaid card holds in every clinic and settle the
payments cancellations left open (unpaid intents cancelled, refunds made)."""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.billing.quota import QuotaEngine
from polyclinic.config import Settings
from polyclinic.db.base import utcnow
from polyclinic.db.context import TenantInfo
from polyclinic.db.session import clinic_session, platform_session
from polyclinic.payments.cards import CardPayments
from polyclinic.scheduling.appointments.card_payments import settle_open
from polyclinic.scheduling.appointments.holds import expire_holds
from polyclinic.tenancy.models import Tenant, TenantStatus
from polyclinic.tenancy.resolver import tenant_info
from polyclinic.worker.jobs import job, job_resources

logger = logging.getLogger("polyclinic.scheduling")


@job(queue="scheduling", max_retries=3)
async def scheduling_housekeeping() -> None:
    resources = job_resources()
    await sweep_holds(resources.engine, resources.settings)


async def sweep_holds(engine: AsyncEngine, settings: Settings) -> tuple[int, int]:
    """(holds expired, payments settled) across the active clinics."""
    async with platform_session(engine) as session:
        clinics = (
            await session.scalars(select(Tenant).where(Tenant.status == TenantStatus.ACTIVE))
        ).all()
    expired = settled = 0
    for tenant in clinics:
        clinic = tenant_info(tenant)
        assert clinic is not None
        try:
            counts = await _sweep_clinic(engine, settings, clinic)
        except Exception:
            # One clinic's trouble must not keep the others' holds from expiring.
            logger.exception("clinic %s: holds could not be swept", clinic.id)
            continue
        expired += counts[0]
        settled += counts[1]
    return expired, settled


async def _sweep_clinic(
    engine: AsyncEngine, settings: Settings, clinic: TenantInfo
) -> tuple[int, int]:
    settled = 0
    async with clinic_session(engine, clinic) as session:
        quota = QuotaEngine(session, clinic.id, settings.past_due_grace_days)
        expired = await expire_holds(session, quota, utcnow())
        await session.commit()
        if expired:
            logger.info("clinic %s: %d unpaid holds expired", clinic.id, expired)
        if settings.stripe_api_key:
            settled = await settle_open(session, CardPayments(session, clinic, settings))
    return expired, settled
