"""The invitation to claim a record leaves through the clinic's own email server, in the
clinic's wording and the patient's language, with a link to the clinic's own site."""

from __future__ import annotations

import pytest
from litestar import Litestar
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.billing.test_stripe_billing import admin_of
from tests.chart.test_patients import register
from tests.conftest import BASE_DOMAIN
from tests.identity.conftest import PASSWORD, ClinicApi
from tests.messaging.smtp_stand_in import SmtpServer
from tests.messaging.test_account_mail import (  # noqa: F401  (fixtures)
    app,
    body_of,
    deliveries,
    forget_channels,
    link_in,
    mail_settings,
    mails_to,
    sent,
    smtp_servers,
    use_smtp,
)


@pytest.mark.usefixtures("mail_settings")
async def test_the_claim_mail_reaches_the_patient_in_their_language(
    app: Litestar,  # noqa: F811
    clinic_a: ClinicApi,
    engine: AsyncEngine,
    smtp_servers: tuple[SmtpServer, SmtpServer, SmtpServer],  # noqa: F811
) -> None:
    own = smtp_servers[0]
    admin = await admin_of(clinic_a, engine)
    await use_smtp(clinic_a, admin, own)
    worded = await clinic_a.call(
        "PUT",
        "/messaging/templates/account_claim/email",
        admin,
        json={
            "locale": "de",
            "subject": "Ihr Zugang bei {{ clinic_name }}",
            "body": "Hallo {{ name }}, Passwort hier festlegen: {{ link }}",
        },
    )
    assert worded.status_code == 200, worded.text
    made = await register(clinic_a, admin, email="ana.mail@x.example", preferredLanguage="de-AT")

    assert (await clinic_a.call("POST", f"/patients/{made['id']}/invite", admin)).is_success
    await sent(app)

    [mail] = mails_to(own, "ana.mail@x.example")
    assert mail.message["Subject"] == "Ihr Zugang bei Riverside Clinic"
    link, token = link_in(body_of(mail))
    assert body_of(mail).startswith("Hallo Ana Morgan, Passwort hier festlegen: ")
    assert link.startswith(f"https://{clinic_a.tenant.slug}.{BASE_DOMAIN}/claim-account?token=")
    [delivery] = [d for d in await deliveries(engine, clinic_a.tenant) if d.kind == "account_claim"]
    assert delivery.status == "sent" and str(delivery.recipient_id) == made["id"]
    claimed = await clinic_a.call(
        "POST", "/auth/claim-account", json={"token": token, "password": PASSWORD}
    )
    assert claimed.status_code == 200, claimed.text
