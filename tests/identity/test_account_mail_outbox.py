"""Account mail goes through the clinic's outbox: written in the same transaction as its
one-time code, the code sealed under the clinic's key (never readable in the database), sent
by the relay if the process that wrote it stops first, and erased once sent."""

from __future__ import annotations

import asyncio
import datetime
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import dramatiq
import msgspec
import pytest
from dramatiq import Worker
from litestar import Litestar
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.app import create_app
from polyclinic.config import Settings
from polyclinic.db.base import utcnow
from polyclinic.db.session import clinic_session, clinic_transaction, quote_ident
from polyclinic.messaging.delivery.account_mail import AccountMailTokens
from polyclinic.messaging.delivery.jobs import relay_all
from polyclinic.messaging.delivery.models import Delivery
from polyclinic.messaging.delivery.services import close_abandoned, deliver
from polyclinic.messaging.errors import SecretUnreadable
from polyclinic.tenancy.models import Tenant
from polyclinic.tenancy.resolver import tenant_info
from polyclinic.worker.broker import create_broker
from polyclinic.worker.mail import MailMessage
from polyclinic.worker.outbox import OutboxEvent
from tests.conftest import Client
from tests.identity.conftest import ClinicApi, add_user
from tests.messaging.conftest import new_master_key
from tests.messaging.smtp_stand_in import SmtpServer, SmtpStandIn

LOGIN, PASSWORD = "platform-mailer", "platform-mail-password"
NEW_PASSWORD = "a-brand-new-secret-7"


class StoppedProcess:
    """A `Mailer` for a process that stops right after its commit: nothing is sent."""

    def __init__(self) -> None:
        self.asked: list[uuid.UUID] = []

    async def send(self, message: MailMessage, event_id: uuid.UUID) -> None:
        self.asked.append(event_id)


@pytest.fixture(scope="module")
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer(SmtpStandIn()) as server:
        server.stand_in.accounts[LOGIN] = PASSWORD
        yield server


def mail_settings(settings: Settings, smtp: SmtpServer, *, master_key: bool) -> Settings:
    return msgspec.structs.replace(
        settings,
        messaging_master_key=new_master_key() if master_key else None,
        platform_smtp_url=f"smtp://{LOGIN}:{quote(PASSWORD, safe='')}@127.0.0.1:{smtp.port}",
        platform_smtp_security="none",
        platform_email_from="no-reply@platform.test",
    )


@pytest.fixture
def sealing_settings(settings: Settings, smtp: SmtpServer) -> Settings:
    return mail_settings(settings, smtp, master_key=True)


@pytest.fixture
async def clinics(
    engine: AsyncEngine, two_clinics: tuple[Tenant, Tenant]
) -> AsyncIterator[tuple[Tenant, Tenant]]:
    """No later test meets this test's throwaway master key or unsent mail."""
    yield two_clinics
    async with engine.begin() as connection:
        for tenant in two_clinics:
            schema = quote_ident(tenant.schema_name)
            await connection.execute(text(f"DELETE FROM {schema}.data_keys"))
            await connection.execute(
                text(
                    f"UPDATE {schema}.outbox SET relayed_at = now(), finished_at = now() "
                    "WHERE finished_at IS NULL"
                )
            )


def app_for(settings: Settings, mailer: Any | None = None) -> Litestar:
    app = create_app(settings)
    if mailer is not None:
        app.state.runtime.mail.mailer = mailer
    return app


async def closed(app: Litestar) -> None:
    runtime = app.state.runtime
    await runtime.mail.drain()
    await runtime.engine.dispose()
    if runtime.redis is not None:
        await runtime.redis.aclose()


@pytest.fixture
def broker(sealing_settings: Settings) -> Iterator[dramatiq.Broker]:
    """A worker on a broker of the test's own, with the app's settings (the same keys)."""
    broker = create_broker(sealing_settings, namespace=f"polyclinic-test-{uuid.uuid4().hex[:8]}")
    worker = Worker(broker, worker_timeout=100, worker_threads=2)
    worker.start()
    yield broker
    worker.stop()
    broker.flush_all()
    broker.close()


def info(tenant: Tenant) -> Any:
    bound = tenant_info(tenant)
    assert bound is not None
    return bound


async def reset_event(engine: AsyncEngine, tenant: Tenant) -> OutboxEvent:
    async with clinic_transaction(engine, info(tenant)) as session:
        event = await session.scalar(
            select(OutboxEvent).where(OutboxEvent.kind == "account.password_reset")
        )
    assert event is not None
    return event


async def rows_as_text(engine: AsyncEngine, tenant: Tenant) -> str:
    """Everything the clinic's outbox, tokens, deliveries and auth trail hold, as text."""
    async with clinic_transaction(engine, info(tenant)) as session:
        rows = []
        for table in ("outbox", "user_tokens", "deliveries", "auth_events"):
            result = await session.execute(text(f"SELECT t::text FROM {table} t"))
            rows += result.scalars().all()
    return "\n".join(rows)


def token_in(server: SmtpServer, address: str) -> str:
    [mail] = [r for r in server.stand_in.received if address in r.rcpt_tos]
    body = mail.message.get_payload(decode=True).decode()
    match = re.search(r"https?://\S+", body)
    assert match, body
    assert "/reset-password?token=" in match.group(0)
    return parse_qs(urlsplit(match.group(0)).query)["token"][0]


async def test_a_reset_mail_outlives_the_process_that_wrote_it(
    sealing_settings: Settings,
    clinics: tuple[Tenant, Tenant],
    engine: AsyncEngine,
    smtp: SmtpServer,
    broker: dramatiq.Broker,
) -> None:
    tenant = clinics[0]
    email = f"crash-{uuid.uuid4().hex[:6]}@example.com"
    await add_user(engine, tenant, email, "nurse")
    stopped = StoppedProcess()
    app = app_for(sealing_settings, stopped)
    try:
        clinic = ClinicApi(Client(app), tenant)
        asked = await clinic.call("POST", "/auth/forgot-password", json={"email": email})
        assert asked.status_code == 200
        await app.state.runtime.mail.drain()
    finally:
        await closed(app)

    # Committed with its code, in one transaction, and nothing sent: the process "stopped".
    event = await reset_event(engine, tenant)
    assert stopped.asked == [event.id]
    assert event.relayed_at is None and event.finished_at is None
    assert event.payload["to"] == email and "token" in event.payload
    async with clinic_transaction(engine, info(tenant)) as session:
        same_transaction = await session.scalar(
            text(
                "SELECT o.xmin = t.xmin FROM outbox o, user_tokens t "
                "WHERE o.id = :event AND t.purpose = 'reset_password' AND t.used_at IS NULL"
            ),
            {"event": event.id},
        )
    assert same_transaction is True
    stored_before = await rows_as_text(engine, tenant)
    assert [r for r in smtp.stand_in.received if email in r.rcpt_tos] == []

    # The periodic relay (in the scheduler's process) hands it to a worker, which sends it.
    assert await relay_all(engine, broker, sealing_settings) >= 1
    await asyncio.to_thread(broker.join, "messaging", timeout=20_000)

    token = token_in(smtp, email)
    assert token not in stored_before  # only ever sealed in the database
    after = await reset_event(engine, tenant)
    assert "token" not in after.payload and after.finished_at is not None
    async with clinic_transaction(engine, info(tenant)) as session:
        [delivery] = (await session.scalars(select(Delivery))).all()
    assert (delivery.kind, delivery.status, delivery.address) == ("password_reset", "sent", email)
    assert token not in await rows_as_text(engine, tenant)

    # The link works, once.
    app = app_for(sealing_settings)
    try:
        clinic = ClinicApi(Client(app), tenant)
        body = {"token": token, "password": NEW_PASSWORD}
        reset = await clinic.call("POST", "/auth/reset-password", json=body)
        again = await clinic.call("POST", "/auth/reset-password", json=body)
        assert reset.status_code == 200, reset.text
        assert again.status_code == 422
        assert (await clinic.login(email, NEW_PASSWORD))["user"]["email"] == email
    finally:
        await closed(app)


async def test_sent_at_once_the_code_is_erased_and_the_relay_sends_nothing_again(
    sealing_settings: Settings,
    clinics: tuple[Tenant, Tenant],
    engine: AsyncEngine,
    smtp: SmtpServer,
    broker: dramatiq.Broker,
) -> None:
    tenant = clinics[1]
    email = f"at-once-{uuid.uuid4().hex[:6]}@example.com"
    await add_user(engine, tenant, email, "doctor")
    app = app_for(sealing_settings)
    try:
        clinic = ClinicApi(Client(app), tenant)
        assert (
            await clinic.call("POST", "/auth/forgot-password", json={"email": email})
        ).status_code == 200
        await app.state.runtime.mail.drain()
    finally:
        await closed(app)

    token_in(smtp, email)
    event = await reset_event(engine, tenant)
    assert "token" not in event.payload
    assert event.relayed_at is not None and event.finished_at is not None
    await relay_all(engine, broker, sealing_settings)
    await asyncio.to_thread(broker.join, "messaging", timeout=20_000)
    assert len([r for r in smtp.stand_in.received if email in r.rcpt_tos]) == 1


async def test_a_sealed_code_opens_only_at_its_own_clinic(
    sealing_settings: Settings, clinics: tuple[Tenant, Tenant], engine: AsyncEngine
) -> None:
    a, b = clinics
    email = f"copied-{uuid.uuid4().hex[:6]}@example.com"
    await add_user(engine, a, email, "nurse")
    app = app_for(sealing_settings, StoppedProcess())
    try:
        clinic = ClinicApi(Client(app), a)
        await clinic.call("POST", "/auth/forgot-password", json={"email": email})
        await app.state.runtime.mail.drain()
    finally:
        await closed(app)
    event = await reset_event(engine, a)
    tokens = AccountMailTokens(sealing_settings)
    async with clinic_session(engine, info(a)) as session:
        assert await tokens.open(session, event)

    # The same row, same id and all, in the other clinic's outbox.
    async with clinic_transaction(engine, info(b)) as session:
        await tokens.seal(session, uuid.uuid4(), "b's own data key")
        copy = OutboxEvent(
            id=event.id,
            kind=event.kind,
            subject_id=event.subject_id,
            payload=event.payload,
            created_at=event.created_at,
            relayed_at=event.created_at,
            finished_at=event.created_at,
        )
        session.add(copy)
    async with clinic_session(engine, info(b)) as session:
        copied = await session.get_one(OutboxEvent, event.id)
        with pytest.raises(SecretUnreadable):
            await tokens.open(session, copied)


async def test_without_a_master_key_the_code_is_not_kept(
    settings: Settings,
    clinics: tuple[Tenant, Tenant],
    engine: AsyncEngine,
    smtp: SmtpServer,
) -> None:
    plain = mail_settings(settings, smtp, master_key=False)
    tenant = clinics[0]
    sent_now, lost = (f"{n}-{uuid.uuid4().hex[:6]}@example.com" for n in ("now", "lost"))
    for email in (sent_now, lost):
        await add_user(engine, tenant, email, "billing")

    # Sent at once by the process that has the code.
    app = app_for(plain)
    try:
        clinic = ClinicApi(Client(app), tenant)
        await clinic.call("POST", "/auth/forgot-password", json={"email": sent_now})
        await app.state.runtime.mail.drain()
    finally:
        await closed(app)
    token_in(smtp, sent_now)

    # That process stops first: the event says so when the relay comes back to it.
    app = app_for(plain, StoppedProcess())
    try:
        clinic = ClinicApi(Client(app), tenant)
        await clinic.call("POST", "/auth/forgot-password", json={"email": lost})
        await app.state.runtime.mail.drain()
    finally:
        await closed(app)
    async with clinic_transaction(engine, info(tenant)) as session:
        event = await session.scalar(
            select(OutboxEvent).where(OutboxEvent.payload["to"].astext == lost)
        )
    assert event is not None and "token" not in event.payload
    assert event.relayed_at is not None  # left to its own process, not to the relay
    [delivery] = await deliver(engine, plain, info(tenant), event.id)
    assert delivery.status == "not_sent"
    assert delivery.reason is not None and "asks for a new one" in delivery.reason
    assert [r for r in smtp.stand_in.received if lost in r.rcpt_tos] == []


async def test_no_code_is_kept_longer_than_any_code_lives(
    sealing_settings: Settings, clinics: tuple[Tenant, Tenant], engine: AsyncEngine
) -> None:
    tenant = clinics[1]
    emails = [f"{n}-{uuid.uuid4().hex[:6]}@example.com" for n in ("old", "new")]
    for email in emails:
        await add_user(engine, tenant, email, "nurse")
    app = app_for(sealing_settings, StoppedProcess())
    try:
        clinic = ClinicApi(Client(app), tenant)
        for email in emails:
            await clinic.call("POST", "/auth/forgot-password", json={"email": email})
        await app.state.runtime.mail.drain()
    finally:
        await closed(app)
    async with clinic_transaction(engine, info(tenant)) as session:
        await session.execute(
            update(OutboxEvent)
            .where(OutboxEvent.payload["to"].astext == emails[0])
            .values(created_at=utcnow() - datetime.timedelta(days=8))
        )

    async with clinic_session(engine, info(tenant)) as session:
        await close_abandoned(session, datetime.timedelta(seconds=120))

    async with clinic_transaction(engine, info(tenant)) as session:
        events = {
            e.payload["to"]: e
            for e in await session.scalars(
                select(OutboxEvent).where(OutboxEvent.kind == "account.password_reset")
            )
        }
    assert "token" not in events[emails[0]].payload
    assert "token" in events[emails[1]].payload
