"""Paying by card through the Stripe stand-in: the clinic connects its account, a booking holds
its slot until the signed `payment_intent.succeeded` confirms it, an unpaid hold expires and
frees the slot, cancellations refund by the policy, and replayed webhooks change nothing."""

from __future__ import annotations

import asyncio
import datetime
import uuid
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.billing.quota import QuotaEngine
from polyclinic.config import Settings
from polyclinic.db.session import clinic_transaction
from polyclinic.payments.models import Payment
from polyclinic.scheduling.appointments.holds import expire_holds
from polyclinic.scheduling.appointments.jobs import sweep_holds
from polyclinic.scheduling.appointments.models import Appointment
from polyclinic.tenancy.resolver import tenant_info
from polyclinic.worker.outbox import OutboxEvent
from tests.billing.test_quota import counters
from tests.billing.test_stripe_webhooks import deliver
from tests.identity.conftest import ClinicApi
from tests.scheduling.conftest import BERLIN, Bookable, bookable, local, user_token
from tests.scheduling.test_booking import rows
from tests.scheduling.test_lifecycle import shift
from tests.stripe_stand_in import StripeStandIn


async def connected(clinic: ClinicApi, engine: AsyncEngine, stripe: StripeStandIn) -> Bookable:
    desk = await bookable(clinic, engine, price=5000)
    connect = await clinic.call("POST", "/payments/connect", desk.admin)
    assert connect.status_code == 200, connect.text
    account = connect.json()["data"]["stripeAccountId"]
    assert connect.json()["data"]["onboardingUrl"].endswith(account)
    await deliver(clinic.client, stripe.account_ready(account))
    return desk


def intent_of(stripe: StripeStandIn, appointment_id: str) -> dict[str, Any]:
    [intent] = stripe.payment_intents_for("appointment_id", appointment_id)
    return intent


async def payment_row(engine: AsyncEngine, clinic: ClinicApi, appointment_id: str) -> Payment:
    info = tenant_info(clinic.tenant)
    assert info is not None
    async with clinic_transaction(engine, info) as session:
        return (
            await session.scalars(
                select(Payment).where(Payment.appointment_id == uuid.UUID(appointment_id))
            )
        ).one()


async def expire(engine: AsyncEngine, clinic: ClinicApi, appointment_id: str) -> None:
    info = tenant_info(clinic.tenant)
    assert info is not None
    async with clinic_transaction(engine, info) as session:
        await session.execute(
            update(Appointment)
            .where(Appointment.id == uuid.UUID(appointment_id))
            .values(
                hold_expires_at=datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=1)
            )
        )


async def test_a_clinic_takes_cards_only_once_stripe_says_its_account_is_ready(
    clinic_a: ClinicApi, engine: AsyncEngine, stripe: StripeStandIn
) -> None:
    desk = await bookable(clinic_a, engine)
    before = await desk.book(local(2, "10:00"), paymentMethod="card")
    connect = await clinic_a.call("POST", "/payments/connect", desk.admin)
    account = connect.json()["data"]["stripeAccountId"]
    pending = await desk.book(local(2, "10:00"), paymentMethod="card")
    again = await clinic_a.call("POST", "/payments/connect", desk.admin)

    await deliver(clinic_a.client, stripe.account_ready(account))
    status = await clinic_a.call("GET", "/payments/account", desk.admin)
    ready = await desk.book(local(2, "10:00"), paymentMethod="card")

    assert before.status_code == pending.status_code == 409
    assert before.json()["errors"][0]["field"] == "paymentMethod"
    assert again.json()["data"]["stripeAccountId"] == account  # one account per clinic
    assert status.json()["data"]["chargesEnabled"] is True
    assert ready.status_code == 201, ready.text


async def test_a_card_booking_holds_the_slot_until_the_signed_payment_confirms_it(
    clinic_a: ClinicApi, engine: AsyncEngine, stripe: StripeStandIn, settings: Settings
) -> None:
    desk = await connected(clinic_a, engine, stripe)

    answer = await desk.book(local(2, "10:00"), paymentMethod="card")
    held = answer.json()["data"]
    appointment_id = held["appointment"]["id"]
    intent = intent_of(stripe, appointment_id)
    competitor = await desk.book(
        local(2, "10:00"), token=desk.reception, patientId=str(desk.patient_id)
    )

    assert answer.status_code == 201, answer.text
    assert held["appointment"]["status"] == "pending_payment"
    assert held["payment"]["clientSecret"] == intent["client_secret"]
    assert intent["amount"] == 5000
    assert intent["application_fee_amount"] == 5000 * settings.platform_fee_basis_points // 10_000
    assert intent["transfer_data"]["destination"].startswith("acct_")
    assert competitor.status_code == 409

    paid = stripe.pay(intent["id"])
    for _ in range(3):  # Stripe may deliver an event more than once
        await deliver(clinic_a.client, paid)

    confirmed = await clinic_a.call("GET", f"/appointments/{appointment_id}", desk.patient)
    history = await clinic_a.call("GET", f"/appointments/{appointment_id}/history", desk.patient)
    assert confirmed.json()["data"]["status"] == "confirmed"
    assert confirmed.json()["data"]["holdExpiresAt"] is None
    assert [h["action"] for h in history.json()["data"]] == ["booked", "confirmed"]
    assert (await payment_row(engine, clinic_a, appointment_id)).status == "succeeded"
    kinds = sorted(e.kind for e in await rows(engine, clinic_a, OutboxEvent))
    # Reminders are written once the payment confirms the booking, once for all replays.
    assert kinds == [
        "appointment.booked",
        "appointment.confirmed",
        "appointment.reminder",
        "appointment.reminder",
    ]


async def test_an_unpaid_hold_expires_frees_the_slot_and_gives_the_unit_back(
    clinic_a: ClinicApi, engine: AsyncEngine, stripe: StripeStandIn, settings: Settings
) -> None:
    desk = await connected(clinic_a, engine, stripe)
    held = (await desk.book(local(2, "10:00"), paymentMethod="card")).json()["data"]
    appointment_id = held["appointment"]["id"]
    await expire(engine, clinic_a, appointment_id)

    expired, settled = await sweep_holds(engine, settings)

    assert expired >= 1 and settled >= 1
    answer = await clinic_a.call("GET", f"/appointments/{appointment_id}", desk.patient)
    assert answer.json()["data"]["status"] == "cancelled"
    assert answer.json()["data"]["cancelledBy"] == "system"
    assert intent_of(stripe, appointment_id)["status"] == "canceled"
    assert (await payment_row(engine, clinic_a, appointment_id)).status == "canceled"
    assert await counters(engine, clinic_a.tenant) == (0, 0, 0)
    assert (await desk.book(local(2, "10:00"))).status_code == 201


async def test_an_expired_hold_never_blocks_a_new_booking_even_before_the_sweep(
    clinic_a: ClinicApi, engine: AsyncEngine, stripe: StripeStandIn
) -> None:
    desk = await connected(clinic_a, engine, stripe)
    held = (await desk.book(local(2, "10:00"), paymentMethod="card")).json()["data"]
    await expire(engine, clinic_a, held["appointment"]["id"])

    date = local(2, "10:00").astimezone(BERLIN).date()
    offered = await desk.slots(date, date)
    rebooked = await desk.book(
        local(2, "10:00"), token=desk.reception, patientId=str(desk.patient_id)
    )

    assert rebooked.status_code == 201, rebooked.text
    assert any(
        s["startsAt"].startswith(local(2, "10:00").strftime("%Y-%m-%dT%H:%M"))
        for s in offered.json()["data"]["slots"]
    )
    assert await counters(engine, clinic_a.tenant) == (1, 0, 1)


async def test_a_payment_arriving_after_the_hold_expired_is_refunded(
    clinic_a: ClinicApi, engine: AsyncEngine, stripe: StripeStandIn, settings: Settings
) -> None:
    desk = await connected(clinic_a, engine, stripe)
    held = (await desk.book(local(2, "10:00"), paymentMethod="card")).json()["data"]
    appointment_id = held["appointment"]["id"]
    intent = intent_of(stripe, appointment_id)
    await expire(engine, clinic_a, appointment_id)
    info = tenant_info(clinic_a.tenant)
    assert info is not None
    async with clinic_transaction(engine, info) as session:
        # The hold expires here, and the patient pays before its intent is cancelled.
        await expire_holds(
            session, QuotaEngine(session, info.id, 7), datetime.datetime.now(datetime.UTC)
        )
    await deliver(clinic_a.client, stripe.pay(intent["id"]))

    payment = await payment_row(engine, clinic_a, appointment_id)
    assert payment.status == "refunded"
    assert payment.refunded_minor == 5000
    assert (
        stripe.payment_intents_for("appointment_id", appointment_id)[0]["amount_refunded"] == 5000
    )
    answer = await clinic_a.call("GET", f"/appointments/{appointment_id}", desk.patient)
    assert answer.json()["data"]["status"] == "cancelled"


async def test_cancelling_a_paid_booking_refunds_inside_the_window_and_not_after(
    clinic_a: ClinicApi, engine: AsyncEngine, stripe: StripeStandIn
) -> None:
    desk = await connected(clinic_a, engine, stripe)
    ids = []
    for clock in ("10:00", "11:00"):
        held = (await desk.book(local(3, clock), paymentMethod="card")).json()["data"]
        ids.append(held["appointment"]["id"])
        await deliver(clinic_a.client, stripe.pay(intent_of(stripe, ids[-1])["id"]))
    timely, late = ids
    late_start = (await clinic_a.call("GET", f"/appointments/{late}", desk.patient)).json()
    soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=5)
    await shift(
        engine,
        clinic_a,
        late,
        soon - datetime.datetime.fromisoformat(late_start["data"]["startsAt"]),
    )

    first = await desk.act(timely, "cancel", desk.patient, reason="Feeling better")
    second = await desk.act(late, "cancel", desk.patient, reason="Too late to ask")

    assert first.status_code == second.status_code == 200
    refunded = await payment_row(engine, clinic_a, timely)
    kept = await payment_row(engine, clinic_a, late)
    assert (refunded.status, refunded.refunded_minor) == ("refunded", 5000)
    assert refunded.stripe_refund_id is not None
    assert (kept.status, kept.refunded_minor) == ("succeeded", 0)
    assert intent_of(stripe, late)["amount_refunded"] == 0


async def test_when_stripe_refuses_the_payment_nothing_is_left_behind(
    clinic_a: ClinicApi, engine: AsyncEngine, stripe: StripeStandIn
) -> None:
    desk = await connected(clinic_a, engine, stripe)
    stripe.refuse_next = "Card payments are paused for this account"

    answer = await desk.book(local(2, "10:00"), paymentMethod="card")

    assert answer.status_code == 502
    assert "Card payments are paused" in answer.json()["message"]
    assert await rows(engine, clinic_a, Appointment) == []
    assert await rows(engine, clinic_a, Payment) == []
    assert (await counters(engine, clinic_a.tenant))[2] == 0
    assert (await desk.book(local(2, "10:00"), paymentMethod="card")).status_code == 201


async def test_a_free_service_cannot_be_paid_by_card(
    clinic_a: ClinicApi, engine: AsyncEngine, stripe: StripeStandIn
) -> None:
    desk = await bookable(clinic_a, engine, price=0)

    answer = await desk.book(local(2, "10:00"), paymentMethod="card")

    assert answer.status_code == 422
    assert stripe.payment_intents_for("tenant_id", str(clinic_a.tenant.id)) == []


async def test_concurrent_bookings_over_an_expired_hold_give_one_booking_and_no_error(
    clinic_a: ClinicApi, engine: AsyncEngine, stripe: StripeStandIn
) -> None:
    desk = await connected(clinic_a, engine, stripe)
    held = (await desk.book(local(2, "10:00"), paymentMethod="card")).json()["data"]
    await expire(engine, clinic_a, held["appointment"]["id"])
    patients = [await user_token(clinic_a, engine, "patient") for _ in range(12)]

    answers = await asyncio.gather(
        *(desk.book(local(2, "10:00"), token=token) for _, token in patients)
    )

    assert sorted(a.status_code for a in answers) == [201] + [409] * 11
    assert await counters(engine, clinic_a.tenant) == (1, 0, 1)


async def test_a_hold_cannot_be_checked_in_started_completed_or_missed_only_cancelled(
    clinic_a: ClinicApi, engine: AsyncEngine, stripe: StripeStandIn
) -> None:
    desk = await connected(clinic_a, engine, stripe)
    held = (await desk.book(local(3, "10:00"), paymentMethod="card")).json()["data"]
    appointment_id = held["appointment"]["id"]

    refused = [
        await desk.act(appointment_id, step, desk.admin)
        for step in ("check-in", "start", "complete", "no-show")
    ]
    await shift(engine, clinic_a, appointment_id, datetime.timedelta(days=-3, hours=2))
    # A patient dropping an unpaid hold, even late, gets the unit back.
    dropped = await desk.act(appointment_id, "cancel", desk.patient, reason="Changed my mind")

    assert [r.status_code for r in refused] == [409] * 4
    assert {r.json()["errors"][0]["message"] for r in refused} == {"pending_payment"}
    assert dropped.status_code == 200
    assert await counters(engine, clinic_a.tenant) == (0, 0, 0)
    assert intent_of(stripe, appointment_id)["status"] == "canceled"


async def test_a_refund_stripe_refuses_is_made_by_a_later_sweep_and_others_go_on(
    clinic_a: ClinicApi, engine: AsyncEngine, stripe: StripeStandIn, settings: Settings
) -> None:
    desk = await connected(clinic_a, engine, stripe)
    ids = []
    for clock in ("10:00", "11:00"):
        held = (await desk.book(local(3, clock), paymentMethod="card")).json()["data"]
        ids.append(held["appointment"]["id"])
        await deliver(clinic_a.client, stripe.pay(intent_of(stripe, ids[-1])["id"]))
    stripe.refuse_next = "Stripe is briefly unavailable"

    cancelled = await desk.act(ids[0], "cancel", desk.reception, reason="Doctor away")
    await desk.act(ids[1], "cancel", desk.reception, reason="Doctor away")
    waiting = await payment_row(engine, clinic_a, ids[0])
    done = await payment_row(engine, clinic_a, ids[1])
    await sweep_holds(engine, settings)
    later = await payment_row(engine, clinic_a, ids[0])

    assert cancelled.status_code == 200
    assert waiting.status == "refund_pending"
    assert done.status == "refunded"
    assert later.status == "refunded"
    assert intent_of(stripe, ids[0])["amount_refunded"] == 5000


async def test_money_for_an_intent_no_booking_recorded_goes_back(
    clinic_a: ClinicApi, engine: AsyncEngine, stripe: StripeStandIn
) -> None:
    desk = await connected(clinic_a, engine, stripe)
    held = (await desk.book(local(2, "10:00"), paymentMethod="card")).json()["data"]
    appointment_id = held["appointment"]["id"]
    info = tenant_info(clinic_a.tenant)
    assert info is not None
    async with clinic_transaction(engine, info) as session:
        # As if the intent's answer had been lost and the hold withdrawn.
        await session.execute(
            delete(Payment).where(Payment.appointment_id == uuid.UUID(appointment_id))
        )

    await deliver(clinic_a.client, stripe.pay(intent_of(stripe, appointment_id)["id"]))

    assert intent_of(stripe, appointment_id)["amount_refunded"] == 5000
