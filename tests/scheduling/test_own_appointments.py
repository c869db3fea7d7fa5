"""Who steps whose appointments, as a matrix: every role, on its own appointment and on
another's, for every step. A doctor steps only the appointments they are the practitioner
of; clinic admins, receptionists and nurses step any their role allows; a patient cancels and
moves only what was booked for them. A refusal is 403 in the envelope (404 for a patient,
who cannot see others' appointments at all), and the appointment is as it was."""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.identity.conftest import ClinicApi
from tests.scheduling.conftest import Bookable, bookable, iso, local, user_token
from tests.scheduling.test_lifecycle import PATH_TO, shift

ROLES = ("clinic_admin", "receptionist", "nurse", "billing", "doctor", "patient")
# The state each step starts from.
BEFORE = {
    "check-in": "confirmed",
    "start": "checked_in",
    "complete": "in_progress",
    "no-show": "confirmed",
    "cancel": "confirmed",
    "reschedule": "confirmed",
}
AFTER = {
    "check-in": "checked_in",
    "start": "in_progress",
    "complete": "completed",
    "no-show": "no_show",
    "cancel": "cancelled",
    "reschedule": "confirmed",
}
# Who may take each step on any appointment, and who only on their own.
ANY = {
    "check-in": {"clinic_admin", "receptionist", "nurse"},
    "start": {"clinic_admin", "nurse"},
    "complete": {"clinic_admin", "nurse"},
    "no-show": {"clinic_admin", "receptionist", "nurse"},
    "cancel": {"clinic_admin", "receptionist", "nurse"},
    "reschedule": {"clinic_admin", "receptionist"},
}
OWN = {
    "check-in": {"doctor"},
    "start": {"doctor"},
    "complete": {"doctor"},
    "no-show": {"doctor"},
    "cancel": {"doctor", "patient"},
    "reschedule": {"patient"},
}


def expected(role: str, whose: str, step: str) -> int:
    if role in ANY[step] or (role in OWN[step] and whose == "own"):
        return 200
    if role == "patient" and role in OWN[step]:
        return 404  # another patient's appointment does not exist for them
    return 403


@dataclass
class Practice:
    """Two practitioners, each with a service and a patient: the acting doctor and patient
    hold the `own` side, someone else the `other`."""

    desk: Bookable
    other_practitioner: str
    other_service: str
    other_patient: uuid.UUID
    tokens: dict[str, str]


async def practice(clinic: ClinicApi, engine: AsyncEngine) -> Practice:
    desk = await bookable(clinic, engine, hours=("00:00", "23:45"))
    colleague_id, _ = await user_token(clinic, engine, "doctor")
    made = await clinic.call(
        "POST",
        "/practitioners",
        desk.admin,
        json={"userId": str(colleague_id), "specialty": "General practice"},
    )
    assert made.status_code == 201, made.text
    practitioner = made.json()["data"]["id"]
    assert (
        await clinic.call("POST", f"/practitioners/{practitioner}/verify", desk.admin)
    ).is_success
    week = [{"weekday": d, "starts": "00:00", "ends": "23:45"} for d in range(7)]
    hours = await clinic.call(
        "PUT", f"/practitioners/{practitioner}/hours", desk.admin, json={"hours": week}
    )
    assert hours.status_code == 200, hours.text
    service = await clinic.call(
        "POST",
        "/services",
        desk.admin,
        json={
            "name": f"Check-up {uuid.uuid4().hex[:6]}",
            "durationMinutes": 30,
            "priceMinor": 5000,
            "currency": "EUR",
            "mode": "in_person",
            "practitionerIds": [practitioner],
        },
    )
    assert service.status_code == 201, service.text
    other_patient, _ = await user_token(clinic, engine, "patient")
    tokens = {"doctor": desk.doctor, "patient": desk.patient, "clinic_admin": desk.admin}
    for role in ("receptionist", "nurse", "billing"):
        tokens[role] = (await user_token(clinic, engine, role))[1]
    return Practice(desk, practitioner, service.json()["data"]["id"], other_patient, tokens)


async def prepared(practice: Practice, engine: AsyncEngine, whose: str, state: str, n: int) -> str:
    """The n-th appointment of a test (each at its own time), in `state`."""
    desk = practice.desk
    fields: dict[str, object] = {"token": desk.admin, "patientId": str(desk.patient_id)}
    if whose == "other":
        fields.update(
            practitionerId=practice.other_practitioner,
            serviceId=practice.other_service,
            patientId=str(practice.other_patient),
        )
    appointment = await desk.booked(local(3 + n // 20, f"{2 + n % 20:02d}:00"), **fields)
    for step in PATH_TO[state]:
        done = await desk.act(appointment["id"], step, desk.admin)
        assert done.status_code == 200, done.text
    return appointment["id"]


async def snapshot(desk: Bookable, appointment_id: str) -> tuple[str, str, int]:
    one = await desk.clinic.call("GET", f"/appointments/{appointment_id}", desk.admin)
    steps = await desk.clinic.call("GET", f"/appointments/{appointment_id}/history", desk.admin)
    data = one.json()["data"]
    return data["status"], data["startsAt"], len(steps.json()["data"])


@pytest.mark.parametrize("step", list(BEFORE))
async def test_each_role_steps_its_own_or_any_appointment_as_the_matrix_says(
    clinic_a: ClinicApi, engine: AsyncEngine, step: str
) -> None:
    here = await practice(clinic_a, engine)
    desk = here.desk
    n = 0
    for role in ROLES:
        for whose in ("own", "other"):
            n += 1
            appointment_id = await prepared(here, engine, whose, BEFORE[step], n)
            if step == "no-show":  # once it has begun
                await shift(engine, clinic_a, appointment_id, datetime.timedelta(days=-6))
            body: dict[str, str] = {}
            if step == "cancel":
                body = {"reason": "matrix"}
            if step == "reschedule":
                body = {"startsAt": iso(local(10 + n // 20, f"{2 + n % 20:02d}:30"))}
            before = await snapshot(desk, appointment_id)

            answer = await desk.act(appointment_id, step, here.tokens[role], **body)

            want = expected(role, whose, step)
            case = (role, whose, step, answer.text)
            assert answer.status_code == want, case
            if want == 200:
                moved = answer.json()["data"]
                moved = moved[0] if isinstance(moved, list) else moved
                assert moved["status"] == AFTER[step], case
                continue
            body_out = answer.json()
            assert body_out["success"] is False and body_out["statusCode"] == want, case
            assert await snapshot(desk, appointment_id) == before, case


async def test_a_doctor_is_told_why_another_practitioners_appointment_is_refused(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    here = await practice(clinic_a, engine)
    appointment_id = await prepared(here, engine, "other", "confirmed", 1)

    answer = await here.desk.act(appointment_id, "check-in", here.desk.doctor)

    assert answer.status_code == 403
    assert "only your own appointments" in answer.json()["message"]
