"""What billing does when a clinic is created: the plan asked for must exist, and the clinic
starts a trial on it (or on the default plan)."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncConnection

from polyclinic.billing.plans import plan_for_signup
from polyclinic.billing.subscriptions import start_trial
from polyclinic.tenancy.lifecycle import ClinicCreation, NewClinic

logger = logging.getLogger("polyclinic.provisioning")


async def check_plan(shared: AsyncConnection, request: NewClinic) -> None:
    """An unknown plan code is refused before anything is written."""
    await plan_for_signup(shared, request.plan_code)


async def start_trial_subscription(creation: ClinicCreation) -> None:
    plan = await plan_for_signup(creation.shared, creation.request.plan_code)
    if plan is None:
        logger.warning(
            "no default plan: clinic %s starts without a subscription", creation.clinic.slug
        )
        return
    await start_trial(creation.shared, creation.clinic.id, plan)
