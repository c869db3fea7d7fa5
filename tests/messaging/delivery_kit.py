"""What the delivery tests share: two SMTP stand-ins, a clinic ready to book with its own
email channel, a worker on a broker of the test's own, and ways to look at the outbox and the
delivery log."""

from __future__ import annotations

import asyncio
import datetime
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from email.header import decode_header, make_header
from typing import Any

import dramatiq
import msgspec
import pytest
from dramatiq import Worker
from sqlalchemy import func, or_, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.app import create_app
from polyclinic.config import Settings
from polyclinic.db.session import clinic_session, clinic_transaction, quote_ident
from polyclinic.identity.accounts.models import User
from polyclinic.messaging.delivery.models import Delivery
from polyclinic.messaging.delivery.services import relay_outbox
from polyclinic.tenancy.models import Tenant
from polyclinic.worker.broker import create_broker
from polyclinic.worker.outbox import OutboxEvent
from tests.conftest import Client
from tests.identity.conftest import ClinicApi
from tests.messaging.conftest import info, new_master_key
from tests.messaging.smtp_stand_in import SmtpServer, SmtpStandIn
from tests.scheduling.conftest import Bookable, bookable

CONFIRMED = "appointment.confirmed"
# Relayed events are not relayed again within a test, unless it says so.
LATER = datetime.timedelta(hours=1)


@pytest.fixture(scope="module")
def smtp_servers() -> Iterator[tuple[SmtpServer, SmtpServer]]:
    with SmtpServer(SmtpStandIn()) as first, SmtpServer(SmtpStandIn()) as second:
        yield first, second


@pytest.fixture
def channel_settings(settings: Settings) -> Settings:
    return msgspec.structs.replace(settings, messaging_master_key=new_master_key())


@pytest.fixture
async def client(channel_settings: Settings) -> AsyncIterator[Client]:
    app = create_app(channel_settings)
    client = Client(app)
    yield client
    await client.http.aclose()
    runtime = app.state.runtime
    await runtime.engine.dispose()
    if runtime.redis is not None:
        await runtime.redis.aclose()


@pytest.fixture
async def clinics(
    engine: AsyncEngine, two_clinics: tuple[Tenant, Tenant]
) -> AsyncIterator[tuple[Tenant, Tenant]]:
    """The clinics, whose channels, keys and wording are dropped and outbox marked relayed
    afterwards,
    so no later relay or key rotation meets this test's throwaway master key or servers."""
    yield two_clinics
    async with engine.begin() as connection:
        for tenant in two_clinics:
            schema = quote_ident(tenant.schema_name)
            for table in ("channel_settings", "channel_secrets", "data_keys", "message_templates"):
                await connection.execute(text(f"DELETE FROM {schema}.{table}"))
            await connection.execute(
                text(f"UPDATE {schema}.outbox SET relayed_at = now() WHERE relayed_at IS NULL")
            )


@pytest.fixture
def broker(channel_settings: Settings) -> Iterator[dramatiq.Broker]:
    broker = create_broker(channel_settings, namespace=f"polyclinic-test-{uuid.uuid4().hex[:8]}")
    worker = Worker(broker, worker_timeout=100, worker_threads=2)
    worker.start()
    yield broker
    worker.stop()
    broker.flush_all()
    broker.close()


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


async def ready(
    tenant: Tenant, client: Client, engine: AsyncEngine, server: SmtpServer | None
) -> tuple[Bookable, str]:
    """A clinic ready to book whose email channel (when a server is given) is that SMTP
    server, with an account of its own; (the clinic, its SMTP password)."""
    clinic = await bookable(ClinicApi(client, tenant), engine)
    password = f"smtp-Pass-{uuid.uuid4().hex}"
    if server is not None:
        login = f"{tenant.slug}-mailer"
        server.stand_in.accounts[login] = password
        saved = await clinic.clinic.call(
            "PUT",
            "/messaging/channels/email",
            clinic.admin,
            json=smtp_body(server, login, password),
        )
        assert saved.status_code == 200, saved.text
    return clinic, password


def smtp_body(server: SmtpServer, login: str, password: str) -> dict[str, Any]:
    return {
        "provider": "smtp",
        "settings": {
            "host": "127.0.0.1",
            "port": server.port,
            "security": "none",
            "username": login,
            "fromAddress": "front-desk@clinic.example",
        },
        "secrets": {"password": password},
    }


async def patient_email(engine: AsyncEngine, clinic: Bookable) -> str:
    async with clinic_transaction(engine, info(clinic.clinic.tenant)) as session:
        return (await session.get_one(User, clinic.patient_id)).email


def mails_to(server: SmtpServer, address: str) -> list[Any]:
    return [r for r in server.stand_in.received if address in r.rcpt_tos]


async def deliveries(engine: AsyncEngine, tenant: Tenant) -> list[Delivery]:
    async with clinic_transaction(engine, info(tenant)) as session:
        return list(await session.scalars(select(Delivery).order_by(Delivery.channel)))


async def event_id(engine: AsyncEngine, tenant: Tenant, kind: str = CONFIRMED) -> uuid.UUID:
    async with clinic_transaction(engine, info(tenant)) as session:
        found = await session.scalar(select(OutboxEvent.id).where(OutboxEvent.kind == kind))
    assert found is not None
    return found


async def unrelayed(engine: AsyncEngine, tenant: Tenant) -> int:
    """Events due and not relayed (reminders wait for their time)."""
    async with clinic_transaction(engine, info(tenant)) as session:
        events = await session.scalars(
            select(OutboxEvent).where(
                OutboxEvent.relayed_at.is_(None),
                or_(OutboxEvent.due_at.is_(None), OutboxEvent.due_at <= func.now()),
            )
        )
        return len(events.all())


async def relay(engine: AsyncEngine, tenant: Tenant, broker: dramatiq.Broker) -> int:
    async with clinic_session(engine, info(tenant)) as session:
        return await relay_outbox(session, broker, again_after=LATER)


async def run_jobs(broker: dramatiq.Broker) -> None:
    await asyncio.to_thread(broker.join, "messaging", timeout=20_000)


def subject_of(mail: Any) -> str:
    """The subject as a reader sees it: unfolded, encoded words decoded."""
    raw = str(mail.message["Subject"])
    return " ".join(str(make_header(decode_header(raw))).split())
