"""Account mail (email verification, password reset, staff invitations) leaves through the
clinic's own SMTP server, else the platform's where the clinic's plan allows, in the clinic's
wording; each message is in the clinic's delivery log, and its one-time code is in no log line
and no row. Which sender a clinic gets, and why not, is `sender_for`'s answer."""

from __future__ import annotations

import logging
import re
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import msgspec
import pytest
from litestar import Litestar
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.app import create_app
from polyclinic.billing.models import OveragePolicy
from polyclinic.config import Settings
from polyclinic.db.session import clinic_session, clinic_transaction, quote_ident
from polyclinic.messaging.channels.models import ChannelSetting
from polyclinic.messaging.channels.platform_providers import LogEmailProvider, platform_provider
from polyclinic.messaging.channels.providers import OutgoingMessage
from polyclinic.messaging.channels.providers.smtp import SmtpProvider
from polyclinic.messaging.channels.providers.twilio import TwilioProvider
from polyclinic.messaging.channels.services import Sender, sender_for
from polyclinic.messaging.delivery.models import Delivery
from polyclinic.tenancy.models import Tenant
from polyclinic.worker.outbox import OutboxEvent
from tests.billing.test_quota import put_on_plan
from tests.billing.test_stripe_billing import admin_of
from tests.conftest import BASE_DOMAIN
from tests.identity.conftest import ClinicApi, add_user
from tests.messaging.conftest import info, new_master_key
from tests.messaging.smtp_stand_in import SmtpServer, SmtpStandIn

PLATFORM_LOGIN = "platform-mailer"
PLATFORM_PASSWORD = "platform p@ss/word"
PLATFORM_FROM = "no-reply@platform.test"
TWILIO_SID = "AC" + "0" * 32
TWILIO_TOKEN = "f" * 32


@pytest.fixture(scope="module")
def smtp_servers() -> Iterator[tuple[SmtpServer, SmtpServer, SmtpServer]]:
    """Clinic A's server, clinic B's, and the platform's."""
    with (
        SmtpServer(SmtpStandIn()) as first,
        SmtpServer(SmtpStandIn()) as second,
        SmtpServer(SmtpStandIn()) as platform,
    ):
        platform.stand_in.accounts[PLATFORM_LOGIN] = PLATFORM_PASSWORD
        yield first, second, platform


@pytest.fixture
def mail_settings(settings: Settings, smtp_servers: tuple[SmtpServer, ...]) -> Settings:
    platform = smtp_servers[2]
    return msgspec.structs.replace(
        settings,
        messaging_master_key=new_master_key(),
        platform_smtp_url=(
            f"smtp://{PLATFORM_LOGIN}:{quote(PLATFORM_PASSWORD, safe='')}@127.0.0.1:{platform.port}"
        ),
        platform_smtp_security="none",
        platform_email_from=PLATFORM_FROM,
    )


@pytest.fixture
async def app(mail_settings: Settings) -> AsyncIterator[Litestar]:
    """The app with its own account mail (no capturing mailer), sending to the stand-ins."""
    app = create_app(mail_settings)
    yield app
    runtime = app.state.runtime
    await runtime.mail.drain()
    await runtime.engine.dispose()
    if runtime.redis is not None:
        await runtime.redis.aclose()


@pytest.fixture(autouse=True)
async def forget_channels(
    engine: AsyncEngine, two_clinics: tuple[Tenant, Tenant]
) -> AsyncIterator[None]:
    """No later test meets this test's channels, wording, throwaway master key or mail."""
    yield
    async with engine.begin() as connection:
        for tenant in two_clinics:
            schema = quote_ident(tenant.schema_name)
            for table in ("channel_settings", "channel_secrets", "data_keys", "message_templates"):
                await connection.execute(text(f"DELETE FROM {schema}.{table}"))
            # Mail left to the relay is not sent later, under another test's keys.
            await connection.execute(
                text(
                    f"UPDATE {schema}.outbox SET relayed_at = now(), finished_at = now() "
                    "WHERE finished_at IS NULL"
                )
            )


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


async def sent(app: Litestar) -> None:
    """Wait until the mail the app has queued so far is sent (or failed)."""
    await app.state.runtime.mail.drain()


async def use_smtp(clinic: ClinicApi, admin: str, server: SmtpServer, port: int = 0) -> str:
    """The clinic's email channel is `server` (or a closed `port`), with an account of its own
    there; the account's login."""
    login = f"{clinic.tenant.slug}-mailer"
    password = f"smtp-Pass-{uuid.uuid4().hex}"
    server.stand_in.accounts[login] = password
    saved = await clinic.call(
        "PUT",
        "/messaging/channels/email",
        admin,
        json={
            "provider": "smtp",
            "settings": {
                "host": "127.0.0.1",
                "port": port or server.port,
                "security": "none",
                "username": login,
                "fromAddress": f"desk@{clinic.tenant.slug}.example",
            },
            "secrets": {"password": password},
        },
    )
    assert saved.status_code == 200, saved.text
    return login


def mails_to(server: SmtpServer, address: str) -> list[Any]:
    return [r for r in server.stand_in.received if address in r.rcpt_tos]


def body_of(mail: Any) -> str:
    return str(mail.message.get_payload(decode=True).decode())


def link_in(body: str) -> tuple[str, str]:
    """The link in a mail's body and the token it carries."""
    match = re.search(r"https?://\S+", body)
    assert match, body
    link = match.group(0)
    return link, parse_qs(urlsplit(link).query)["token"][0]


async def deliveries(engine: AsyncEngine, tenant: Tenant) -> list[Delivery]:
    async with clinic_transaction(engine, info(tenant)) as session:
        return list(await session.scalars(select(Delivery).order_by(Delivery.created_at)))


async def event_of(engine: AsyncEngine, tenant: Tenant, delivery: Delivery) -> OutboxEvent:
    async with clinic_transaction(engine, info(tenant)) as session:
        return await session.get_one(OutboxEvent, delivery.outbox_event_id)


def row_text(row: object) -> str:
    table = row.__table__  # type: ignore[attr-defined]
    return " ".join(str(getattr(row, column.key)) for column in table.columns)


async def test_a_password_reset_leaves_through_the_clinics_own_server_in_its_wording(
    app: Litestar,
    clinic_a: ClinicApi,
    engine: AsyncEngine,
    smtp_servers: tuple[SmtpServer, SmtpServer, SmtpServer],
    logs: pytest.LogCaptureFixture,
) -> None:
    own, _, platform = smtp_servers
    admin = await admin_of(clinic_a, engine)
    login = await use_smtp(clinic_a, admin, own)
    worded = await clinic_a.call(
        "PUT",
        "/messaging/templates/password_reset/email",
        admin,
        json={
            "locale": "en",
            "subject": "{{ clinic_name }}: choose a new password",
            "body": "Dear {{ name }}, follow {{ link }} within the hour.",
        },
    )
    assert worded.status_code == 200, worded.text
    user = await add_user(engine, clinic_a.tenant, "nurse.reset@example.com", "nurse")

    asked = await clinic_a.call(
        "POST", "/auth/forgot-password", json={"email": "nurse.reset@example.com"}
    )
    assert asked.status_code == 200
    await sent(app)

    [mail] = mails_to(own, "nurse.reset@example.com")
    assert mails_to(platform, "nurse.reset@example.com") == []
    assert mail.login == login
    assert mail.mail_from == f"desk@{clinic_a.tenant.slug}.example"
    assert mail.message["Subject"] == "Riverside Clinic: choose a new password"
    body = body_of(mail)
    assert body.startswith("Dear Test Nurse, follow ")
    link, token = link_in(body)
    assert link.startswith(f"https://{clinic_a.tenant.slug}.{BASE_DOMAIN}/reset-password?token=")

    [delivery] = await deliveries(engine, clinic_a.tenant)
    assert (delivery.kind, delivery.channel, delivery.status) == ("password_reset", "email", "sent")
    assert (delivery.recipient_id, delivery.address) == (user.id, "nurse.reset@example.com")
    assert (delivery.provider, delivery.attempts) == ("smtp", 1)
    assert delivery.provider_message_id == mail.message["Message-ID"]
    event = await event_of(engine, clinic_a.tenant, delivery)
    assert event.kind == "account.password_reset" and event.subject_id == user.id
    assert event.relayed_at is not None and event.finished_at is not None
    listed = await clinic_a.call("GET", "/messaging/deliveries", admin)
    assert [d["kind"] for d in listed.json()["data"]] == ["password_reset"]
    # The code is in the mail only.
    for where in (logs.text, row_text(delivery), row_text(event), listed.text):
        assert token not in where

    reset = await clinic_a.call(
        "POST", "/auth/reset-password", json={"token": token, "password": "a-brand-new-secret-7"}
    )
    assert reset.status_code == 200, reset.text


async def test_without_a_provider_of_its_own_the_platform_sends_if_the_plan_allows(
    app: Litestar,
    clinic_a: ClinicApi,
    engine: AsyncEngine,
    smtp_servers: tuple[SmtpServer, SmtpServer, SmtpServer],
    logs: pytest.LogCaptureFixture,
) -> None:
    platform = smtp_servers[2]
    address = f"ana-{uuid.uuid4().hex[:6]}@example.com"
    registered = await clinic_a.call(
        "POST",
        "/auth/register",
        json={
            "email": address,
            "password": "patient-secret-words-1",
            "firstName": "Ana",
            "lastName": "Silva",
        },
    )
    assert registered.status_code == 201, registered.text
    await sent(app)

    [mail] = mails_to(platform, address)
    assert mail.login == PLATFORM_LOGIN
    assert mail.message["From"] == f"Riverside Clinic <{PLATFORM_FROM}>"
    assert mail.message["Subject"] == "Confirm your email for Riverside Clinic"
    link, token = link_in(body_of(mail))
    assert link.startswith(f"https://{clinic_a.tenant.slug}.{BASE_DOMAIN}/verify-email?token=")
    [verification] = await deliveries(engine, clinic_a.tenant)
    assert (verification.kind, verification.status, verification.provider) == (
        "email_verification",
        "sent",
        "platform-smtp",
    )
    verified = await clinic_a.call("POST", "/auth/verify-email", json={"token": token})
    assert verified.status_code == 200, verified.text

    # On a plan without the platform's email, nothing leaves, and the log says why.
    plan = await put_on_plan(
        engine, clinic_a.tenant, included=None, policy=OveragePolicy.BLOCK, features={"sms": True}
    )
    asked = await clinic_a.call("POST", "/auth/forgot-password", json={"email": address})
    assert asked.status_code == 200
    await sent(app)

    assert len(mails_to(platform, address)) == 1
    _, reset = await deliveries(engine, clinic_a.tenant)
    assert (reset.kind, reset.status, reset.provider, reset.attempts) == (
        "password_reset",
        "not_sent",
        None,
        0,
    )
    assert reset.reason == (
        f"the clinic has no email provider and its {plan.name} plan does not include the "
        "platform's email"
    )
    admin = await admin_of(clinic_a, engine)
    listed = await clinic_a.call("GET", "/messaging/deliveries?status=not_sent", admin)
    assert [d["reason"] for d in listed.json()["data"]] == [reset.reason]
    assert token not in logs.text and PLATFORM_PASSWORD not in logs.text


async def test_two_clinics_each_invite_through_their_own_server(
    app: Litestar,
    clinic_a: ClinicApi,
    clinic_b: ClinicApi,
    engine: AsyncEngine,
    smtp_servers: tuple[SmtpServer, SmtpServer, SmtpServer],
    logs: pytest.LogCaptureFixture,
) -> None:
    first, second, platform = smtp_servers
    admins = [await admin_of(clinic_a, engine), await admin_of(clinic_b, engine)]
    logins = [
        await use_smtp(clinic_a, admins[0], first),
        await use_smtp(clinic_b, admins[1], second),
    ]
    address = f"doc-{uuid.uuid4().hex[:6]}@example.com"  # the same person, invited by both
    invitations = []
    for clinic, admin in zip((clinic_a, clinic_b), admins, strict=True):
        invited = await clinic.call(
            "POST", "/invitations", admin, json={"email": address, "role": "doctor"}
        )
        assert invited.status_code == 201, invited.text
        invitations.append(uuid.UUID(invited.json()["data"]["id"]))
    await sent(app)

    [mail_a], [mail_b] = mails_to(first, address), mails_to(second, address)
    assert mails_to(platform, address) == []
    assert (mail_a.login, mail_b.login) == tuple(logins)
    assert mail_a.message["Subject"] == "You are invited to Riverside Clinic"
    assert mail_b.message["Subject"] == "You are invited to Hilltop Clinic"
    assert "as doctor" in body_of(mail_a)
    tokens = []
    for mail, clinic, invitation_id in zip(
        (mail_a, mail_b), (clinic_a, clinic_b), invitations, strict=True
    ):
        link, token = link_in(body_of(mail))
        tokens.append(token)
        assert link.startswith(
            f"https://{clinic.tenant.slug}.{BASE_DOMAIN}/accept-invitation?token="
        )
        [delivery] = await deliveries(engine, clinic.tenant)
        assert (delivery.kind, delivery.status, delivery.recipient_id) == (
            "staff_invitation",
            "sent",
            invitation_id,
        )
        assert token not in row_text(delivery)
        assert token not in row_text(await event_of(engine, clinic.tenant, delivery))
    assert all(token not in logs.text for token in tokens)

    # Each clinic's code opens its own invitation only.
    joining = {"password": "joining-secret-3", "firstName": "Dee", "lastName": "Rivera"}
    crossed = await clinic_b.call(
        "POST", "/auth/accept-invitation", json={"token": tokens[0], **joining}
    )
    assert crossed.status_code == 422
    accepted = await clinic_a.call(
        "POST", "/auth/accept-invitation", json={"token": tokens[0], **joining}
    )
    assert accepted.status_code == 201, accepted.text


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_a_failing_server_gives_a_failed_delivery_and_the_route_still_answers(
    app: Litestar,
    clinic_a: ClinicApi,
    engine: AsyncEngine,
    smtp_servers: tuple[SmtpServer, SmtpServer, SmtpServer],
    logs: pytest.LogCaptureFixture,
) -> None:
    own, _, platform = smtp_servers
    admin = await admin_of(clinic_a, engine)
    login = await use_smtp(clinic_a, admin, own)
    own.stand_in.accounts[login] = "no longer the clinic's password"
    await add_user(engine, clinic_a.tenant, "doc.reset@example.com", "doctor")

    asked = await clinic_a.call(
        "POST", "/auth/forgot-password", json={"email": "doc.reset@example.com"}
    )
    assert asked.status_code == 200
    await sent(app)

    [refused] = await deliveries(engine, clinic_a.tenant)
    assert (refused.status, refused.attempts, refused.provider) == ("failed", 1, "smtp")
    assert refused.last_error is not None
    assert refused.last_error.startswith("The SMTP server refused the message: 535")
    assert mails_to(own, "doc.reset@example.com") == []
    assert mails_to(platform, "doc.reset@example.com") == []

    # An unreachable server: the invitation is made all the same, its mail recorded failed.
    await use_smtp(clinic_a, admin, own, port=closed_port())
    invited = await clinic_a.call(
        "POST", "/invitations", admin, json={"email": "nurse.new@example.com", "role": "nurse"}
    )
    assert invited.status_code == 201, invited.text
    await sent(app)
    _, unreachable = await deliveries(engine, clinic_a.tenant)
    assert (unreachable.kind, unreachable.status) == ("staff_invitation", "failed")
    assert unreachable.last_error == "The SMTP server could not be reached (SMTPConnectError)"
    warnings = [r.getMessage() for r in logs.records if r.levelno == logging.WARNING]
    assert any(f"delivery {refused.id} failed (attempt 1)" in w for w in warnings)
    assert any(f"delivery {unreachable.id} failed (attempt 1)" in w for w in warnings)
    # Its code is kept sealed, so the failed mail goes back to the relay for the job's retries.
    event = await event_of(engine, clinic_a.tenant, refused)
    assert event.relayed_at is None and event.finished_at is None
    assert "token" in event.payload


# Which sender --------------------------------------------------------------------------


async def sender(engine: AsyncEngine, tenant: Tenant, settings: Settings, channel: str) -> Sender:
    async with clinic_session(engine, info(tenant)) as session:
        return await sender_for(session, settings, channel)


async def test_sender_for_names_why_nothing_can_be_sent(
    engine: AsyncEngine, settings: Settings, two_clinics: tuple[Tenant, Tenant]
) -> None:
    clinic = two_clinics[0]  # on the default plan (Starter): the platform's email, no SMS
    bare = msgspec.structs.replace(settings, dev_mail_to_log=False)
    platform = msgspec.structs.replace(
        bare,
        platform_smtp_url="smtp://mailer:secret@smtp.platform.test:2525",
        platform_email_from=PLATFORM_FROM,
        platform_twilio_account_sid=TWILIO_SID,
        platform_twilio_auth_token=TWILIO_TOKEN,
        platform_sms_from="+4930123456",
    )

    for channel in ("email", "sms", "whatsapp"):
        nobody = await sender(engine, clinic, bare, channel)
        assert nobody.provider is None and nobody.provider_name is None
        assert nobody.reason == (
            f"the clinic has no {channel} provider and the platform has no default "
            f"{channel} provider"
        )
    no_sms = await sender(engine, clinic, platform, "sms")
    assert no_sms.reason == (
        "the clinic has no sms provider and its Starter plan does not include the platform's "
        "text messages"
    )
    no_whatsapp = await sender(engine, clinic, platform, "whatsapp")
    assert no_whatsapp.reason is not None and "no default whatsapp provider" in no_whatsapp.reason

    email = await sender(engine, clinic, platform, "email")
    assert email.platform and email.reason is None and email.provider_name == "platform-smtp"
    assert isinstance(email.provider, SmtpProvider)
    assert (email.provider.settings.host, email.provider.settings.port) == (
        "smtp.platform.test",
        2525,
    )
    assert email.provider.settings.from_name == "Riverside Clinic"

    plan = await put_on_plan(
        engine,
        clinic,
        included=None,
        policy=OveragePolicy.BLOCK,
        features={"sms": True, "platformSms": True},
    )
    sms = await sender(engine, clinic, platform, "sms")
    assert sms.platform and sms.provider_name == "platform-twilio"
    assert isinstance(sms.provider, TwilioProvider)
    assert sms.provider.settings.from_number == "+4930123456"
    no_email = await sender(engine, clinic, platform, "email")
    assert no_email.reason == (
        f"the clinic has no email provider and its {plan.name} plan does not include the "
        "platform's email"
    )


async def test_a_clinics_own_provider_comes_first(
    engine: AsyncEngine, settings: Settings, two_clinics: tuple[Tenant, Tenant]
) -> None:
    clinic = two_clinics[1]
    platform = msgspec.structs.replace(
        settings,
        messaging_master_key=new_master_key(),
        platform_smtp_url="smtp://smtp.platform.test",
        platform_email_from=PLATFORM_FROM,
    )
    async with clinic_transaction(engine, info(clinic)) as session:
        session.add(
            ChannelSetting(
                channel="email",
                provider="smtp",
                settings={"host": "smtp.hilltop.test", "security": "none", "fromAddress": "a@b.cd"},
            )
        )

    own = await sender(engine, clinic, platform, "email")

    assert not own.platform and own.provider_name == "smtp"
    assert isinstance(own.provider, SmtpProvider)
    assert own.provider.settings.host == "smtp.hilltop.test"


async def test_only_development_writes_email_to_the_log(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    dev = msgspec.structs.replace(settings, dev_mail_to_log=True, platform_smtp_url=None)
    # Workers in the web process are not development: a small deployment may run so.
    production = msgspec.structs.replace(settings, in_process_workers=True, dev_mail_to_log=False)
    assert platform_provider(production, "email", "Riverside Clinic") is None
    provider = platform_provider(dev, "email", "Riverside Clinic")
    assert isinstance(provider, LogEmailProvider)
    caplog.set_level(logging.INFO)

    await provider.send(
        OutgoingMessage("email", "ana@example.com", "Your code: 123456", "key-1", "Confirm")
    )

    assert "Your code: 123456" in caplog.text and "ana@example.com" in caplog.text
