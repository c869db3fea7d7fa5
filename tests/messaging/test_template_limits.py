"""Templates that cannot hurt: a template that reaches for other templates, fails, or would
make too much or run too long is refused with 422 naming its line, when saved and on preview;
one already stored fails its delivery with the reason at send time, and the rest goes out."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import dramatiq
import msgspec
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.config import Settings
from polyclinic.db.session import clinic_transaction
from polyclinic.messaging.delivery.services import DeliveryFailed, deliver
from polyclinic.messaging.templates.models import MessageTemplate
from polyclinic.messaging.templates.sandbox import MAX_OUTPUT
from polyclinic.tenancy.models import Tenant
from tests.billing.test_stripe_billing import admin_of
from tests.conftest import Client
from tests.identity.conftest import ClinicApi
from tests.messaging import delivery_kit
from tests.messaging.conftest import info
from tests.messaging.delivery_kit import (
    deliveries,
    event_id,
    mails_to,
    patient_email,
    ready,
    relay,
)
from tests.messaging.http_stand_in import HttpStandIn
from tests.messaging.smtp_stand_in import SmtpServer
from tests.messaging.test_faults import texting_clinic
from tests.messaging.twilio_stand_in import TwilioStandIn
from tests.scheduling.conftest import local

smtp_servers = delivery_kit.smtp_servers
channel_settings = delivery_kit.channel_settings
client = delivery_kit.client
clinics = delivery_kit.clinics
broker = delivery_kit.broker

PATH = "/messaging/templates/appointment_confirmation/email"
SUBJECT = "Confirmed at {{ clinic_name }}"

# (body, the line named, what the field's message starts with, words of the reason)
HARMFUL = [
    ("Hello {{ patient_name }},\n{% include 'header.txt' %}", 2, "is not allowed", "include"),
    ("{% import 'macros.txt' as m %}{{ m.hi() }}", 1, "is not allowed", "import"),
    ("{% extends 'base.txt' %}", 1, "is not allowed", "extends"),
    ("Hello {{ patient_name }},\n\nyou owe {{ 1/0 }}", 3, "fails", "division by zero"),
    ("{{ range(10**9)|list }}", 1, "is too large", "range"),
    ("{{ 'a' * 100000000 }}", 1, "is too large", "65536"),
    ("{{ 'a' * 10**9 }}", 1, "is too large", "65536"),
]

# More that would exhaust memory or time, each refused before it does.
ALSO_HARMFUL = [
    ("{{ '%100000000s' % patient_name }}", "is too large"),
    ("{{ '{:>100000000}'.format(patient_name) }}", "is too large"),
    ("{{ patient_name|center(1000000000) }}", "is too large"),
    ("{{ patient_name.center(1000000000) }}", "is not allowed"),
    ("{{ 2 ** (10**9) }}", "is too large"),
    ("{% set s = 'a' * 60000 %}{{ s|replace('a', s) }}", "is too large"),
    (
        "{% set ns = namespace(s='a' * 60000) %}"
        "{% for i in range(30) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
        "is too large",
    ),
    (
        "{% set ns = namespace(x=[1]) %}"
        "{% for i in range(60) %}{% set ns.x = [ns.x, ns.x] %}{% endfor %}{{ ns.x }}",
        "is too large",
    ),
    (
        "{% set s = 'a' * 60000 %}{% set x %}{% for i in range(10000) %}{{ s }}{% endfor %}"
        "{% endset %}{{ x|length }}",
        "is too large",
    ),
    ("{% for i in range(100) %}{{ 'a' * 1000 }}{% endfor %}", "is too large"),
    ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "fails"),
    ("{{ lipsum(1000000) }}", "names an unknown value"),
    ("{{ patient_name.__class__.__mro__ }}", "is not allowed"),
    (
        "{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}",
        "takes too long",
    ),
]


async def test_a_harmful_template_is_refused_when_saved_with_its_line_and_nothing_is_saved(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    token = await admin_of(clinic_a, engine)

    for body, line, problem, reason in HARMFUL:
        answer = await clinic_a.call("PUT", PATH, token, json={"subject": SUBJECT, "body": body})

        assert answer.status_code == 422, (body, answer.text)
        envelope = answer.json()
        assert envelope["success"] is False
        [error] = envelope["errors"]
        assert error["field"] == "body"
        assert error["message"].startswith(f"{problem} (line {line}): "), (body, error)
        assert reason in error["message"] and f"line {line}" in envelope["message"]

    current = await clinic_a.call("GET", PATH, token)
    assert current.json()["data"]["overridden"] is False


async def test_a_harmful_subject_is_refused_naming_the_subject(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    token = await admin_of(clinic_a, engine)

    answer = await clinic_a.call(
        "PUT", PATH, token, json={"subject": "{{ 'a' * 100000000 }}", "body": "Hello"}
    )

    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"] == "subject"


async def test_a_harmful_draft_is_refused_on_preview_with_its_line(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    token = await admin_of(clinic_a, engine)

    for body, line, problem, reason in HARMFUL:
        answer = await clinic_a.call(
            "POST", f"{PATH}/preview", token, json={"subject": SUBJECT, "body": body}
        )

        assert answer.status_code == 422, (body, answer.text)
        [error] = answer.json()["errors"]
        assert error["field"] == "body"
        assert error["message"].startswith(f"{problem} (line {line}): "), (body, error)
        assert reason in error["message"]


async def test_what_would_exhaust_memory_or_time_is_refused_on_preview(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    token = await admin_of(clinic_a, engine)

    for body, problem in ALSO_HARMFUL:
        answer = await clinic_a.call(
            "POST", f"{PATH}/preview", token, json={"subject": SUBJECT, "body": body}
        )

        assert answer.status_code == 422, (body, answer.text)
        [error] = answer.json()["errors"]
        assert error["field"] == "body"
        assert error["message"].startswith(problem), (body, error)


async def test_a_value_given_to_a_preview_counts_toward_the_size_of_the_message(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    token = await admin_of(clinic_a, engine)

    answer = await clinic_a.call(
        "POST",
        f"{PATH}/preview",
        token,
        json={"body": "{{ patient_name }}", "values": {"patient_name": "x" * (MAX_OUTPUT + 1)}},
    )

    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["message"].startswith("is too large")


async def test_a_normal_template_still_saves_and_renders(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    token = await admin_of(clinic_a, engine)
    body = (
        "{% macro line(label, value) %}{{ label }}: {{ value }}{% endmacro %}"
        "Hello {{ patient_name|title }},\n"
        "{{ line('When', starts_at) }}\n"
        "{% for word in service_name.split() %}{{ word|upper }}"
        "{% if not loop.last %}-{% endif %}{% endfor %}\n"
        "{{ '%s with %s' % (service_name, practitioner_name) }} {{ '{} x{}'.format('ok', 2) }}"
    )

    saved = await clinic_a.call("PUT", PATH, token, json={"subject": SUBJECT, "body": body})
    shown = await clinic_a.call("POST", f"{PATH}/preview", token, json={})

    assert saved.status_code == 200, saved.text
    assert shown.status_code == 200, shown.text
    assert shown.json()["data"] == {
        "subject": "Confirmed at Riverside Clinic",
        "body": "Hello Alex Morgan,\nWhen: Mon 1 Mar 2027, 10:30\nGENERAL-CONSULTATION"
        "General consultation with Dr Rivera ok x2",
    }


async def store_directly(engine: AsyncEngine, tenant: Tenant, body: str) -> None:
    """A template written before the limits existed: straight into the clinic's table."""
    async with clinic_transaction(engine, info(tenant)) as session:
        session.add(
            MessageTemplate(
                kind="appointment_confirmation",
                channel="email",
                locale="en",
                subject="Confirmed",
                body=body,
            )
        )


async def test_a_stored_template_failing_at_send_fails_its_delivery_and_the_rest_goes_out(
    client: Client,
    engine: AsyncEngine,
    channel_settings: Settings,
    clinics: tuple[Tenant, Tenant],
    smtp_servers: tuple[SmtpServer, SmtpServer],
) -> None:
    twilio = TwilioStandIn()
    sid, token = twilio.add_account()
    with HttpStandIn(twilio) as twilio_server:
        settings = msgspec.structs.replace(channel_settings, twilio_api_base=twilio_server.base)
        desk = await texting_clinic(client, engine, clinics[0], smtp_servers[0], sid, token)
        await store_directly(engine, clinics[0], "Hello\n{{ 'a' * 100000000 }}")
        await desk.booked(local(2, "10:30"))
        confirmed = await event_id(engine, clinics[0])

        with pytest.raises(DeliveryFailed):  # the job is retried later, as for any failure
            await deliver(engine, settings, info(clinics[0]), confirmed)

    email, sms = await deliveries(engine, clinics[0])
    assert (email.channel, email.status, email.attempts) == ("email", "failed", 1)
    assert email.last_error is not None
    assert "too large at line 2" in email.last_error and "65536" in email.last_error
    assert mails_to(smtp_servers[0], await patient_email(engine, desk)) == []
    assert (sms.channel, sms.status) == ("sms", "sent")
    [text] = twilio.messages
    assert "confirmed" in text.body

    listed = await desk.clinic.call("GET", "/messaging/deliveries?status=failed", desk.admin)
    assert [d["lastError"] for d in listed.json()["data"]] == [email.last_error]
    retried = await desk.clinic.call("POST", f"/messaging/deliveries/{email.id}/retry", desk.admin)
    assert retried.status_code == 200, retried.text
    assert (retried.json()["data"]["status"], retried.json()["data"]["attempts"]) == ("failed", 2)


async def until(check: Callable[[], Awaitable[bool]], what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


async def test_the_worker_lives_on_after_a_failing_template_and_delivers_the_next_event(
    client: Client,
    engine: AsyncEngine,
    clinics: tuple[Tenant, Tenant],
    smtp_servers: tuple[SmtpServer, SmtpServer],
    broker: dramatiq.Broker,
) -> None:
    failing, _ = await ready(clinics[0], client, engine, smtp_servers[0])
    working, _ = await ready(clinics[1], client, engine, smtp_servers[1])
    await store_directly(
        engine, clinics[0], "{% for a in range(10000) %}{{ 'x' * 60000 }}{% endfor %}"
    )
    await failing.booked(local(2, "09:30"))
    await relay(engine, clinics[0], broker)

    async def failed() -> bool:
        return [d.status for d in await deliveries(engine, clinics[0])] == ["failed"]

    await until(failed, "the delivery to fail")
    [delivery] = await deliveries(engine, clinics[0])
    assert delivery.last_error is not None and "too large" in delivery.last_error

    # The same worker goes on: the next event, another clinic's, is delivered.
    await working.booked(local(2, "09:30"))
    await relay(engine, clinics[1], broker)
    address = await patient_email(engine, working)

    async def sent() -> bool:
        return len(mails_to(smtp_servers[1], address)) == 1

    await until(sent, "the other clinic's confirmation")
    assert [d.status for d in await deliveries(engine, clinics[1])] == ["sent"]
