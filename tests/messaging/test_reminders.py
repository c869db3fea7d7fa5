"""Reminders: written when an appointment is confirmed, at the clinic's offsets; sent when
due through the clinic's own provider, once; replaced when the appointment moves and dropped
when it is cancelled, even when the change races a reminder already on its way.

Time is the one thing simulated: a reminder is made due by moving its `due_at` to now.
"""

from __future__ import annotations

import datetime
import uuid

import dramatiq
import pytest
from dramatiq.brokers.stub import StubBroker
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.config import Settings
from polyclinic.db.base import utcnow
from polyclinic.db.session import clinic_transaction
from polyclinic.identity.accounts.models import User
from polyclinic.messaging.delivery.models import Delivery
from polyclinic.messaging.delivery.services import DeliveryFailed, deliver, local_time
from polyclinic.scheduling.appointments.reminders import REMINDER_EVENT
from polyclinic.tenancy.models import Tenant
from polyclinic.worker.context import TenantContext
from polyclinic.worker.jobs import declare_jobs
from polyclinic.worker.outbox import OutboxEvent
from tests.conftest import Client
from tests.messaging import delivery_kit
from tests.messaging.conftest import info
from tests.messaging.delivery_kit import (
    mails_to,
    patient_email,
    ready,
    relay,
    run_jobs,
    subject_of,
)
from tests.messaging.smtp_stand_in import REFUSED_DOMAIN, SmtpServer
from tests.scheduling.conftest import BERLIN, iso, local

smtp_servers = delivery_kit.smtp_servers
channel_settings = delivery_kit.channel_settings
client = delivery_kit.client
clinics = delivery_kit.clinics
broker = delivery_kit.broker

HOUR = datetime.timedelta(hours=1)


async def reminders(engine: AsyncEngine, tenant: Tenant, appointment_id: str) -> list[OutboxEvent]:
    async with clinic_transaction(engine, info(tenant)) as session:
        rows = await session.scalars(
            select(OutboxEvent)
            .where(
                OutboxEvent.kind == REMINDER_EVENT,
                OutboxEvent.subject_id == uuid.UUID(appointment_id),
            )
            .order_by(OutboxEvent.created_at, OutboxEvent.due_at)
        )
        return list(rows)


async def waiting(engine: AsyncEngine, tenant: Tenant, appointment_id: str) -> list[OutboxEvent]:
    return [r for r in await reminders(engine, tenant, appointment_id) if r.relayed_at is None]


async def make_due(engine: AsyncEngine, tenant: Tenant, appointment_id: str) -> None:
    """The time has come for every reminder of the appointment not yet relayed."""
    async with clinic_transaction(engine, info(tenant)) as session:
        await session.execute(
            update(OutboxEvent)
            .where(
                OutboxEvent.kind == REMINDER_EVENT,
                OutboxEvent.subject_id == uuid.UUID(appointment_id),
                OutboxEvent.relayed_at.is_(None),
            )
            .values(due_at=utcnow() - datetime.timedelta(seconds=1))
        )


async def reminder_deliveries(engine: AsyncEngine, tenant: Tenant) -> list[Delivery]:
    async with clinic_transaction(engine, info(tenant)) as session:
        rows = await session.scalars(
            select(Delivery).where(Delivery.kind == "appointment_reminder")
        )
        return list(rows)


def held_jobs() -> StubBroker:
    """A broker that only keeps the jobs sent to it, until `release` hands them on."""
    held = StubBroker()
    held.add_middleware(TenantContext(lambda _: None))
    declare_jobs(held)
    return held


async def release(held: StubBroker, broker: dramatiq.Broker) -> None:
    queue = held.queues["messaging"]
    while not queue.empty():
        broker.enqueue(dramatiq.Message.decode(queue.get_nowait()))
    await run_jobs(broker)


def reminder_mails(server: SmtpServer, address: str) -> list[str]:
    subjects = [subject_of(m) for m in mails_to(server, address)]
    return [s for s in subjects if s.startswith("Reminder")]


async def test_a_confirmed_booking_gets_the_clinics_reminders_sent_once_when_due(
    client: Client,
    engine: AsyncEngine,
    clinics: tuple[Tenant, Tenant],
    smtp_servers: tuple[SmtpServer, SmtpServer],
    broker: dramatiq.Broker,
) -> None:
    server = smtp_servers[0]
    desk, _ = await ready(clinics[0], client, engine, server)
    address = await patient_email(engine, desk)
    # The clinic's own wording, with every value a reminder has.
    wording = await desk.clinic.call(
        "PUT",
        "/messaging/templates/appointment_reminder/email",
        desk.admin,
        json={
            "locale": "en",
            "subject": "Reminder: {{ service_name }} at {{ clinic_name }}, {{ starts_at }}",
            "body": "Show this at the desk: {{ check_in_code }}",
        },
    )
    assert wording.status_code == 200, wording.text
    appointment = await desk.booked(local(3, "10:30"))
    starts = datetime.datetime.fromisoformat(appointment["startsAt"])

    pending = await waiting(engine, clinics[0], appointment["id"])
    assert [r.due_at for r in pending] == [starts - 24 * HOUR, starts - HOUR]
    await relay(engine, clinics[0], broker)
    await run_jobs(broker)
    assert reminder_mails(server, address) == []  # not due yet

    await make_due(engine, clinics[0], appointment["id"])
    assert await relay(engine, clinics[0], broker) == 2
    await run_jobs(broker)
    subjects = reminder_mails(server, address)
    assert len(subjects) == 2
    starts_local = local_time(appointment["startsAt"], BERLIN)
    assert all(s.endswith(f"at Riverside Clinic, {starts_local}") for s in subjects)
    bodies = [
        m.message.get_payload(decode=True).decode()
        for m in mails_to(server, address)
        if subject_of(m).startswith("Reminder")
    ]
    assert all(b.startswith("Show this at the desk: ") and len(b.strip()) > 30 for b in bodies)

    # Relayed and run again: each reminder is still sent once.
    async with clinic_transaction(engine, info(clinics[0])) as session:
        await session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.kind == REMINDER_EVENT)
            .values(relayed_at=utcnow() - datetime.timedelta(days=1), finished_at=None)
        )
    assert await relay(engine, clinics[0], broker) == 2
    await run_jobs(broker)
    assert len(reminder_mails(server, address)) == 2
    assert [d.status for d in await reminder_deliveries(engine, clinics[0])] == ["sent", "sent"]


async def test_the_clinic_chooses_its_reminder_offsets(
    client: Client, engine: AsyncEngine, clinics: tuple[Tenant, Tenant]
) -> None:
    desk, _ = await ready(clinics[0], client, engine, None)
    policy = await desk.clinic.call("GET", "/booking-policy", desk.admin)
    assert policy.json()["data"]["reminderOffsetsMinutes"] == [1440, 60]

    for bad in ([60, 60], [2], [30] * 6, [60 * 24 * 15]):
        refused = await desk.clinic.call(
            "PATCH", "/booking-policy", desk.admin, json={"reminderOffsetsMinutes": bad}
        )
        assert refused.status_code == 422, bad
        assert refused.json()["errors"][0]["field"].startswith("reminderOffsetsMinutes")
    unchanged = await desk.clinic.call("GET", "/booking-policy", desk.admin)
    assert unchanged.json()["data"]["reminderOffsetsMinutes"] == [1440, 60]

    saved = await desk.clinic.call(
        "PATCH", "/booking-policy", desk.admin, json={"reminderOffsetsMinutes": [120, 2880]}
    )
    assert saved.json()["data"]["reminderOffsetsMinutes"] == [2880, 120]
    appointment = await desk.booked(local(5, "09:00"))
    starts = datetime.datetime.fromisoformat(appointment["startsAt"])
    pending = await waiting(engine, clinics[0], appointment["id"])
    assert [r.due_at for r in pending] == [starts - 48 * HOUR, starts - 2 * HOUR]

    # A booking sooner than an offset gets only the reminders still ahead of it; none at all
    # when the clinic wants none.
    await desk.clinic.call(
        "PATCH", "/booking-policy", desk.admin, json={"reminderOffsetsMinutes": []}
    )
    silent = await desk.booked(local(5, "11:00"))
    assert await waiting(engine, clinics[0], silent["id"]) == []


async def test_a_moved_appointment_is_reminded_of_its_new_time_only(
    client: Client,
    engine: AsyncEngine,
    clinics: tuple[Tenant, Tenant],
    smtp_servers: tuple[SmtpServer, SmtpServer],
    broker: dramatiq.Broker,
) -> None:
    server = smtp_servers[0]
    desk, _ = await ready(clinics[0], client, engine, server)
    address = await patient_email(engine, desk)
    appointment = await desk.booked(local(3, "09:00"))
    before = await waiting(engine, clinics[0], appointment["id"])

    # One reminder is already on its way (relayed, its job not yet run) when the move comes.
    async with clinic_transaction(engine, info(clinics[0])) as session:
        await session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.id == before[0].id)
            .values(due_at=utcnow() - datetime.timedelta(seconds=1))
        )
    held = held_jobs()
    assert await relay(engine, clinics[0], held) == 3  # booked, confirmed and the reminder
    moved = await desk.act(
        appointment["id"], "reschedule", desk.patient, startsAt=iso(local(4, "11:00"))
    )
    assert moved.status_code == 200, moved.text
    await release(held, broker)
    new_start = datetime.datetime.fromisoformat(moved.json()["data"][0]["startsAt"])
    assert reminder_mails(server, address) == []  # the old time is never announced

    after = await waiting(engine, clinics[0], appointment["id"])
    assert [r.due_at for r in after] == [new_start - 24 * HOUR, new_start - HOUR]
    assert {r.id for r in after}.isdisjoint({r.id for r in before})
    await make_due(engine, clinics[0], appointment["id"])
    await relay(engine, clinics[0], broker)
    await run_jobs(broker)
    subjects = reminder_mails(server, address)
    assert len(subjects) == 2
    assert all(local_time(new_start.isoformat(), BERLIN) in s for s in subjects)


async def test_a_cancelled_appointment_is_not_reminded(
    client: Client,
    engine: AsyncEngine,
    clinics: tuple[Tenant, Tenant],
    smtp_servers: tuple[SmtpServer, SmtpServer],
    broker: dramatiq.Broker,
) -> None:
    server = smtp_servers[1]
    desk, _ = await ready(clinics[1], client, engine, server)
    address = await patient_email(engine, desk)
    first = await desk.booked(local(3, "09:00"))
    second = await desk.booked(local(3, "10:00"))

    # The first one's reminders are relayed before it is cancelled; the second's are waiting.
    await make_due(engine, clinics[1], first["id"])
    held = held_jobs()
    assert await relay(engine, clinics[1], held) == 2 * 2 + 2  # booked and confirmed too
    for appointment in (first, second):
        cancelled = await desk.act(appointment["id"], "cancel", desk.patient, reason="Away")
        assert cancelled.status_code == 200, cancelled.text
    await release(held, broker)
    assert await waiting(engine, clinics[1], second["id"]) == []
    await make_due(engine, clinics[1], second["id"])
    await relay(engine, clinics[1], broker)
    await run_jobs(broker)

    assert reminder_mails(server, address) == []
    assert await reminder_deliveries(engine, clinics[1]) == []
    relayed = await reminders(engine, clinics[1], first["id"])
    assert len(relayed) == 2 and all(r.finished_at is not None for r in relayed)


async def test_a_failed_reminder_retried_by_hand_after_a_cancellation_is_not_sent(
    client: Client,
    engine: AsyncEngine,
    clinics: tuple[Tenant, Tenant],
    smtp_servers: tuple[SmtpServer, SmtpServer],
    channel_settings: Settings,
) -> None:
    server = smtp_servers[0]
    desk, _ = await ready(clinics[0], client, engine, server)
    appointment = await desk.booked(local(3, "14:00"))
    await make_due(engine, clinics[0], appointment["id"])
    # The patient's mail server refuses the reminders.
    address = f"patient-{uuid.uuid4().hex[:6]}@{REFUSED_DOMAIN}"
    async with clinic_transaction(engine, info(clinics[0])) as session:
        await session.execute(update(User).where(User.id == desk.patient_id).values(email=address))
    async with clinic_transaction(engine, info(clinics[0])) as session:  # as the relay does
        await session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.kind == REMINDER_EVENT)
            .values(relayed_at=utcnow())
        )
    for reminder in await reminders(engine, clinics[0], appointment["id"]):
        with pytest.raises(DeliveryFailed):
            await deliver(engine, channel_settings, info(clinics[0]), reminder.id)
    failed = await reminder_deliveries(engine, clinics[0])
    assert [d.status for d in failed] == ["failed", "failed"]

    cancelled = await desk.act(appointment["id"], "cancel", desk.patient, reason="Away")
    assert cancelled.status_code == 200, cancelled.text
    for delivery in failed:
        retried = await desk.clinic.call(
            "POST", f"/messaging/deliveries/{delivery.id}/retry", desk.admin
        )
        assert retried.json()["data"]["status"] == "not_sent"
        assert "cancelled" in retried.json()["data"]["reason"]
    assert reminder_mails(server, address) == []
