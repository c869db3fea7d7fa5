"""The clinic lifecycle as the platform composes it: each domain's hooks, in their order.

A new clinic gets its profile, then its first admin, then its trial subscription, all in the
provisioning transaction; the admin's invitation is mailed after it commits.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.billing import hooks as billing
from polyclinic.clinic import hooks as clinic
from polyclinic.config import Settings
from polyclinic.identity.hooks import FirstAdmin
from polyclinic.tenancy.lifecycle import (
    ClinicLifecycle,
    on_check,
    on_create,
    on_created,
)
from polyclinic.tenancy.migrations import TENANT_MIGRATIONS
from polyclinic.tenancy.provisioning import Provisioner
from polyclinic.worker.mail import MailQueue


def clinic_lifecycle(mail: MailQueue | None = None) -> ClinicLifecycle:
    first_admin = FirstAdmin(mail)
    return ClinicLifecycle(
        [
            on_check("plan exists", billing.check_plan),
            on_create("clinic profile", clinic.create_profile),
            on_create("first admin", first_admin.create),
            on_create("trial subscription", billing.start_trial_subscription),
            on_created("admin invitation mail", first_admin.invite),
        ]
    )


def clinic_provisioner(
    engine: AsyncEngine,
    settings: Settings,
    *,
    mail: MailQueue | None = None,
    migrations: Path = TENANT_MIGRATIONS,
) -> Provisioner:
    return Provisioner(engine, settings, clinic_lifecycle(mail), migrations=migrations)
