"""The clinic's card-payment set-up: its connected Stripe account."""

from __future__ import annotations

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.status_codes import HTTP_200_OK
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.db.context import TenantInfo
from polyclinic.payments.cards import CardPayments
from polyclinic.payments.schemas import PaymentAccountOut
from polyclinic.tenancy.naming import clinic_url
from polyclinic.web.envelope import Envelope, ok
from polyclinic.web.openapi import error_responses
from polyclinic.web.state import Runtime


class PaymentsController(Controller):
    path = "/payments"
    tags = ["clinic: payments"]

    @get(
        "/account",
        summary="The clinic's connected Stripe account and whether it takes cards yet",
        responses=error_responses(401, 403),
        opt={"permission": ("payments", "read")},
    )
    async def account(
        self,
        clinic_db: NamedDependency[AsyncSession],
        clinic: NamedDependency[TenantInfo],
        runtime: NamedDependency[Runtime],
    ) -> Envelope[PaymentAccountOut]:
        account = await CardPayments(clinic_db, clinic, runtime.settings).account()
        return ok(
            PaymentAccountOut(
                stripe_account_id=account.stripe_account_id if account else None,
                charges_enabled=bool(account and account.charges_enabled),
            )
        )

    @post(
        "/connect",
        status_code=HTTP_200_OK,
        summary="Connect the clinic's Stripe account: a link to Stripe's onboarding",
        description="Creates the connected account once; each call gives a fresh link. "
        "Stripe's `account.updated` event marks the clinic ready to take cards.",
        responses=error_responses(401, 403, 502, 503),
        opt={"permission": ("payments", "manage")},
    )
    async def connect(
        self,
        clinic_db: NamedDependency[AsyncSession],
        clinic: NamedDependency[TenantInfo],
        runtime: NamedDependency[Runtime],
    ) -> Envelope[PaymentAccountOut]:
        settings = runtime.settings
        return_url = clinic_url(settings, clinic.slug, "/payments")
        account, url = await CardPayments(clinic_db, clinic, settings).connect(return_url)
        return ok(
            PaymentAccountOut(
                stripe_account_id=account.stripe_account_id,
                charges_enabled=account.charges_enabled,
                onboarding_url=url,
            ),
            "Continue on Stripe to finish connecting",
        )
