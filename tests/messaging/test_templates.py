"""Message templates: defaults for every kind, a clinic's own wording per channel and locale
(checked when saved, rendered in the sandbox), previews, and clinics kept apart."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.db.session import clinic_transaction
from polyclinic.messaging.templates.defaults import DEFAULTS
from polyclinic.messaging.templates.services import Templates
from polyclinic.tenancy.resolver import tenant_info
from tests.billing.test_stripe_billing import admin_of
from tests.identity.conftest import ClinicApi, add_user

KINDS = {
    "appointment_confirmation",
    "appointment_reminder",
    "appointment_rescheduled",
    "appointment_cancelled",
    "no_show_follow_up",
    "invoice",
    "email_verification",
    "password_reset",
    "staff_invitation",
    "already_registered",
    "account_claim",
}


async def test_every_kind_has_a_default_on_every_channel_that_renders(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    token = await admin_of(clinic_a, engine)

    listed = await clinic_a.call("GET", "/messaging/templates", token)

    templates = listed.json()["data"]
    assert {t["kind"] for t in templates} == KINDS == set(DEFAULTS)
    assert len(templates) == len(KINDS) * 3
    assert all(t["overridden"] is False for t in templates)
    assert all((t["subject"] is not None) == (t["channel"] == "email") for t in templates)
    for template in templates:
        shown = await clinic_a.call(
            "POST",
            f"/messaging/templates/{template['kind']}/{template['channel']}/preview",
            token,
            json={},
        )
        assert shown.status_code == 200, shown.text
        assert "{{" not in shown.json()["data"]["body"]


async def test_a_clinics_own_wording_is_used_for_its_locale_and_falls_back(
    clinic_a: ClinicApi, clinic_b: ClinicApi, engine: AsyncEngine
) -> None:
    token = await admin_of(clinic_a, engine)
    saved = await clinic_a.call(
        "PUT",
        "/messaging/templates/appointment_reminder/sms",
        token,
        json={"locale": "de", "body": "{{ clinic_name }}: Termin am {{ starts_at }}"},
    )

    info_a, info_b = tenant_info(clinic_a.tenant), tenant_info(clinic_b.tenant)
    assert info_a is not None and info_b is not None
    values = {"clinic_name": "Praxis Nord", "starts_at": "Mo 1.3., 10:30"}
    async with clinic_transaction(engine, info_a) as session:
        austrian = await Templates(session).render(
            "appointment_reminder",
            "sms",
            "de-AT",
            values | {"patient_name": "A", "practitioner_name": "B", "service_name": "C"},
        )
        english = await Templates(session).render(
            "appointment_reminder",
            "sms",
            "en",
            values | {"patient_name": "A", "practitioner_name": "B", "service_name": "C"},
        )
    async with clinic_transaction(engine, info_b) as session:
        other_clinic = await Templates(session).effective("appointment_reminder", "sms", "de")

    assert saved.status_code == 200, saved.text
    assert saved.json()["data"]["overridden"] is True
    assert austrian.body == "Praxis Nord: Termin am Mo 1.3., 10:30"
    assert english.body.startswith("Praxis Nord: reminder, C with B")
    assert other_clinic.overridden is False

    reset = await clinic_a.call(
        "DELETE", "/messaging/templates/appointment_reminder/sms?locale=de", token
    )
    assert reset.json()["data"]["overridden"] is False


async def test_a_template_that_would_not_render_is_refused_and_nothing_saved(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    token = await admin_of(clinic_a, engine)
    path = "/messaging/templates/password_reset/email"
    cases = [
        ({"subject": "Reset", "body": "{{ link "}, "body", "does not parse"),
        ({"subject": "Reset", "body": "{{ credit_card }}"}, "body", "names an unknown value"),
        (
            {"subject": "Reset", "body": "{{ link.__class__.__mro__ }}"},
            "body",
            None,
        ),
        ({"body": "{{ link }}"}, "subject", "is required for email"),
        ({"subject": "{{ nope }}", "body": "{{ link }}"}, "subject", "names an unknown value"),
    ]
    for body, field, problem in cases:
        answer = await clinic_a.call("PUT", path, token, json=body)
        assert answer.status_code == 422, (body, answer.text)
        assert answer.json()["errors"][0]["field"] == field
        if problem:
            message = answer.json()["errors"][0]["message"]
            assert message == problem or message.startswith(f"{problem} (line 1): ")
    sms_subject = await clinic_a.call(
        "PUT", "/messaging/templates/password_reset/sms", token, json={"subject": "x", "body": "y"}
    )
    unknown = await clinic_a.call("GET", "/messaging/templates/birthday/email", token)

    assert sms_subject.status_code == 422
    assert unknown.status_code == 404
    current = await clinic_a.call("GET", path, token)
    assert current.json()["data"]["overridden"] is False


async def test_previews_render_a_draft_with_sample_or_given_values(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    token = await admin_of(clinic_a, engine)

    draft = await clinic_a.call(
        "POST",
        "/messaging/templates/invoice/email/preview",
        token,
        json={
            "subject": "Invoice {{ invoice_number }}",
            "body": "{{ patient_name }} owes {{ amount }}",
            "values": {"amount": "EUR 12.00"},
        },
    )

    assert draft.json()["data"] == {
        "subject": "Invoice INV-2027-0042",
        "body": "Alex Morgan owes EUR 12.00",
    }


async def test_only_clinic_admins_manage_templates(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    await add_user(engine, clinic_a.tenant, "frontdesk@example.com", "receptionist")
    token = (await clinic_a.login("frontdesk@example.com"))["accessToken"]

    answer = await clinic_a.call(
        "PUT", "/messaging/templates/invoice/sms", token, json={"body": "{{ amount }}"}
    )

    assert answer.status_code == 403
