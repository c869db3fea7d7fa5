"""The clinic lifecycle as the platform composes it: each domain's hooks, in their order.

A new clinic gets its profile, then its first admin, then its trial subscription, all in the
provisioning transaction; the admin's invitation is mailed after it commits. A deleted
clinic's subscription is cancelled (on Stripe too) once the deletion is committed.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.billing import hooks as billing
from polyclinic.billing.deletion import SubscriptionEnd
from polyclinic.clinic import hooks as clinic
from polyclinic.config import Settings
from polyclinic.identity.hooks import FirstAdmin
from polyclinic.tenancy.lifecycle import (
    ClinicLifecycle,
    on_check,
    on_create,
    on_created,
    on_deleted,
)
from polyclinic.tenancy.migrations import TENANT_MIGRATIONS
from polyclinic.tenancy.provisioning import Provisioner
from polyclinic.worker.mail import MailQueue


def clinic_lifecycle(
    engine: AsyncEngine, settings: Settings, mail: MailQueue | None = None
) -> ClinicLifecycle:
    first_admin = FirstAdmin(mail)
    subscription_end = SubscriptionEnd(engine, settings)
    return ClinicLifecycle(
        [
            on_check("plan exists", billing.check_plan),
            on_create("clinic profile", clinic.create_profile),
            on_create("first admin", first_admin.create),
            on_create("trial subscription", billing.start_trial_subscription),
            on_created("admin invitation mail", first_admin.invite),
            on_deleted("cancel subscription", subscription_end.run),
        ]
    )


def clinic_provisioner(
    engine: AsyncEngine,
    settings: Settings,
    *,
    mail: MailQueue | None = None,
    migrations: Path = TENANT_MIGRATIONS,
) -> Provisioner:
    return Provisioner(
        engine, settings, clinic_lifecycle(engine, settings, mail), migrations=migrations
    )
