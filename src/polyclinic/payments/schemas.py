"""What the slots and appointments API takes and gives (camelCase JSON)."""

import msgspec

from polyclinic.web.openapi import published_as


@published_as("polyclinic.scheduling.appointment_schemas")
class PaymentAccountOut(msgspec.Struct, rename="camel"):
    stripe_account_id: str | None
    charges_enabled: bool
    onboarding_url: str | None = None
