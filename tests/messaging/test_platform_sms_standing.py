"""The platform's own text messages (its Twilio account, lent to clinics whose plan includes
them) go only to clinics in good standing with their subscription: trialing, active, or past
due within the grace period. Canceled, unpaid, paused, past due beyond the grace period or a
suspended clinic: the message is `not_sent` with the reason, the platform's Twilio is never
called, and a retry by hand answers 402 and changes nothing. A clinic's own provider is never
held back, nor is the platform's email."""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterator

import msgspec
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.billing.models import OveragePolicy, Subscription
from polyclinic.config import Settings
from polyclinic.db.base import utcnow
from polyclinic.db.session import clinic_session, clinic_transaction, platform_session
from polyclinic.identity.accounts.models import User
from polyclinic.messaging.channels.services import sender_for
from polyclinic.messaging.delivery.models import Delivery
from polyclinic.messaging.delivery.services import deliver
from polyclinic.tenancy.models import Tenant
from tests.billing.test_quota import put_on_plan
from tests.conftest import Client
from tests.messaging import delivery_kit
from tests.messaging.conftest import info, new_master_key
from tests.messaging.delivery_kit import event_id, ready
from tests.messaging.http_stand_in import HttpStandIn
from tests.messaging.twilio_stand_in import TwilioStandIn
from tests.scheduling.conftest import Bookable, local

PHONE = "+4930123456"
client = delivery_kit.client
clinics = delivery_kit.clinics


@pytest.fixture(scope="module")
def twilio_server() -> Iterator[HttpStandIn]:
    with HttpStandIn(TwilioStandIn()) as server:
        yield server


@pytest.fixture
def twilio(twilio_server: HttpStandIn) -> TwilioStandIn:
    return twilio_server.stand_in  # type: ignore[return-value]


@pytest.fixture
def channel_settings(settings: Settings, twilio_server: HttpStandIn) -> Settings:
    """The platform has a Twilio account for text messages (and no email server)."""
    sid, token = twilio_server.stand_in.add_account()  # type: ignore[attr-defined]
    return msgspec.structs.replace(
        settings,
        messaging_master_key=new_master_key(),
        twilio_api_base=twilio_server.base,
        platform_twilio_account_sid=sid,
        platform_twilio_auth_token=token,
        platform_sms_from="+4930999999",
        dev_mail_to_log=False,
    )


async def standing(engine: AsyncEngine, tenant: Tenant, status: str, days_past_due: int = 0):  # type: ignore[no-untyped-def]
    since = utcnow() - datetime.timedelta(days=days_past_due) if status == "past_due" else None
    async with platform_session(engine) as session:
        await session.execute(
            update(Subscription)
            .where(Subscription.tenant_id == tenant.id)
            .values(status=status, past_due_since=since)
        )
        await session.commit()


async def texting_clinic(
    tenant: Tenant, client: Client, engine: AsyncEngine
) -> tuple[Bookable, uuid.UUID]:
    """A clinic with no SMS provider of its own, on a plan with the platform's text messages,
    and a patient with a phone; (the clinic, the SMS delivery of a confirmed booking)."""
    clinic, _ = await ready(tenant, client, engine, None)
    await put_on_plan(
        engine,
        tenant,
        included=None,
        policy=OveragePolicy.BLOCK,
        features={"sms": True, "platformSms": True},
    )
    async with clinic_transaction(engine, info(tenant)) as session:
        await session.execute(update(User).where(User.id == clinic.patient_id).values(phone=PHONE))
    await clinic.booked(local(2, "12:00"))
    return clinic, await event_id(engine, tenant)


def sms_of(done: list[Delivery]) -> Delivery:
    return next(d for d in done if d.channel == "sms")


def texts_to(twilio: TwilioStandIn, sid: str) -> list[str]:
    return [m.body for m in twilio.messages if m.account_sid == sid and m.to == PHONE]


async def test_a_clinic_in_good_standing_texts_through_the_platform(
    client: Client,
    engine: AsyncEngine,
    channel_settings: Settings,
    clinics: tuple[Tenant, Tenant],
    twilio: TwilioStandIn,
) -> None:
    tenant = clinics[0]
    _, event = await texting_clinic(tenant, client, engine)
    await standing(engine, tenant, "past_due", days_past_due=1)  # within the grace period

    sms = sms_of(await deliver(engine, channel_settings, info(tenant), event))

    assert (sms.status, sms.provider) == ("sent", "platform-twilio")
    assert len(texts_to(twilio, str(channel_settings.platform_twilio_account_sid))) == 1


@pytest.mark.parametrize(
    ("status", "days_past_due", "why"),
    [
        ("canceled", 0, "while its subscription is canceled"),
        ("unpaid", 0, "while its subscription is unpaid"),
        ("paused", 0, "while its subscription is paused"),
        ("past_due", 30, "while its subscription is past due beyond the 7-day grace period"),
    ],
)
async def test_a_lapsed_clinic_gets_no_platform_text_and_a_retry_is_402(
    client: Client,
    engine: AsyncEngine,
    channel_settings: Settings,
    clinics: tuple[Tenant, Tenant],
    twilio: TwilioStandIn,
    status: str,
    days_past_due: int,
    why: str,
) -> None:
    tenant, other = clinics
    clinic, event = await texting_clinic(tenant, client, engine)
    _, other_event = await texting_clinic(other, client, engine)
    await standing(engine, tenant, status, days_past_due)
    platform_sid = str(channel_settings.platform_twilio_account_sid)

    sms = sms_of(await deliver(engine, channel_settings, info(tenant), event))

    assert (sms.status, sms.attempts, sms.provider) == ("not_sent", 0, None)
    assert sms.reason == (
        f"the clinic has no sms provider, and the platform's text messages are not available {why}"
    )
    assert texts_to(twilio, platform_sid) == []
    # The other clinic, in good standing, is texted as before.
    other_sms = sms_of(await deliver(engine, channel_settings, info(other), other_event))
    assert other_sms.status == "sent"
    assert len(texts_to(twilio, platform_sid)) == 1

    retried = await clinic.clinic.call(
        "POST", f"/messaging/deliveries/{sms.id}/retry", clinic.admin
    )

    assert retried.status_code == 402, retried.text
    body = retried.json()
    assert body["success"] is False and body["statusCode"] == 402
    assert why in body["message"]
    listed = await clinic.clinic.call("GET", "/messaging/deliveries?status=not_sent", clinic.admin)
    same = next(d for d in listed.json()["data"] if d["id"] == str(sms.id))
    assert (same["status"], same["reason"], same["attempts"]) == ("not_sent", sms.reason, 0)
    assert len(texts_to(twilio, platform_sid)) == 1

    # Paid up again: the retry by hand sends it.
    await standing(engine, tenant, "active")
    again = await clinic.clinic.call("POST", f"/messaging/deliveries/{sms.id}/retry", clinic.admin)
    assert again.status_code == 200, again.text
    assert again.json()["data"]["status"] == "sent"
    assert len(texts_to(twilio, platform_sid)) == 2


async def test_a_suspended_clinic_gets_no_platform_text_but_keeps_the_platforms_email(
    engine: AsyncEngine,
    channel_settings: Settings,
    clinics: tuple[Tenant, Tenant],
) -> None:
    tenant = clinics[0]
    await put_on_plan(
        engine,
        tenant,
        included=None,
        policy=OveragePolicy.BLOCK,
        features={"platformSms": True, "platformEmail": True},
    )
    with_email = msgspec.structs.replace(
        channel_settings,
        platform_smtp_url="smtp://smtp.platform.test",
        platform_email_from="Polyclinic <no-reply@platform.test>",
    )
    suspended = msgspec.structs.replace(info(tenant), status="suspended")

    async with clinic_session(engine, suspended) as session:
        sms = await sender_for(session, with_email, "sms")
        email = await sender_for(session, with_email, "email")

    assert sms.provider is None and sms.lapsed
    assert sms.reason is not None and sms.reason.endswith("while the clinic is suspended")
    assert email.platform and email.provider_name == "platform-smtp"
