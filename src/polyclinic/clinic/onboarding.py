"""`GET /api/v1/onboarding`: the clinic admin's set-up checklist, each step read from what
the clinic has actually set up."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.billing.models import Subscription
from polyclinic.clinic.models import ClinicProfile
from polyclinic.db.context import TenantInfo
from polyclinic.identity.accounts.models import User
from polyclinic.identity.permissions.roles import Role
from polyclinic.messaging.channels.models import ChannelSetting
from polyclinic.scheduling.setup.models import (
    Practitioner,
    Service,
    ServicePractitioner,
    WeeklyHours,
)
from polyclinic.web.envelope import Envelope, ok
from polyclinic.web.openapi import error_responses


class StepOut(msgspec.Struct, rename="camel"):
    key: str
    title: str
    done: bool
    how: str


class ChecklistOut(msgspec.Struct, rename="camel"):
    steps: list[StepOut]
    completed: int
    total: int
    percent: int


Check = Callable[[AsyncSession, uuid.UUID], Awaitable[bool]]


@dataclass(frozen=True)
class Step:
    key: str
    title: str
    how: str
    check: Check


async def _has(session: AsyncSession, condition: object) -> bool:
    return bool(await session.scalar(select(exists().where(condition))))  # type: ignore[arg-type]


async def profile_complete(session: AsyncSession, tenant_id: uuid.UUID) -> bool:
    return await _has(
        session, ClinicProfile.phone.is_not(None) & ClinicProfile.address.is_not(None)
    )


async def has_staff(session: AsyncSession, tenant_id: uuid.UUID) -> bool:
    others = (Role.DOCTOR, Role.NURSE, Role.RECEPTIONIST, Role.BILLING)
    return await _has(session, User.role.in_(others) & User.is_active)


async def has_offered_service(session: AsyncSession, tenant_id: uuid.UUID) -> bool:
    return await _has(
        session,
        Service.is_active & exists().where(ServicePractitioner.service_id == Service.id),
    )


async def has_bookable_schedule(session: AsyncSession, tenant_id: uuid.UUID) -> bool:
    return await _has(
        session,
        Practitioner.verified_at.is_not(None)
        & Practitioner.is_active
        & exists().where(WeeklyHours.practitioner_id == Practitioner.id),
    )


async def pays_by_card(session: AsyncSession, tenant_id: uuid.UUID) -> bool:
    # Row-level security shows the clinic its own subscription only.
    return await _has(
        session,
        (Subscription.tenant_id == tenant_id) & Subscription.stripe_subscription_id.is_not(None),
    )


async def has_email_provider(session: AsyncSession, tenant_id: uuid.UUID) -> bool:
    return await _has(session, ChannelSetting.channel == "email")


STEPS: list[Step] = [
    Step(
        "profile",
        "Add the clinic's phone and address",
        "PATCH /api/v1/clinic with phone and address",
        profile_complete,
    ),
    Step(
        "staff",
        "Invite your team",
        "POST /api/v1/invitations for each doctor, nurse, receptionist or billing clerk",
        has_staff,
    ),
    Step(
        "services",
        "Describe your services",
        "POST /api/v1/services with the practitioners who offer each",
        has_offered_service,
    ),
    Step(
        "schedules",
        "Open practitioners' hours",
        "POST /api/v1/practitioners, verify them, then PUT their /hours",
        has_bookable_schedule,
    ),
    Step(
        "payments",
        "Add a card for the subscription",
        "POST /api/v1/billing/portal and complete the Stripe page",
        pays_by_card,
    ),
    Step(
        "messaging",
        "Connect the clinic's email (and, if you like, SMS and WhatsApp)",
        "PUT /api/v1/messaging/channels/email with SMTP or SES settings, then POST its /test",
        has_email_provider,
    ),
]


class OnboardingController(Controller):
    path = "/onboarding"
    tags = ["clinic"]

    @get(
        "/",
        summary="The admin's set-up checklist, with progress",
        responses=error_responses(401, 403),
        opt={"permission": ("onboarding", "read")},
    )
    async def checklist(
        self, clinic_db: NamedDependency[AsyncSession], clinic: NamedDependency[TenantInfo]
    ) -> Envelope[ChecklistOut]:
        steps = [StepOut(s.key, s.title, await s.check(clinic_db, clinic.id), s.how) for s in STEPS]
        completed = sum(s.done for s in steps)
        return ok(
            ChecklistOut(
                steps=steps,
                completed=completed,
                total=len(steps),
                percent=completed * 100 // len(steps),
            )
        )
