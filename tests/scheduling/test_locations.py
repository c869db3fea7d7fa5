"""Rooms and sites: a service that needs one is bookable only while it is open, and the
room holds one appointment at a time whoever the practitioner is."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from tests.identity.conftest import ClinicApi
from tests.scheduling.conftest import BERLIN, bookable, local, user_token


async def test_a_room_is_booked_within_its_hours_and_never_twice_at_once(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    desk = await bookable(clinic_a, engine, hours=("08:00", "18:00"), duration=60)
    room = await clinic_a.call(
        "POST", "/locations", desk.admin, json={"name": "Ultrasound room", "kind": "room"}
    )
    room_id = room.json()["data"]["id"]
    week = [{"weekday": d, "starts": "09:00", "ends": "12:00"} for d in range(7)]
    opened = await clinic_a.call(
        "PUT", f"/locations/{room_id}/hours", desk.admin, json={"hours": week}
    )
    second_doctor, _ = await user_token(clinic_a, engine, "doctor")
    second = await clinic_a.call(
        "POST",
        "/practitioners",
        desk.admin,
        json={"userId": str(second_doctor), "specialty": "Radiology"},
    )
    second_id = second.json()["data"]["id"]
    await clinic_a.call("POST", f"/practitioners/{second_id}/verify", desk.admin)
    await clinic_a.call(
        "PUT",
        f"/practitioners/{second_id}/hours",
        desk.admin,
        json={"hours": [{"weekday": d, "starts": "08:00", "ends": "18:00"} for d in range(7)]},
    )
    changed = await clinic_a.call(
        "PATCH",
        f"/services/{desk.service_id}",
        desk.admin,
        json={"locationId": room_id, "practitionerIds": [desk.practitioner_id, second_id]},
    )
    day = local(3, "12:00").astimezone(BERLIN).date()

    offered = await desk.slots(day, day)
    first = await desk.book(local(3, "10:00"))
    same_room = await desk.book(local(3, "10:00"), practitionerId=second_id)
    after = await clinic_a.call(
        "GET",
        f"/slots?practitionerId={second_id}&serviceId={desk.service_id}&from={day}&to={day}",
        desk.patient,
    )
    outside = await desk.book(local(3, "14:00"), practitionerId=second_id)

    assert opened.status_code == changed.status_code == 200
    assert changed.json()["data"]["locationId"] == room_id
    starts = [s["localStartsAt"][11:16] for s in offered.json()["data"]["slots"]]
    assert starts[0] == "09:00" and starts[-1] == "11:00"
    assert first.status_code == 201
    assert first.json()["data"]["appointment"]["id"]
    assert same_room.status_code == 409
    left = [s["localStartsAt"][11:16] for s in after.json()["data"]["slots"]]
    assert "10:00" not in left and "09:00" in left and "11:00" in left
    assert outside.status_code == 422


async def test_a_closed_or_unknown_location_cannot_be_booked_or_chosen(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    desk = await bookable(clinic_a, engine)
    site = await clinic_a.call(
        "POST",
        "/locations",
        desk.admin,
        json={"name": "North site", "kind": "site", "address": "1 North Road"},
    )
    site_id = site.json()["data"]["id"]
    await clinic_a.call(
        "PUT",
        f"/locations/{site_id}/hours",
        desk.admin,
        json={"hours": [{"weekday": d, "starts": "08:00", "ends": "18:00"} for d in range(7)]},
    )
    await clinic_a.call(
        "PATCH", f"/services/{desk.service_id}", desk.admin, json={"locationId": site_id}
    )
    await clinic_a.call("PATCH", f"/locations/{site_id}", desk.admin, json={"isActive": False})

    closed = await desk.book(local(2, "10:00"))
    unknown = await clinic_a.call(
        "PATCH",
        f"/services/{desk.service_id}",
        desk.admin,
        json={"locationId": "00000000-0000-4000-8000-000000000000"},
    )
    duplicate = await clinic_a.call(
        "POST", "/locations", desk.admin, json={"name": "North site", "kind": "site"}
    )
    by_patient = await clinic_a.call("GET", "/locations", desk.patient)
    patient_adds = await clinic_a.call(
        "POST", "/locations", desk.patient, json={"name": "Mine", "kind": "room"}
    )

    assert closed.status_code == 422
    assert closed.json()["errors"][0]["field"] == "serviceId"
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "locationId"
    assert duplicate.status_code == 409
    assert by_patient.json()["data"] == []
    assert patient_adds.status_code == 403
