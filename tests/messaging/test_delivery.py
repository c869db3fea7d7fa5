"""Delivery: outbox events relayed to a real Redis broker and an in-process worker, messages
sent through each clinic's own SMTP server (aiosmtpd), the delivery log, failures, retries
and channels the clinic has not configured."""

from __future__ import annotations

import asyncio
import datetime
import socket
import uuid

import dramatiq
import msgspec
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.billing.quota import QUOTA_THRESHOLD_EVENT
from polyclinic.config import Settings
from polyclinic.db.base import utcnow
from polyclinic.db.context import current_tenant
from polyclinic.db.session import clinic_transaction
from polyclinic.identity.accounts.models import User
from polyclinic.messaging.delivery.jobs import relay_all
from polyclinic.messaging.delivery.models import Delivery
from polyclinic.messaging.delivery.services import DeliveryFailed, deliver, prepare
from polyclinic.tenancy.models import Tenant
from polyclinic.worker.broker import create_broker
from polyclinic.worker.jobs import enqueue
from polyclinic.worker.outbox import OutboxEvent, record
from tests.conftest import Client
from tests.messaging import delivery_kit
from tests.messaging.conftest import info
from tests.messaging.delivery_kit import (
    CONFIRMED,
    deliveries,
    event_id,
    mails_to,
    patient_email,
    ready,
    relay,
    run_jobs,
    subject_of,
    unrelayed,
)
from tests.messaging.smtp_stand_in import REFUSED_DOMAIN, SmtpServer
from tests.scheduling.conftest import local

# The kit's fixtures, in this module's namespace for pytest.
smtp_servers = delivery_kit.smtp_servers
channel_settings = delivery_kit.channel_settings
client = delivery_kit.client
clinics = delivery_kit.clinics
broker = delivery_kit.broker
logs = delivery_kit.logs


async def test_a_confirmed_booking_is_emailed_once_through_the_clinics_own_server(
    client: Client,
    engine: AsyncEngine,
    clinics: tuple[Tenant, Tenant],
    smtp_servers: tuple[SmtpServer, SmtpServer],
    broker: dramatiq.Broker,
    logs: pytest.LogCaptureFixture,
) -> None:
    server = smtp_servers[0]
    clinic, password = await ready(clinics[0], client, engine, server)
    address = await patient_email(engine, clinic)
    await clinic.booked(local(2, "10:30"))

    assert await relay(engine, clinics[0], broker) == 2  # booked and confirmed
    assert await unrelayed(engine, clinics[0]) == 0
    await run_jobs(broker)

    [mail] = mails_to(server, address)
    assert mail.login == f"{clinics[0].slug}-mailer"
    assert mail.message["Subject"] == "Your appointment at Riverside Clinic is confirmed"
    body = mail.message.get_payload(decode=True).decode()
    assert "is confirmed for" in body and "Show this code at the desk" in body
    [delivery] = await deliveries(engine, clinics[0])
    assert (delivery.kind, delivery.channel, delivery.address) == (
        "appointment_confirmation",
        "email",
        address,
    )
    assert (delivery.status, delivery.provider, delivery.attempts) == ("sent", "smtp", 1)
    assert delivery.provider_message_id == mail.message["Message-ID"]

    # The same event's job again: nothing is sent twice.
    token = current_tenant.set(info(clinics[0]))
    try:
        enqueue(broker, "deliver_event", str(delivery.outbox_event_id))
    finally:
        current_tenant.reset(token)
    await run_jobs(broker)
    assert len(mails_to(server, address)) == 1
    [again] = await deliveries(engine, clinics[0])
    assert (again.id, again.status, again.attempts) == (delivery.id, "sent", 1)
    assert password not in logs.text


async def test_two_clinics_each_send_through_their_own_smtp_server(
    client: Client,
    engine: AsyncEngine,
    clinics: tuple[Tenant, Tenant],
    smtp_servers: tuple[SmtpServer, SmtpServer],
    broker: dramatiq.Broker,
) -> None:
    first, _ = await ready(clinics[0], client, engine, smtp_servers[0])
    second, _ = await ready(clinics[1], client, engine, smtp_servers[1])
    to_first, to_second = await patient_email(engine, first), await patient_email(engine, second)
    await first.booked(local(3, "09:00"))
    await second.booked(local(3, "09:00"))

    for tenant in clinics:
        assert await relay(engine, tenant, broker) == 2
    await run_jobs(broker)

    [mail_a] = mails_to(smtp_servers[0], to_first)
    [mail_b] = mails_to(smtp_servers[1], to_second)
    assert mails_to(smtp_servers[0], to_second) == mails_to(smtp_servers[1], to_first) == []
    assert mail_a.login == f"{clinics[0].slug}-mailer"
    assert mail_b.login == f"{clinics[1].slug}-mailer"
    assert "Hilltop Clinic" in mail_b.message["Subject"]
    for tenant in clinics:
        assert [d.status for d in await deliveries(engine, tenant)] == ["sent"]


async def test_a_refused_send_is_failed_listed_and_sent_by_a_retry(
    client: Client,
    engine: AsyncEngine,
    channel_settings: Settings,
    clinics: tuple[Tenant, Tenant],
    smtp_servers: tuple[SmtpServer, SmtpServer],
    logs: pytest.LogCaptureFixture,
) -> None:
    server = smtp_servers[0]
    clinic, password = await ready(clinics[0], client, engine, server)
    address = await patient_email(engine, clinic)
    login = f"{clinics[0].slug}-mailer"
    server.stand_in.accounts[login] = "another password"  # the server refuses the clinic
    await clinic.booked(local(2, "11:00"))
    confirmed = await event_id(engine, clinics[0])

    for attempt in (1, 2):  # the job's first attempt and a retry by dramatiq
        with pytest.raises(DeliveryFailed):
            await deliver(engine, channel_settings, info(clinics[0]), confirmed)
        [delivery] = await deliveries(engine, clinics[0])
        assert (delivery.status, delivery.attempts) == ("failed", attempt)
    assert delivery.last_error is not None and "refused" in delivery.last_error
    assert mails_to(server, address) == []

    listed = await clinic.clinic.call("GET", "/messaging/deliveries?status=failed", clinic.admin)
    assert listed.status_code == 200, listed.text
    [item] = listed.json()["data"]
    assert (item["id"], item["status"], item["attempts"]) == (str(delivery.id), "failed", 2)
    assert item["lastError"] == delivery.last_error
    assert listed.json()["meta"]["total"] == 1
    sent_list = await clinic.clinic.call("GET", "/messaging/deliveries?status=sent", clinic.admin)
    assert sent_list.json()["data"] == []
    refused = await clinic.clinic.call(
        "GET", "/messaging/deliveries?status=failed", clinic.reception
    )
    assert refused.status_code == 403

    server.stand_in.accounts[login] = password  # the server takes the clinic again
    retried = await clinic.clinic.call(
        "POST", f"/messaging/deliveries/{delivery.id}/retry", clinic.admin
    )
    assert retried.status_code == 200, retried.text
    data = retried.json()["data"]
    assert (data["status"], data["attempts"], data["lastError"]) == ("sent", 3, None)
    [mail] = mails_to(server, address)
    assert data["providerMessageId"] == mail.message["Message-ID"]

    again = await clinic.clinic.call(
        "POST", f"/messaging/deliveries/{delivery.id}/retry", clinic.admin
    )
    assert again.status_code == 409
    await deliver(engine, channel_settings, info(clinics[0]), confirmed)
    assert len(mails_to(server, address)) == 1
    for body in (listed.text, retried.text, logs.text):
        assert password not in body


async def test_a_channel_the_clinic_has_not_configured_is_not_sent_with_the_reason(
    client: Client,
    engine: AsyncEngine,
    channel_settings: Settings,
    clinics: tuple[Tenant, Tenant],
    smtp_servers: tuple[SmtpServer, SmtpServer],
) -> None:
    server = smtp_servers[0]
    clinic, _ = await ready(clinics[0], client, engine, server)
    async with clinic_transaction(engine, info(clinics[0])) as session:
        await session.execute(
            update(User).where(User.id == clinic.patient_id).values(phone="+4930123456")
        )
    address = await patient_email(engine, clinic)
    await clinic.booked(local(2, "12:00"))

    await deliver(engine, channel_settings, info(clinics[0]), await event_id(engine, clinics[0]))

    email, sms = await deliveries(engine, clinics[0])
    assert (email.channel, email.status) == ("email", "sent")
    assert len(mails_to(server, address)) == 1
    assert (sms.channel, sms.address, sms.status, sms.attempts) == (
        "sms",
        "+4930123456",
        "not_sent",
        0,
    )
    assert sms.reason is not None and "no sms provider" in sms.reason
    listed = await clinic.clinic.call("GET", "/messaging/deliveries?status=not_sent", clinic.admin)
    assert [item["reason"] for item in listed.json()["data"]] == [sms.reason]
    # Retried without a provider, it is not sent again, with the reason.
    retried = await clinic.clinic.call(
        "POST", f"/messaging/deliveries/{sms.id}/retry", clinic.admin
    )
    assert retried.status_code == 200, retried.text
    assert retried.json()["data"]["status"] == "not_sent"


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_events_stay_unrelayed_while_redis_is_unreachable_and_are_delivered_later(
    client: Client,
    engine: AsyncEngine,
    channel_settings: Settings,
    clinics: tuple[Tenant, Tenant],
    smtp_servers: tuple[SmtpServer, SmtpServer],
    broker: dramatiq.Broker,
) -> None:
    server = smtp_servers[1]
    clinic, _ = await ready(clinics[0], client, engine, server)
    address = await patient_email(engine, clinic)
    await clinic.booked(local(4, "15:00"))
    unreachable = create_broker(
        msgspec.structs.replace(channel_settings, redis_url=f"redis://127.0.0.1:{closed_port()}/0"),
        namespace=f"polyclinic-test-{uuid.uuid4().hex[:8]}",
    )
    try:
        with pytest.raises(Exception):  # noqa: B017 (whatever the client raises)
            await relay(engine, clinics[0], unreachable)
    finally:
        unreachable.close()
    # The confirmation waits; "booked" tells nobody, so it needed no job and is done.
    assert await unrelayed(engine, clinics[0]) == 1
    assert await deliveries(engine, clinics[0]) == []

    assert await relay(engine, clinics[0], broker) == 1
    await run_jobs(broker)
    assert await unrelayed(engine, clinics[0]) == 0
    assert len(mails_to(server, address)) == 1
    assert [d.status for d in await deliveries(engine, clinics[0])] == ["sent"]


async def test_a_quota_threshold_is_emailed_to_the_clinics_admins(
    client: Client,
    engine: AsyncEngine,
    channel_settings: Settings,
    clinics: tuple[Tenant, Tenant],
    smtp_servers: tuple[SmtpServer, SmtpServer],
) -> None:
    server = smtp_servers[0]
    await ready(clinics[0], client, engine, server)
    async with clinic_transaction(engine, info(clinics[0])) as session:
        admins = list(await session.scalars(select(User).where(User.role == "clinic_admin")))
        record(
            session,
            QUOTA_THRESHOLD_EVENT,
            None,
            {
                "percent": 80,
                "included": 50,
                "used": 40,
                "periodStart": "2026-11-01T00:00:00+00:00",
                "periodEnd": "2026-12-01T00:00:00+00:00",
                "plan": "Starter",
            },
        )
    assert admins

    sent = await deliver(
        engine,
        channel_settings,
        info(clinics[0]),
        await event_id(engine, clinics[0], QUOTA_THRESHOLD_EVENT),
    )

    assert sorted(d.address for d in sent) == sorted(a.email for a in admins)
    assert {(d.kind, d.channel, d.status) for d in sent} == {("quota_threshold", "email", "sent")}
    for admin in admins:
        [mail] = mails_to(server, admin.email)
        assert mail.message["Subject"] == (
            "Riverside Clinic has used 80% of its appointments this period"
        )


async def test_the_periodic_relay_job_relays_every_clinics_outbox(
    client: Client,
    engine: AsyncEngine,
    clinics: tuple[Tenant, Tenant],
    smtp_servers: tuple[SmtpServer, SmtpServer],
    broker: dramatiq.Broker,
) -> None:
    first, _ = await ready(clinics[0], client, engine, smtp_servers[0])
    second, _ = await ready(clinics[1], client, engine, smtp_servers[1])
    await first.booked(local(5, "09:30"))
    await second.booked(local(5, "09:30"))

    enqueue(broker, "relay_outboxes")
    # Other tests' clinics may be relayed too: wait for these two, not for the queue.
    for _ in range(200):
        statuses = [[d.status for d in await deliveries(engine, t)] for t in clinics]
        if statuses == [["sent"], ["sent"]]:
            break
        await asyncio.sleep(0.1)
    assert statuses == [["sent"], ["sent"]]
    for tenant in clinics:
        assert await unrelayed(engine, tenant) == 0
    assert len(mails_to(smtp_servers[0], await patient_email(engine, first))) == 1
    assert len(mails_to(smtp_servers[1], await patient_email(engine, second))) == 1


async def test_patients_are_written_to_in_their_language_and_not_on_a_channel_they_turned_off(
    client: Client,
    engine: AsyncEngine,
    clinics: tuple[Tenant, Tenant],
    smtp_servers: tuple[SmtpServer, SmtpServer],
    broker: dramatiq.Broker,
) -> None:
    server = smtp_servers[0]
    desk, _ = await ready(clinics[0], client, engine, server)
    address = await patient_email(engine, desk)
    german = await desk.clinic.call(
        "PUT",
        "/messaging/templates/appointment_confirmation/email",
        desk.admin,
        json={
            "locale": "de",
            "subject": "Ihr Termin bei {{ clinic_name }} ist bestätigt",
            "body": "Hallo {{ patient_name }}, bis {{ starts_at }}.",
        },
    )
    assert german.status_code == 200, german.text
    chosen = await desk.clinic.call(
        "PUT", "/me/preferences", desk.patient, json={"channels": ["email"], "locale": "de-AT"}
    )
    assert chosen.status_code == 200, chosen.text

    await desk.booked(local(2, "10:00"))
    await relay(engine, clinics[0], broker)
    await run_jobs(broker)
    [mail] = mails_to(server, address)
    assert subject_of(mail) == "Ihr Termin bei Riverside Clinic ist bestätigt"

    # Email turned off (SMS too: the patient has no phone): nothing is sent, and the log says why.
    off = await desk.clinic.call(
        "PUT", "/me/preferences", desk.patient, json={"channels": [], "locale": None}
    )
    assert off.status_code == 200, off.text
    await desk.booked(local(2, "11:00"))
    await relay(engine, clinics[0], broker)
    await run_jobs(broker)
    assert len(mails_to(server, address)) == 1
    statuses = sorted((d.status, d.reason) for d in await deliveries(engine, clinics[0]))
    assert statuses == [("not_sent", "the patient opted out of email"), ("sent", None)]


async def test_a_delivery_held_by_another_worker_is_left_to_it_until_its_claim_runs_out(
    client: Client,
    engine: AsyncEngine,
    channel_settings: Settings,
    clinics: tuple[Tenant, Tenant],
    smtp_servers: tuple[SmtpServer, SmtpServer],
) -> None:
    server = smtp_servers[0]
    clinic, _ = await ready(clinics[0], client, engine, server)
    address = await patient_email(engine, clinic)
    await clinic.booked(local(2, "13:00"))
    confirmed = await event_id(engine, clinics[0])
    async with clinic_transaction(engine, info(clinics[0])) as session:
        await prepare(session, confirmed)
    [delivery] = await deliveries(engine, clinics[0])

    async def claimed(seconds_ago: float) -> None:
        async with clinic_transaction(engine, info(clinics[0])) as session:
            await session.execute(
                update(Delivery)
                .where(Delivery.id == delivery.id)
                .values(
                    status="sending",
                    attempts=1,
                    sending_at=utcnow() - datetime.timedelta(seconds=seconds_ago),
                )
            )

    async def finished() -> bool:
        async with clinic_transaction(engine, info(clinics[0])) as session:
            event = await session.get_one(OutboxEvent, confirmed)
            return event.finished_at is not None

    # Claimed a moment ago: in flight elsewhere. Not sent here, the event stays unfinished
    # and the job is retried.
    await claimed(1)
    with pytest.raises(DeliveryFailed):
        await deliver(engine, channel_settings, info(clinics[0]), confirmed)
    assert mails_to(server, address) == []
    assert [d.status for d in await deliveries(engine, clinics[0])] == ["sending"]
    assert not await finished()

    # The claim outlived DELIVERY_CLAIM_SECONDS: its worker died mid-send. The provider may
    # have the message, so it is not called again; the delivery waits for a person.
    await claimed(channel_settings.delivery_claim_seconds + 1)
    await deliver(engine, channel_settings, info(clinics[0]), confirmed)
    assert mails_to(server, address) == []
    [unconfirmed] = await deliveries(engine, clinics[0])
    assert (unconfirmed.status, unconfirmed.attempts) == ("unconfirmed", 1)
    assert await finished()

    retried = await clinic.clinic.call(
        "POST", f"/messaging/deliveries/{delivery.id}/retry", clinic.admin
    )
    assert retried.json()["data"]["status"] == "sent"
    [mail] = mails_to(server, address)
    assert mail.message["Message-ID"] == f"<{delivery.id}@clinic.example>"  # the same key


async def test_a_retry_by_hand_does_not_reach_a_patient_who_has_opted_out_since(
    client: Client,
    engine: AsyncEngine,
    channel_settings: Settings,
    clinics: tuple[Tenant, Tenant],
    smtp_servers: tuple[SmtpServer, SmtpServer],
) -> None:
    server = smtp_servers[1]
    desk, _ = await ready(clinics[1], client, engine, server)
    refused_address = f"patient-{uuid.uuid4().hex[:6]}@{REFUSED_DOMAIN}"
    async with clinic_transaction(engine, info(clinics[1])) as session:
        await session.execute(
            update(User).where(User.id == desk.patient_id).values(email=refused_address)
        )
    await desk.booked(local(2, "15:00"))
    with pytest.raises(DeliveryFailed):
        await deliver(
            engine, channel_settings, info(clinics[1]), await event_id(engine, clinics[1])
        )
    [failed] = await deliveries(engine, clinics[1])
    assert failed.status == "failed"
    off = await desk.clinic.call(
        "PUT", "/me/preferences", desk.patient, json={"channels": [], "locale": None}
    )
    assert off.status_code == 200, off.text

    retried = await desk.clinic.call("POST", f"/messaging/deliveries/{failed.id}/retry", desk.admin)
    assert retried.status_code == 200, retried.text
    assert retried.json()["data"]["status"] == "not_sent"
    assert retried.json()["data"]["reason"] == "the patient opted out of email"
    [after] = await deliveries(engine, clinics[1])
    assert after.attempts == 1  # the provider was not called again
    assert mails_to(server, refused_address) == []


async def test_deliveries_no_job_will_come_back_for_are_marked_for_a_person(
    client: Client,
    engine: AsyncEngine,
    channel_settings: Settings,
    clinics: tuple[Tenant, Tenant],
    smtp_servers: tuple[SmtpServer, SmtpServer],
    broker: dramatiq.Broker,
) -> None:
    desk, _ = await ready(clinics[0], client, engine, smtp_servers[0])
    await desk.booked(local(2, "16:00"))
    await desk.booked(local(2, "17:00"))
    async with clinic_transaction(engine, info(clinics[0])) as session:
        confirmed = list(
            await session.scalars(select(OutboxEvent.id).where(OutboxEvent.kind == CONFIRMED))
        )
    for event in confirmed:
        await deliver(engine, channel_settings, info(clinics[0]), event)
    first, second = await deliveries(engine, clinics[0])
    long_ago = utcnow() - datetime.timedelta(seconds=channel_settings.delivery_claim_seconds + 1)
    async with clinic_transaction(engine, info(clinics[0])) as session:
        # A hand retry whose process stopped mid-send (its event is finished).
        await session.execute(
            update(Delivery)
            .where(Delivery.id == first.id)
            .values(status="sending", sending_at=long_ago)
        )
        # Account mail whose process stopped before the send.
        await session.execute(
            update(Delivery)
            .where(Delivery.id == second.id)
            .values(kind="password_reset", status="pending", created_at=long_ago)
        )

    await relay_all(engine, broker, channel_settings)

    by_id = {d.id: d for d in await deliveries(engine, clinics[0])}
    assert by_id[first.id].status == "unconfirmed"
    assert by_id[first.id].reason is not None and "not sent again" in by_id[first.id].reason
    assert by_id[second.id].status == "not_sent"
    assert by_id[second.id].reason is not None and "asks for a new one" in by_id[second.id].reason
