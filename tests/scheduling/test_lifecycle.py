"""An appointment's life: every step from each state, who may take it, cancellation inside
and outside the policy's window, rescheduling that keeps the quota unit, and self check-in
with the signed code only around the appointment's time."""

from __future__ import annotations

import datetime
import uuid

import pytest
from sqlalchemy import Interval, literal, update
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.db.session import clinic_transaction
from polyclinic.scheduling.appointments.models import Appointment
from polyclinic.tenancy.resolver import tenant_info
from tests.billing.test_quota import counters
from tests.identity.conftest import ClinicApi
from tests.scheduling.conftest import Bookable, bookable, iso, local, user_token
from tests.scheduling.test_booking import ledger

STEPS = ("check-in", "start", "complete", "no-show", "cancel", "reschedule")
# Where each state can go; everything else is 409 naming the current state.
LEGAL = {
    "confirmed": {"check-in", "no-show", "cancel", "reschedule"},
    "checked_in": {"start"},
    "in_progress": {"complete"},
    "completed": set(),
    "cancelled": set(),
    "no_show": set(),
}
ROUTE_TO_STATE = {
    "reschedule": "confirmed",
    "check-in": "checked_in",
    "start": "in_progress",
    "complete": "completed",
    "no-show": "no_show",
    "cancel": "cancelled",
}
PATH_TO = {
    "confirmed": [],
    "checked_in": ["check-in"],
    "in_progress": ["check-in", "start"],
    "completed": ["check-in", "start", "complete"],
    "cancelled": ["cancel"],
    "no_show": ["no-show"],
}


async def shift(
    engine: AsyncEngine, clinic: ClinicApi, appointment_id: str, by: datetime.timedelta
) -> None:
    """Move an appointment in time behind the API's back (to stand where the clock would be)."""
    info = tenant_info(clinic.tenant)
    assert info is not None
    delta = literal(by, Interval())
    async with clinic_transaction(engine, info) as session:
        await session.execute(
            update(Appointment)
            .where(Appointment.id == uuid.UUID(appointment_id))
            .values(
                starts_at=Appointment.starts_at + delta,
                ends_at=Appointment.ends_at + delta,
                blocked_from=Appointment.blocked_from + delta,
                blocked_until=Appointment.blocked_until + delta,
            )
        )


async def in_state(desk: Bookable, engine: AsyncEngine, state: str, n: int) -> str:
    """The n-th appointment of a test (each at its own hour), brought to `state`."""
    appointment = await desk.booked(local(2 + n // 20, f"{1 + n % 20:02d}:00"))
    if state == "no_show":
        await shift(engine, desk.clinic, appointment["id"], datetime.timedelta(days=-6))
    for step in PATH_TO[state]:
        body = {"reason": "setting up"} if step == "cancel" else {}
        done = await desk.act(appointment["id"], step, desk.admin, **body)
        assert done.status_code == 200, done.text
    return appointment["id"]


async def test_every_step_from_every_state_is_taken_or_refused_with_the_current_state(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    desk = await bookable(clinic_a, engine, hours=("00:00", "23:45"))
    n = 0
    for state, legal in LEGAL.items():
        for step in STEPS:
            n += 1
            appointment_id = await in_state(desk, engine, state, n)
            if step == "no-show":
                await shift(engine, clinic_a, appointment_id, datetime.timedelta(days=-6))
            body: dict[str, str] = {"reason": "testing"} if step == "cancel" else {}
            if step == "reschedule":  # to a free time of its own
                body = {"startsAt": iso(local(9 + n // 20, f"{1 + n % 20:02d}:00"))}
            answer = await desk.act(appointment_id, step, desk.admin, **body)
            if step in legal:
                assert answer.status_code == 200, (state, step, answer.text)
                moved = answer.json()["data"]
                moved = moved[0] if isinstance(moved, list) else moved
                assert moved["status"] == ROUTE_TO_STATE[step]
            else:
                assert answer.status_code == 409, (state, step, answer.text)
                assert answer.json()["errors"] == [{"field": "status", "message": state}]


@pytest.mark.parametrize(
    ("step", "allowed"),
    [
        ("check-in", {"clinic_admin", "receptionist", "doctor", "nurse"}),
        ("start", {"clinic_admin", "doctor", "nurse"}),
        ("complete", {"clinic_admin", "doctor", "nurse"}),
        ("no-show", {"clinic_admin", "receptionist", "doctor", "nurse"}),
        ("cancel", {"clinic_admin", "receptionist", "doctor", "nurse", "patient"}),
        ("reschedule", {"clinic_admin", "receptionist", "patient"}),
    ],
)
async def test_each_step_belongs_to_its_roles(
    clinic_a: ClinicApi, engine: AsyncEngine, step: str, allowed: set[str]
) -> None:
    desk = await bookable(clinic_a, engine, hours=("00:00", "23:45"))
    before = {"check-in": "confirmed", "start": "checked_in", "complete": "in_progress"}
    roles = ["clinic_admin", "receptionist", "doctor", "nurse", "billing", "patient"]
    for index, role in enumerate(roles):
        appointment_id = await in_state(desk, engine, before.get(step, "confirmed"), index + 1)
        if step == "no-show":
            await shift(engine, clinic_a, appointment_id, datetime.timedelta(days=-6))
        # The doctor is the appointment's practitioner: a doctor steps only their own.
        own = {"patient": desk.patient, "doctor": desk.doctor}
        token = own.get(role) or (await user_token(clinic_a, engine, role))[1]
        body: dict[str, str] = {}
        if step == "cancel":
            body = {"reason": "roles"}
        if step == "reschedule":
            body = {"startsAt": iso(local(5, f"{index + 8:02d}:00"))}
        answer = await desk.act(appointment_id, step, token, **body)
        assert answer.status_code == (200 if role in allowed else 403), (role, answer.text)


async def test_no_show_only_once_the_appointment_has_begun(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    desk = await bookable(clinic_a, engine)
    appointment = await desk.booked(local(2, "10:00"))

    early = await desk.act(appointment["id"], "no-show", desk.reception)

    assert early.status_code == 409
    assert early.json()["errors"][0]["field"] == "startsAt"


async def test_a_timely_cancellation_gives_the_unit_back_and_a_late_one_does_not(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    desk = await bookable(clinic_a, engine, hours=("00:00", "23:45"))
    timely = await desk.booked(local(3, "10:00"))
    late = await desk.booked(local(3, "11:00"))
    # 24 hours' notice by default: bring the second one to within a few hours.
    await shift(
        engine,
        clinic_a,
        late["id"],
        datetime.datetime.now(datetime.UTC)
        + datetime.timedelta(hours=5)
        - datetime.datetime.fromisoformat(late["startsAt"]),
    )

    first = await desk.act(timely["id"], "cancel", desk.patient, reason="Feeling better")
    second = await desk.act(late["id"], "cancel", desk.patient, reason="Overslept")

    assert first.status_code == second.status_code == 200
    assert first.json()["data"][0]["cancelledBy"] == "patient"
    entries = await ledger(engine, clinic_a)
    assert sorted(kind for a, kind in entries if str(a) == timely["id"]) == ["consume", "release"]
    assert [kind for a, kind in entries if str(a) == late["id"]] == ["consume"]
    assert await counters(engine, clinic_a.tenant) == (1, 0, 1)
    history = await clinic_a.call("GET", f"/appointments/{late['id']}/history", desk.patient)
    cancelled = history.json()["data"][-1]
    assert cancelled["details"]["late"] is True
    assert cancelled["reason"] == "Overslept"


async def test_the_clinic_cancelling_late_still_gives_the_unit_back(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    desk = await bookable(clinic_a, engine, hours=("00:00", "23:45"))
    appointment = await desk.booked(local(3, "10:00"))
    await shift(engine, clinic_a, appointment["id"], datetime.timedelta(days=-3, hours=5))

    answer = await desk.act(appointment["id"], "cancel", desk.reception, reason="Doctor ill")

    assert answer.json()["data"][0]["cancelledBy"] == "clinic"
    assert await counters(engine, clinic_a.tenant) == (0, 0, 0)


async def test_a_cancelled_slot_can_be_booked_again(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    desk = await bookable(clinic_a, engine)
    first = await desk.booked(local(2, "10:00"))
    await desk.act(first["id"], "cancel", desk.patient, reason="Changed plans")

    again = await desk.book(local(2, "10:00"))

    assert again.status_code == 201


async def test_rescheduling_moves_the_booking_and_keeps_its_quota_unit(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    desk = await bookable(clinic_a, engine)
    appointment = await desk.booked(local(3, "10:00"))
    blocker = await desk.booked(
        local(3, "14:00"), token=desk.reception, patientId=str(desk.patient_id)
    )

    taken = await desk.act(
        appointment["id"], "reschedule", desk.patient, startsAt=blocker["startsAt"]
    )
    outside = await desk.act(
        appointment["id"], "reschedule", desk.patient, startsAt=iso(local(3, "19:00"))
    )
    moved = await desk.act(
        appointment["id"], "reschedule", desk.patient, startsAt=iso(local(4, "09:30"))
    )

    assert taken.status_code == 409
    assert outside.status_code == 422
    assert moved.status_code == 200, moved.text
    assert moved.json()["data"][0]["id"] == appointment["id"]
    assert moved.json()["data"][0]["startsAt"] == iso(local(4, "09:30"))
    assert await counters(engine, clinic_a.tenant) == (2, 0, 2)
    freed = await desk.book(local(3, "10:00"))
    assert freed.status_code == 201
    history = await clinic_a.call("GET", f"/appointments/{appointment['id']}/history", desk.patient)
    step = history.json()["data"][-1]
    assert step["action"] == "rescheduled"
    assert step["details"]["previousStartsAt"].startswith(iso(local(3, "10:00"))[:16])


async def test_patients_cannot_move_or_cancel_someone_elses_appointment(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    desk = await bookable(clinic_a, engine)
    appointment = await desk.booked(local(3, "10:00"))
    _, stranger = await user_token(clinic_a, engine, "patient")

    moved = await desk.act(
        appointment["id"], "reschedule", stranger, startsAt=iso(local(3, "11:00"))
    )
    cancelled = await desk.act(appointment["id"], "cancel", stranger, reason="mischief")

    assert moved.status_code == cancelled.status_code == 404


async def test_self_check_in_works_only_around_the_appointment_and_at_its_clinic(
    clinic_a: ClinicApi, clinic_b: ClinicApi, engine: AsyncEngine
) -> None:
    desk = await bookable(clinic_a, engine, hours=("00:00", "23:45"))
    appointment = await desk.booked(local(2, "10:00"))
    code = await clinic_a.call(
        "GET", f"/appointments/{appointment['id']}/check-in-code", desk.patient
    )
    token = code.json()["data"]["token"]

    too_early = await clinic_a.call("POST", "/appointments/check-in", json={"token": token})
    # Bring the appointment to 30 minutes from now and take a fresh code.
    now = datetime.datetime.now(datetime.UTC)
    await shift(
        engine,
        clinic_a,
        appointment["id"],
        now
        + datetime.timedelta(minutes=30)
        - datetime.datetime.fromisoformat(appointment["startsAt"]),
    )
    code = await clinic_a.call(
        "GET", f"/appointments/{appointment['id']}/check-in-code", desk.patient
    )
    token = code.json()["data"]["token"]
    elsewhere = await clinic_b.call("POST", "/appointments/check-in", json={"token": token})
    forged = await clinic_a.call(
        "POST", "/appointments/check-in", json={"token": token[:-4] + "AAAA"}
    )
    in_time = await clinic_a.call("POST", "/appointments/check-in", json={"token": token})
    twice = await clinic_a.call("POST", "/appointments/check-in", json={"token": token})
    assert too_early.status_code == 422
    assert elsewhere.status_code == 422
    assert forged.status_code == 422
    assert in_time.status_code == 200, in_time.text
    assert in_time.json()["data"]["status"] == "checked_in"
    assert twice.status_code == 409


async def test_a_check_in_code_stops_working_once_the_appointment_moves(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    desk = await bookable(clinic_a, engine, hours=("00:00", "23:45"))
    appointment = await desk.booked(local(2, "12:00"))
    now = datetime.datetime.now(datetime.UTC)
    starts = datetime.datetime.fromisoformat(appointment["startsAt"])
    await shift(engine, clinic_a, appointment["id"], now + datetime.timedelta(minutes=20) - starts)
    code = await clinic_a.call(
        "GET", f"/appointments/{appointment['id']}/check-in-code", desk.patient
    )
    await shift(engine, clinic_a, appointment["id"], datetime.timedelta(minutes=15))

    old_code = await clinic_a.call(
        "POST", "/appointments/check-in", json={"token": code.json()["data"]["token"]}
    )

    assert old_code.status_code == 422
    assert old_code.json()["errors"][0]["message"] == "is for another time"
