"""Booking: free slots, no double booking under concurrency, the plan's quota counted in the
same transaction, bad input refused with nothing written, and clinics kept apart."""

from __future__ import annotations

import asyncio
import datetime
import uuid

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.billing.models import OveragePolicy, QuotaEntry
from polyclinic.db.session import clinic_transaction, platform_session
from polyclinic.scheduling.appointments.models import Appointment, AppointmentTransition
from polyclinic.tenancy.resolver import tenant_info
from polyclinic.worker.outbox import OutboxEvent
from tests.billing.test_quota import counters, put_on_plan
from tests.identity.conftest import ClinicApi
from tests.scheduling.conftest import BERLIN, bookable, iso, local, user_token


async def rows(engine: AsyncEngine, clinic: ClinicApi, model: type) -> list:  # type: ignore[type-arg]
    info = tenant_info(clinic.tenant)
    assert info is not None
    async with clinic_transaction(engine, info) as session:
        return list(await session.scalars(select(model)))


async def ledger(engine: AsyncEngine, clinic: ClinicApi) -> list[tuple[uuid.UUID, str]]:
    async with platform_session(engine) as session:
        found = await session.execute(
            select(QuotaEntry.appointment_id, QuotaEntry.kind).where(
                QuotaEntry.tenant_id == clinic.tenant.id
            )
        )
        return [(row.appointment_id, row.kind) for row in found]


async def test_a_booked_slot_leaves_the_list_and_its_buffers_take_the_neighbours(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    desk = await bookable(clinic_a, engine, hours=("09:00", "11:00"), buffers=(0, 15))
    date = local(3, "12:00").astimezone(BERLIN).date()

    before = await desk.slots(date, date)
    starts = [s["localStartsAt"][11:16] for s in before.json()["data"]["slots"]]
    assert starts == ["09:00", "09:15", "09:30", "09:45", "10:00", "10:15", "10:30"]

    await desk.booked(local(3, "09:30"))

    after = await desk.slots(date, date)
    starts = [s["localStartsAt"][11:16] for s in after.json()["data"]["slots"]]
    # The booking holds 09:30-10:15 with its buffer. 09:00 would run to 09:30 and then need
    # its own 15 minutes after; 10:00 starts inside the booking's buffer.
    assert starts == ["10:15", "10:30"]
    assert after.json()["data"]["timezone"] == "Europe/Berlin"
    first = after.json()["data"]["slots"][0]
    assert first["startsAt"] == iso(local(3, "10:15"))


async def test_fifty_concurrent_bookings_of_one_slot_give_one_booking_and_one_quota_unit(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    desk = await bookable(clinic_a, engine)
    patients = [await user_token(clinic_a, engine, "patient") for _ in range(50)]
    slot = local(2, "10:00")

    answers = await asyncio.gather(*(desk.book(slot, token=token) for _, token in patients))

    codes = sorted(a.status_code for a in answers)
    assert codes == [201] + [409] * 49
    refused = next(a for a in answers if a.status_code == 409).json()
    assert refused["message"].startswith("This time is no longer free")
    booked = await rows(engine, clinic_a, Appointment)
    assert len(booked) == 1
    assert await ledger(engine, clinic_a) == [(booked[0].id, "consume")]
    assert await counters(engine, clinic_a.tenant) == (1, 0, 1)


async def test_bookings_beyond_a_blocking_quota_are_refused_and_write_nothing(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    desk = await bookable(clinic_a, engine)
    await put_on_plan(engine, clinic_a.tenant, included=2, policy=OveragePolicy.BLOCK)
    await desk.booked(local(2, "09:00"))
    await desk.booked(local(2, "09:30"))

    third = await desk.book(local(2, "10:00"))

    assert third.status_code == 402
    assert "used all 2 appointments" in third.json()["message"]
    assert len(await rows(engine, clinic_a, Appointment)) == 2
    assert await counters(engine, clinic_a.tenant) == (2, 0, 2)


async def test_bookings_beyond_a_charging_quota_go_through_as_overage(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    desk = await bookable(clinic_a, engine)
    await put_on_plan(engine, clinic_a.tenant, included=1, policy=OveragePolicy.CHARGE)
    await desk.booked(local(2, "09:00"))

    second = await desk.book(local(2, "09:30"))

    assert second.status_code == 201
    # (used, of which overage, units in the ledger)
    assert await counters(engine, clinic_a.tenant) == (2, 1, 2)


async def test_a_booking_writes_its_history_and_outbox_events_in_the_same_transaction(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    desk = await bookable(clinic_a, engine)
    appointment = await desk.booked(local(2, "11:00"), notes="Back pain")

    assert appointment["status"] == "confirmed"
    assert appointment["notes"] == "Back pain"
    history = await clinic_a.call("GET", f"/appointments/{appointment['id']}/history", desk.patient)
    assert [h["action"] for h in history.json()["data"]] == ["booked", "confirmed"]
    events = await rows(engine, clinic_a, OutboxEvent)
    assert sorted(e.kind for e in events) == [
        "appointment.booked",
        "appointment.confirmed",
        "appointment.reminder",
        "appointment.reminder",
    ]
    assert {e.payload["appointmentId"] for e in events} == {appointment["id"]}
    # The reminders wait for a day and an hour before the start, the clinic's defaults.
    starts = datetime.datetime.fromisoformat(appointment["startsAt"])
    reminders = sorted(e.due_at for e in events if e.kind == "appointment.reminder")
    assert reminders == [
        starts - datetime.timedelta(hours=24),
        starts - datetime.timedelta(hours=1),
    ]


async def test_bad_bookings_name_the_problem_and_write_nothing(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    desk = await bookable(clinic_a, engine, hours=("09:00", "12:00"))
    other_service = await clinic_a.call(
        "POST",
        "/services",
        desk.admin,
        json={
            "name": "Not offered",
            "durationMinutes": 30,
            "priceMinor": 0,
            "currency": "EUR",
            "mode": "in_person",
            "practitionerIds": [],
        },
    )
    someone_else, _ = await user_token(clinic_a, engine, "patient")
    cases = [
        (local(-1, "10:00"), {}, 422, "startsAt", "is in the past"),
        (local(2, "13:00"), {}, 422, "startsAt", "is not a bookable start time"),
        (local(2, "10:07"), {}, 422, "startsAt", "is not a bookable start time"),
        (local(200, "10:00"), {}, 422, "startsAt", "is too far ahead"),
        (
            local(2, "10:00"),
            {"serviceId": other_service.json()["data"]["id"]},
            422,
            "serviceId",
            "is not offered by this practitioner",
        ),
        (local(2, "10:00"), {"patientId": str(someone_else)}, 403, None, None),
        (local(2, "10:00"), {"practitionerId": str(uuid.uuid4())}, 422, "practitionerId", None),
    ]
    for starts_at, fields, status, field, problem in cases:
        answer = await desk.book(starts_at, **fields)
        assert answer.status_code == status, (fields, answer.text)
        if field:
            assert answer.json()["errors"][0]["field"] == field
        if problem:
            assert answer.json()["errors"][0]["message"] == problem

    soon = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=30)
    too_soon = await desk.book(soon.replace(second=0, microsecond=0))
    assert too_soon.status_code == 422

    assert await rows(engine, clinic_a, Appointment) == []
    assert await ledger(engine, clinic_a) == []


async def test_staff_book_for_a_patient_and_must_say_which(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    desk = await bookable(clinic_a, engine)

    missing = await desk.book(local(2, "09:00"), token=desk.reception)
    booked = await desk.book(
        local(2, "09:00"), token=desk.reception, patientId=str(desk.patient_id)
    )
    not_a_patient = await desk.book(
        local(2, "10:00"), token=desk.reception, patientId=str(uuid.uuid4())
    )

    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "patientId"
    assert booked.status_code == 201
    assert booked.json()["data"]["appointment"]["patientId"] == str(desk.patient_id)
    assert not_a_patient.status_code == 422


async def test_unverified_practitioners_cannot_be_booked(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    desk = await bookable(clinic_a, engine)
    await clinic_a.call(
        "PATCH", f"/practitioners/{desk.practitioner_id}", desk.admin, json={"isActive": False}
    )

    answer = await desk.book(local(2, "09:00"))

    assert answer.status_code == 422
    assert answer.json()["errors"][0]["message"] == "is not bookable"


async def test_a_follow_up_links_to_the_patients_earlier_appointment(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    desk = await bookable(clinic_a, engine)
    first = await desk.booked(local(2, "09:00"))
    _, stranger = await user_token(clinic_a, engine, "patient")

    follow_up = await desk.booked(local(9, "09:00"), parentId=first["id"])
    foreign = await desk.book(local(9, "10:00"), token=stranger, parentId=first["id"])

    assert follow_up["parentId"] == first["id"]
    assert foreign.status_code == 422
    assert foreign.json()["errors"][0]["field"] == "parentId"


async def test_patients_see_only_their_own_appointments_and_staff_see_the_day(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    desk = await bookable(clinic_a, engine)
    mine = await desk.booked(local(2, "09:00"))
    other_id, other = await user_token(clinic_a, engine, "patient")
    theirs = await desk.booked(local(2, "10:00"), token=other)
    await desk.booked(local(3, "10:00"), token=other)
    day = local(2, "12:00").astimezone(BERLIN).date()

    own = await clinic_a.call("GET", "/appointments", desk.patient)
    peek = await clinic_a.call("GET", f"/appointments/{theirs['id']}", desk.patient)
    day_view = await clinic_a.call("GET", f"/appointments?date={day}", desk.reception)
    week_view = await clinic_a.call("GET", f"/appointments?date={day}&view=week", desk.reception)
    by_patient = await clinic_a.call(
        "GET", f"/appointments?date={day}&patientId={other_id}", desk.reception
    )

    assert [a["id"] for a in own.json()["data"]] == [mine["id"]]
    assert peek.status_code == 404
    assert [a["id"] for a in day_view.json()["data"]] == [mine["id"], theirs["id"]]
    assert week_view.json()["meta"]["total"] >= 2
    assert [a["id"] for a in by_patient.json()["data"]] == [theirs["id"]]


async def test_two_clinics_with_the_same_ids_never_see_each_others_appointments(
    clinic_a: ClinicApi, clinic_b: ClinicApi, engine: AsyncEngine
) -> None:
    desk_a = await bookable(clinic_a, engine)
    desk_b = await bookable(clinic_b, engine)
    twin = uuid.uuid4()
    for clinic, desk in ((clinic_a, desk_a), (clinic_b, desk_b)):
        booked = await desk.booked(local(2, "09:00"))
        info = tenant_info(clinic.tenant)
        assert info is not None
        async with clinic_transaction(engine, info) as session:
            row = await session.get_one(Appointment, uuid.UUID(booked["id"]))
            await session.execute(
                delete(AppointmentTransition).where(AppointmentTransition.appointment_id == row.id)
            )
            await session.execute(
                Appointment.__table__.update()
                .where(Appointment.id == row.id)
                .values(id=twin, notes=f"in {clinic.tenant.slug}")
            )

    seen_a = await clinic_a.call("GET", f"/appointments/{twin}", desk_a.reception)
    seen_b = await clinic_b.call("GET", f"/appointments/{twin}", desk_b.reception)
    cancelled_in_b = await clinic_b.call(
        "POST", f"/appointments/{twin}/cancel", desk_b.reception, json={"reason": "test"}
    )
    again_a = await clinic_a.call("GET", f"/appointments/{twin}", desk_a.reception)
    cross = await clinic_b.call("GET", f"/appointments/{twin}", desk_a.reception)

    assert seen_a.json()["data"]["notes"] == f"in {clinic_a.tenant.slug}"
    assert seen_b.json()["data"]["notes"] == f"in {clinic_b.tenant.slug}"
    assert cancelled_in_b.status_code == 200
    assert again_a.json()["data"]["status"] == "confirmed"
    assert cross.status_code == 401  # a token of one clinic means nothing at another


async def test_bookings_reaching_80_and_100_percent_of_the_quota_each_send_one_event(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    desk = await bookable(clinic_a, engine)
    await put_on_plan(engine, clinic_a.tenant, included=5, policy=OveragePolicy.CHARGE)
    booked = [await desk.booked(local(2, f"{9 + n}:00")) for n in range(4)]
    await desk.act(booked[-1]["id"], "cancel", desk.patient, reason="Back under 80%")
    for n in range(4, 8):  # to 80% again, then 100%, then overage
        await desk.booked(local(2, f"{9 + n}:00"))

    events = [e for e in await rows(engine, clinic_a, OutboxEvent) if e.kind.startswith("billing.")]

    by_percent = {e.payload["percent"]: e for e in events}
    assert len(events) == 2
    assert sorted(by_percent) == [80, 100]
    assert by_percent[80].payload["used"] == 4
    assert by_percent[100].payload["used"] == 5
    assert all(e.payload["included"] == 5 and e.payload["plan"] == "Test plan" for e in events)
