"""Faults on the way out: a Redis of the test's own stopped and restarted while appointments
are booked, and a `polyclinic worker` process killed in the middle of a send. Nothing is lost
and nothing is sent twice."""

from __future__ import annotations

import asyncio
import datetime
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec
import pytest
import redis
from dramatiq import Worker
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.app import create_app
from polyclinic.billing.models import OveragePolicy
from polyclinic.config import Settings
from polyclinic.db.session import clinic_session, clinic_transaction
from polyclinic.identity.accounts.models import User
from polyclinic.messaging.delivery.jobs import relay_all
from polyclinic.messaging.delivery.models import Delivery
from polyclinic.messaging.delivery.services import deliver, local_time, relay_outbox
from polyclinic.tenancy.models import Tenant
from polyclinic.worker.broker import create_broker
from polyclinic.worker.outbox import OutboxEvent
from tests.billing.test_quota import put_on_plan
from tests.conftest import Client
from tests.messaging import delivery_kit
from tests.messaging.conftest import info
from tests.messaging.delivery_kit import LATER, event_id, mails_to, patient_email, ready, run_jobs
from tests.messaging.http_stand_in import HttpStandIn
from tests.messaging.smtp_stand_in import SmtpServer
from tests.messaging.twilio_stand_in import TwilioStandIn
from tests.scheduling.conftest import BERLIN, Bookable, local

smtp_servers = delivery_kit.smtp_servers
channel_settings = delivery_kit.channel_settings
clinics = delivery_kit.clinics
client = delivery_kit.client


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


NO_PERSISTENCE = ("--save", "", "--appendonly", "no")


class PrivateRedis:
    """A redis-server of the test's own, without persistence: stopped, it forgets its queues."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        assert binary is not None, "redis-server is needed for the fault tests"
        self.binary = binary
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", *NO_PERSISTENCE],
            stdout=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.05)
        client.close()

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    server.start()
    yield server
    server.stop()


async def eventually(check: Callable[[], Awaitable[bool]], what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


async def confirmations(engine: AsyncEngine, tenant: Tenant) -> list[Delivery]:
    async with clinic_transaction(engine, info(tenant)) as session:
        rows = await session.scalars(
            select(Delivery).where(Delivery.kind == "appointment_confirmation")
        )
        return list(rows)


def confirmation_times(server: SmtpServer, address: str) -> list[str]:
    return sorted(
        m.message.get_payload(decode=True).decode().split(" is confirmed for ")[1].split(".")[0]
        for m in mails_to(server, address)
        if "is confirmed" in str(m.message["Subject"])
    )


async def test_bookings_succeed_while_redis_is_down_and_each_message_goes_out_once_after(
    engine: AsyncEngine,
    channel_settings: Settings,
    clinics: tuple[Tenant, Tenant],
    smtp_servers: tuple[SmtpServer, SmtpServer],
    private_redis: PrivateRedis,
) -> None:
    settings = msgspec.structs.replace(
        channel_settings,
        redis_url=private_redis.url,
        redis_namespace=f"faults-{uuid.uuid4().hex[:8]}",
        outbox_relay_again_seconds=1,
    )
    app = create_app(settings)
    broker = create_broker(settings)
    app.state.runtime.broker = broker  # as at start-up: requests ask for their relay
    client = Client(app)
    worker = Worker(broker, worker_timeout=100, worker_threads=2)
    worker.start()
    try:
        server = smtp_servers[0]
        desk, _ = await ready(clinics[0], client, engine, server)
        address = await patient_email(engine, desk)
        times = [local(2, clock) for clock in ("09:00", "10:00", "11:00", "12:00")]

        # Redis up: the request's own relay delivers at once.
        await desk.booked(times[0])
        await run_jobs(broker)
        assert len(confirmation_times(server, address)) == 1

        # Relayed, its job in Redis, and Redis stops before a worker takes it: the job is lost.
        worker.pause()
        await desk.booked(times[1])
        async with clinic_session(engine, info(clinics[0])) as session:
            assert await relay_outbox(session, broker, again_after=LATER) == 2
        private_redis.stop()

        # Redis down: bookings go on.
        for starts in times[2:]:
            await desk.booked(starts)

        private_redis.start()
        worker.resume()
        await asyncio.sleep(1.2)  # past OUTBOX_RELAY_AGAIN_SECONDS
        for _ in range(2):  # the periodic relay, twice
            await relay_all(engine, broker, settings)
            await run_jobs(broker)

        expected = sorted(local_time(t.isoformat(), BERLIN) for t in times)
        assert confirmation_times(server, address) == expected  # each once
        sent = await confirmations(engine, clinics[0])
        assert [(d.status, d.attempts) for d in sent] == [("sent", 1)] * 4
    finally:
        worker.stop()
        broker.close()
        await client.http.aclose()
        await app.state.runtime.engine.dispose()


@dataclass
class StallingTwilio(TwilioStandIn):
    """Twilio that, once `stall` is set, takes the message and then keeps its answer back."""

    calls: list[str | None] = field(default_factory=list)
    stall: threading.Event = field(default_factory=threading.Event)
    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def handle(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, Any]:
        answer = super().handle(method, path, headers, body)
        self.calls.append(headers.get("i-twilio-idempotency-token"))
        if self.stall.is_set():
            self.arrived.set()
            self.release.wait(30)
        return answer


async def texting_clinic(
    client: Client, engine: AsyncEngine, tenant: Tenant, server: SmtpServer, sid: str, token: str
) -> Bookable:
    """A clinic ready to book, emailing through `server` and texting through Twilio account
    `sid`, whose patient has a phone number."""
    await put_on_plan(
        engine, tenant, included=None, policy=OveragePolicy.BLOCK, features={"sms": True}
    )
    desk, _ = await ready(tenant, client, engine, server)
    saved = await desk.clinic.call(
        "PUT",
        "/messaging/channels/sms",
        desk.admin,
        json={
            "provider": "twilio",
            "settings": {"accountSid": sid, "fromNumber": "+4930999000"},
            "secrets": {"authToken": token},
        },
    )
    assert saved.status_code == 200, saved.text
    async with clinic_transaction(engine, info(tenant)) as session:
        await session.execute(
            update(User).where(User.id == desk.patient_id).values(phone="+4930555000111")
        )
    return desk


def start_worker(settings: Settings, extra: dict[str, str]) -> subprocess.Popen[bytes]:
    """`polyclinic worker` in a process group of its own (dramatiq forks its workers)."""
    assert settings.messaging_master_key is not None
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "BASE_DOMAIN": settings.base_domain,
        "JWT_SIGNING_KEY": settings.jwt_signing_key,
        "MESSAGING_MASTER_KEY": settings.messaging_master_key,
        **extra,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "polyclinic.cli", "worker", "--processes", "1", "--threads", "2"],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def kill(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
    process.wait(30)


async def test_a_worker_killed_mid_send_never_has_the_provider_called_twice(
    client: Client,
    engine: AsyncEngine,
    channel_settings: Settings,
    clinics: tuple[Tenant, Tenant],
    smtp_servers: tuple[SmtpServer, SmtpServer],
    private_redis: PrivateRedis,
) -> None:
    twilio = StallingTwilio()
    sid, token = twilio.add_account()
    namespace = f"faults-{uuid.uuid4().hex[:8]}"
    with HttpStandIn(twilio) as twilio_server:
        settings = msgspec.structs.replace(
            channel_settings,
            redis_url=private_redis.url,
            redis_namespace=namespace,
            twilio_api_base=twilio_server.base,
        )
        worker_env = {
            "REDIS_URL": private_redis.url,
            "REDIS_NAMESPACE": namespace,
            "TWILIO_API_BASE": twilio_server.base,
            "DELIVERY_CLAIM_SECONDS": "2",
        }
        desk = await texting_clinic(client, engine, clinics[0], smtp_servers[0], sid, token)
        address = await patient_email(engine, desk)
        await desk.booked(local(2, "09:30"))

        broker = create_broker(settings)
        twilio.stall.set()
        first = start_worker(settings, worker_env)
        second: subprocess.Popen[bytes] | None = None
        try:
            # booked and confirmed
            async with clinic_session(engine, info(clinics[0])) as session:
                assert (
                    await relay_outbox(session, broker, again_after=LATER) == 2
                )  # booked, confirmed
            assert await asyncio.to_thread(twilio.arrived.wait, 60), "the SMS never left"
            kill(first, signal.SIGKILL)  # Twilio has the message; its answer never arrives
            twilio.stall.clear()
            twilio.release.set()

            [email, sms] = sorted(await confirmations(engine, clinics[0]), key=lambda d: d.channel)
            assert (email.status, sms.status) == ("sent", "sending")

            # Another worker; the event's job, never finished, is relayed again.
            second = start_worker(settings, worker_env)
            await asyncio.sleep(2.2)  # past DELIVERY_CLAIM_SECONDS
            async with clinic_session(engine, info(clinics[0])) as session:
                again = datetime.timedelta(seconds=1)
                assert await relay_outbox(session, broker, again_after=again) == 1

            async def settled() -> bool:
                async with clinic_transaction(engine, info(clinics[0])) as session:
                    event = await session.get_one(OutboxEvent, sms.outbox_event_id)
                    return event.finished_at is not None

            await eventually(settled, "the event's job to run again to its end")
        finally:
            kill(first, signal.SIGKILL)
            if second is not None:
                kill(second, signal.SIGKILL)
            broker.close()

    [email, sms] = sorted(await confirmations(engine, clinics[0]), key=lambda d: d.channel)
    assert twilio.calls == [str(sms.id)]  # called once, with the delivery's own key
    assert len(twilio.messages) == 1
    assert (sms.status, sms.attempts) == ("unconfirmed", 1)
    assert sms.reason is not None and "not sent again" in sms.reason
    assert (email.status, email.attempts) == ("sent", 1)
    assert len(mails_to(smtp_servers[0], address)) == 1

    listed = await desk.clinic.call("GET", "/messaging/deliveries?status=unconfirmed", desk.admin)
    assert [d["id"] for d in listed.json()["data"]] == [str(sms.id)]


@dataclass
class SilentTwilio(TwilioStandIn):
    """Twilio that takes the message and drops the connection without an answer."""

    calls: list[str | None] = field(default_factory=list)

    def handle(
        self, method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, Any]:
        super().handle(method, path, headers, body)
        self.calls.append(headers.get("i-twilio-idempotency-token"))
        raise ConnectionAbortedError("the answer is lost")


async def test_a_send_left_without_an_answer_is_unconfirmed_and_not_sent_again(
    client: Client,
    engine: AsyncEngine,
    channel_settings: Settings,
    clinics: tuple[Tenant, Tenant],
    smtp_servers: tuple[SmtpServer, SmtpServer],
) -> None:
    twilio = SilentTwilio()
    sid, token = twilio.add_account()
    with HttpStandIn(twilio) as twilio_server:
        settings = msgspec.structs.replace(channel_settings, twilio_api_base=twilio_server.base)
        desk = await texting_clinic(client, engine, clinics[0], smtp_servers[0], sid, token)
        await desk.booked(local(2, "10:30"))
        confirmed = await event_id(engine, clinics[0])
        for _ in range(2):  # the job, and the job again
            await deliver(engine, settings, info(clinics[0]), confirmed)

    [email, sms] = sorted(await confirmations(engine, clinics[0]), key=lambda d: d.channel)
    assert twilio.calls == [str(sms.id)]
    assert (sms.status, sms.attempts) == ("unconfirmed", 1)
    assert sms.last_error is not None and "gave no answer" in sms.last_error
    assert email.status == "sent"
