"""The default text of every message kind, and the sample values previews render with
(also the names a kind's template may use)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Default:
    subject: str
    email_body: str
    short_body: str  # SMS and WhatsApp


_VISIT = {
    "clinic_name": "Riverside Clinic",
    "patient_name": "Alex Morgan",
    "practitioner_name": "Dr Rivera",
    "service_name": "General consultation",
    "starts_at": "Mon 1 Mar 2027, 10:30",
}

SAMPLES: dict[str, dict[str, Any]] = {
    "appointment_confirmation": {**_VISIT, "check_in_code": "c0de-for-the-qr"},
    "appointment_reminder": {**_VISIT, "check_in_code": "c0de-for-the-qr"},
    "appointment_rescheduled": {**_VISIT, "previous_starts_at": "Fri 26 Feb 2027, 09:00"},
    "appointment_cancelled": {**_VISIT, "reason": "The doctor is unwell"},
    "no_show_follow_up": {**_VISIT, "booking_url": "https://riverside.example/book"},
    "invoice": {
        "clinic_name": "Riverside Clinic",
        "patient_name": "Alex Morgan",
        "invoice_number": "INV-2027-0042",
        "amount": "EUR 50.00",
        "invoice_url": "https://riverside.example/invoices/42",
    },
    "email_verification": {
        "clinic_name": "Riverside Clinic",
        "name": "Alex Morgan",
        "link": "https://riverside.example/verify?token=sample",
    },
    "password_reset": {
        "clinic_name": "Riverside Clinic",
        "name": "Alex Morgan",
        "link": "https://riverside.example/reset?token=sample",
    },
    "staff_invitation": {
        "clinic_name": "Riverside Clinic",
        "role": "receptionist",
        "link": "https://riverside.example/invitation?token=sample",
    },
    "already_registered": {
        "clinic_name": "Riverside Clinic",
        "link": "https://riverside.example/forgot-password",
    },
    "account_claim": {
        "clinic_name": "Riverside Clinic",
        "name": "Alex Morgan",
        "link": "https://riverside.example/claim-account?token=sample",
    },
}

DEFAULTS: dict[str, Default] = {
    "appointment_confirmation": Default(
        "Your appointment at {{ clinic_name }} is confirmed",
        "Hello {{ patient_name }},\n\nyour {{ service_name }} with {{ practitioner_name }} "
        "is confirmed for {{ starts_at }}.\nShow this code at the desk to check in: "
        "{{ check_in_code }}\n\n{{ clinic_name }}",
        "{{ clinic_name }}: {{ service_name }} with {{ practitioner_name }} confirmed for "
        "{{ starts_at }}.",
    ),
    "appointment_reminder": Default(
        "Reminder: {{ service_name }} at {{ clinic_name }}, {{ starts_at }}",
        "Hello {{ patient_name }},\n\na reminder of your {{ service_name }} with "
        "{{ practitioner_name }} on {{ starts_at }}.\n\n{{ clinic_name }}",
        "{{ clinic_name }}: reminder, {{ service_name }} with {{ practitioner_name }} on "
        "{{ starts_at }}.",
    ),
    "appointment_rescheduled": Default(
        "Your appointment at {{ clinic_name }} has moved",
        "Hello {{ patient_name }},\n\nyour {{ service_name }} with {{ practitioner_name }} "
        "has moved from {{ previous_starts_at }} to {{ starts_at }}.\n\n{{ clinic_name }}",
        "{{ clinic_name }}: your {{ service_name }} has moved to {{ starts_at }}.",
    ),
    "appointment_cancelled": Default(
        "Your appointment at {{ clinic_name }} is cancelled",
        "Hello {{ patient_name }},\n\nyour {{ service_name }} on {{ starts_at }} is "
        "cancelled: {{ reason }}\n\n{{ clinic_name }}",
        "{{ clinic_name }}: your {{ service_name }} on {{ starts_at }} is cancelled.",
    ),
    "no_show_follow_up": Default(
        "We missed you at {{ clinic_name }}",
        "Hello {{ patient_name }},\n\nwe missed you for your {{ service_name }} on "
        "{{ starts_at }}. You can book a new time here: {{ booking_url }}\n\n{{ clinic_name }}",
        "{{ clinic_name }}: we missed you on {{ starts_at }}. Book again: {{ booking_url }}",
    ),
    "invoice": Default(
        "Invoice {{ invoice_number }} from {{ clinic_name }}",
        "Hello {{ patient_name }},\n\ninvoice {{ invoice_number }} for {{ amount }} is "
        "ready: {{ invoice_url }}\n\n{{ clinic_name }}",
        "{{ clinic_name }}: invoice {{ invoice_number }} ({{ amount }}): {{ invoice_url }}",
    ),
    "email_verification": Default(
        "Confirm your email for {{ clinic_name }}",
        "Hello {{ name }},\n\nconfirm your email address: {{ link }}\n\n{{ clinic_name }}",
        "{{ clinic_name }}: confirm your email address: {{ link }}",
    ),
    "password_reset": Default(
        "Reset your {{ clinic_name }} password",
        "Hello {{ name }},\n\nset a new password here: {{ link }}\nIf you did not ask for "
        "this, ignore this message.\n\n{{ clinic_name }}",
        "{{ clinic_name }}: set a new password here: {{ link }}",
    ),
    "staff_invitation": Default(
        "You are invited to {{ clinic_name }}",
        "Hello,\n\nyou are invited to join {{ clinic_name }} as {{ role }}: {{ link }}",
        "{{ clinic_name }} invites you to join as {{ role }}: {{ link }}",
    ),
    "already_registered": Default(
        "Your {{ clinic_name }} account",
        "Hello,\n\nsomeone tried to register at {{ clinic_name }} with this address, which "
        "already has an account. If it was you, sign in, or choose a new password here: "
        "{{ link }}\nIf it was not, ignore this message.\n\n{{ clinic_name }}",
        "{{ clinic_name }}: someone tried to register with your address, which already has an "
        "account. Forgot your password? {{ link }}",
    ),
    "account_claim": Default(
        "Your patient account at {{ clinic_name }}",
        "Hello {{ name }},\n\n{{ clinic_name }} keeps your patient record. Choose a password "
        "here to see your appointments and book online: {{ link }}\nIf you are not a patient "
        "of {{ clinic_name }}, ignore this message.\n\n{{ clinic_name }}",
        "{{ clinic_name }}: choose a password for your patient account: {{ link }}",
    ),
}
