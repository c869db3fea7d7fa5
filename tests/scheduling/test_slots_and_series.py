"""Slots across both daylight-saving changes in a clinic's zone, recurring series booked all
or nothing, and one occurrence or the rest of a series cancelled or moved."""

from __future__ import annotations

import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.scheduling.appointments.models import Appointment
from tests.billing.test_quota import counters
from tests.identity.conftest import ClinicApi
from tests.scheduling.conftest import BERLIN, bookable, iso, local
from tests.scheduling.test_booking import ledger, rows

# Europe/Berlin: clocks go 02:00 -> 03:00 on 28 March 2027 and 03:00 -> 02:00 on 31 October.
SPRING = datetime.date(2027, 3, 28)
AUTUMN = datetime.date(2027, 10, 31)
NIGHT_SHIFT = {"slotGranularityMinutes": 60, "horizonDays": 730}


def times(answer: dict) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    return [(s["localStartsAt"], s["startsAt"]) for s in answer["data"]["slots"]]


async def test_spring_forward_has_no_slot_in_the_missing_hour(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    desk = await bookable(
        clinic_a, engine, hours=("00:00", "06:00"), duration=60, policy=NIGHT_SHIFT
    )

    night = await desk.slots(SPRING, SPRING)
    after = await desk.slots(
        SPRING + datetime.timedelta(days=1), SPRING + datetime.timedelta(days=1)
    )

    assert times(night.json()) == [
        ("2027-03-28T00:00:00+01:00", "2027-03-27T23:00:00Z"),
        ("2027-03-28T01:00:00+01:00", "2027-03-28T00:00:00Z"),
        ("2027-03-28T03:00:00+02:00", "2027-03-28T01:00:00Z"),
        ("2027-03-28T04:00:00+02:00", "2027-03-28T02:00:00Z"),
        ("2027-03-28T05:00:00+02:00", "2027-03-28T03:00:00Z"),
    ]
    assert times(after.json())[0] == ("2027-03-29T00:00:00+02:00", "2027-03-28T22:00:00Z")


async def test_fall_back_offers_the_repeated_hour_twice_and_each_can_be_booked(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    desk = await bookable(
        clinic_a, engine, hours=("00:00", "06:00"), duration=60, policy=NIGHT_SHIFT
    )

    night = await desk.slots(AUTUMN, AUTUMN)

    assert times(night.json()) == [
        ("2027-10-31T00:00:00+02:00", "2027-10-30T22:00:00Z"),
        ("2027-10-31T01:00:00+02:00", "2027-10-30T23:00:00Z"),
        ("2027-10-31T02:00:00+02:00", "2027-10-31T00:00:00Z"),
        ("2027-10-31T02:00:00+01:00", "2027-10-31T01:00:00Z"),
        ("2027-10-31T03:00:00+01:00", "2027-10-31T02:00:00Z"),
        ("2027-10-31T04:00:00+01:00", "2027-10-31T03:00:00Z"),
        ("2027-10-31T05:00:00+01:00", "2027-10-31T04:00:00Z"),
    ]
    first_two = await desk.booked(datetime.datetime(2027, 10, 31, 0, tzinfo=datetime.UTC))
    second_two = await desk.booked(datetime.datetime(2027, 10, 31, 1, tzinfo=datetime.UTC))
    assert first_two["localStartsAt"] == "2027-10-31T02:00:00+02:00"
    assert second_two["localStartsAt"] == "2027-10-31T02:00:00+01:00"
    left = [local_time for local_time, _ in times((await desk.slots(AUTUMN, AUTUMN)).json())]
    assert "2027-10-31T02:00:00+02:00" not in left
    assert "2027-10-31T02:00:00+01:00" not in left


async def test_time_off_and_extra_hours_shape_the_day(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    desk = await bookable(clinic_a, engine, hours=("09:00", "12:00"), duration=60)
    day = local(5, "12:00").astimezone(BERLIN).date()
    path = f"/practitioners/{desk.practitioner_id}/exceptions"
    for exception in (
        {"day": str(day), "kind": "off", "starts": "10:00", "ends": "11:00"},
        {"day": str(day), "kind": "extra", "starts": "15:00", "ends": "16:00"},
    ):
        made = await clinic_a.call("POST", path, desk.admin, json=exception)
        assert made.status_code == 201, made.text

    slots = await desk.slots(day, day)
    off_day = day + datetime.timedelta(days=1)
    await clinic_a.call("POST", path, desk.admin, json={"day": str(off_day), "kind": "off"})

    starts = [s["localStartsAt"][11:16] for s in slots.json()["data"]["slots"]]
    assert starts == ["09:00", "11:00", "15:00"]
    assert (await desk.slots(off_day, off_day)).json()["data"]["slots"] == []
    assert (await desk.book(local(5, "10:00"))).status_code == 422


async def test_a_malformed_range_is_refused(clinic_a: ClinicApi, engine: AsyncEngine) -> None:
    desk = await bookable(clinic_a, engine)
    today = datetime.date.today()

    backwards = await desk.slots(today, today - datetime.timedelta(days=1))
    too_long = await desk.slots(today, today + datetime.timedelta(days=90))
    not_a_date = await clinic_a.call(
        "GET",
        f"/slots?practitionerId={desk.practitioner_id}&serviceId={desk.service_id}"
        "&from=tomorrow&to=2027-01-01",
        desk.patient,
    )

    assert backwards.status_code == 422
    assert backwards.json()["errors"][0]["field"] == "to"
    assert too_long.status_code == 422
    assert not_a_date.status_code == 400  # the address itself is wrong
    assert not_a_date.json()["errors"][0]["field"] == "from"


async def test_a_weekly_series_keeps_its_wall_clock_time_across_the_change_of_clocks(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    desk = await bookable(clinic_a, engine, policy={"horizonDays": 730})

    answer = await desk.series("2027-03-15T08:00:00Z", 4)

    assert answer.status_code == 201, answer.text
    booked = answer.json()["data"]["appointments"]
    assert [a["localStartsAt"][11:] for a in booked] == ["09:00:00+01:00"] * 2 + [
        "09:00:00+02:00"
    ] * 2
    assert [a["startsAt"][11:16] for a in booked] == ["08:00", "08:00", "07:00", "07:00"]


async def test_a_series_with_one_taken_occurrence_books_nothing(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    desk = await bookable(clinic_a, engine)
    blocker = await desk.booked(local(16, "10:00"))
    before = await counters(engine, clinic_a.tenant)

    answer = await desk.series(
        iso(local(2, "10:00")), 12, token=desk.reception, patientId=str(desk.patient_id)
    )

    assert answer.status_code == 409
    assert answer.json()["message"].startswith("Occurrence 3 (")
    assert answer.json()["errors"] == [{"field": "occurrences[2]", "message": "is taken"}]
    assert [str(a.id) for a in await rows(engine, clinic_a, Appointment)] == [blocker["id"]]
    assert await counters(engine, clinic_a.tenant) == before


async def test_a_series_occurrence_outside_hours_or_by_card_is_refused(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    desk = await bookable(clinic_a, engine)
    start = local(2, "10:00")
    day_off = (start.astimezone(BERLIN) + datetime.timedelta(days=14)).date()
    await clinic_a.call(
        "POST",
        f"/practitioners/{desk.practitioner_id}/exceptions",
        desk.admin,
        json={"day": str(day_off), "kind": "off"},
    )
    body = {
        "practitionerId": desk.practitioner_id,
        "serviceId": desk.service_id,
        "startsAt": iso(start),
        "occurrences": 4,
    }

    off = await clinic_a.call("POST", "/appointments/series", desk.patient, json=body)
    card = await clinic_a.call(
        "POST", "/appointments/series", desk.patient, json={**body, "paymentMethod": "card"}
    )

    assert off.status_code == 422
    assert off.json()["errors"][0]["field"] == "occurrences[2]"
    assert card.status_code == 422  # a series is paid in clinic
    assert card.json()["errors"][0]["field"] == "paymentMethod"
    assert await rows(engine, clinic_a, Appointment) == []
    assert await ledger(engine, clinic_a) == []


async def test_the_rest_of_a_series_is_cancelled_or_moved_together(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    desk = await bookable(clinic_a, engine)
    made = await desk.series(iso(local(2, "10:00")), 6)
    series = made.json()["data"]["appointments"]
    blocker = await desk.booked(local(2 + 7 * 4, "11:00"))

    blocked_move = await desk.act(
        series[2]["id"],
        "reschedule",
        desk.patient,
        startsAt=iso(local(16, "11:00")),
        scope="following",
    )
    moved = await desk.act(
        series[2]["id"],
        "reschedule",
        desk.patient,
        startsAt=iso(local(16, "12:00")),
        scope="following",
    )
    one = await desk.act(series[0]["id"], "cancel", desk.patient, reason="Away")
    rest = await desk.act(
        series[4]["id"], "cancel", desk.patient, reason="Done with it", scope="following"
    )

    assert blocked_move.status_code == 409
    assert blocked_move.json()["errors"][0]["field"] == "startsAt"
    assert blocker["status"] == "confirmed"
    assert moved.status_code == 200, moved.text
    assert [a["localStartsAt"][11:16] for a in moved.json()["data"]] == ["12:00"] * 4
    assert [a["id"] for a in one.json()["data"]] == [series[0]["id"]]
    assert [a["id"] for a in rest.json()["data"]] == [series[4]["id"], series[5]["id"]]
    statuses = {a.id.hex: a.status for a in await rows(engine, clinic_a, Appointment)}
    assert [statuses[a["id"].replace("-", "")] for a in series] == [
        "cancelled",
        "confirmed",
        "confirmed",
        "confirmed",
        "cancelled",
        "cancelled",
    ]


async def test_the_rest_of_a_series_moves_a_week_on_over_its_own_occurrences(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    desk = await bookable(clinic_a, engine)
    made = await desk.series(iso(local(2, "10:00")), 4)
    series = made.json()["data"]["appointments"]

    later = await desk.act(
        series[1]["id"],
        "reschedule",
        desk.patient,
        startsAt=series[2]["startsAt"],
        scope="following",
    )
    earlier = await desk.act(
        series[1]["id"],
        "reschedule",
        desk.patient,
        startsAt=series[1]["startsAt"],
        scope="following",
    )

    assert later.status_code == 200, later.text
    assert sorted(a["startsAt"] for a in later.json()["data"]) == [
        iso(local(days, "10:00")) for days in (16, 23, 30)
    ]
    assert earlier.status_code == 200, earlier.text
    assert sorted(a["startsAt"] for a in earlier.json()["data"]) == [
        s["startsAt"] for s in series[1:]
    ]


async def test_moving_into_the_repeated_autumn_hour_keeps_the_instant_asked_for(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    desk = await bookable(
        clinic_a, engine, hours=("00:00", "06:00"), duration=60, policy=NIGHT_SHIFT
    )
    appointment = await desk.booked(datetime.datetime(2027, 10, 30, 23, tzinfo=datetime.UTC))

    moved = await desk.act(
        appointment["id"], "reschedule", desk.patient, startsAt="2027-10-31T01:00:00Z"
    )

    assert moved.status_code == 200, moved.text
    assert moved.json()["data"][0]["startsAt"] == "2027-10-31T01:00:00Z"
    assert moved.json()["data"][0]["localStartsAt"] == "2027-10-31T02:00:00+01:00"


async def test_times_without_an_offset_or_out_of_reach_are_refused(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    desk = await bookable(clinic_a, engine)
    appointment = await desk.booked(local(2, "10:00"))
    today = datetime.date.today()

    naive = await clinic_a.call(
        "POST",
        "/appointments",
        desk.patient,
        json={
            "practitionerId": desk.practitioner_id,
            "serviceId": desk.service_id,
            "startsAt": "2030-01-01T10:00:00",
            "paymentMethod": "in_clinic",
        },
    )
    naive_move = await desk.act(
        appointment["id"], "reschedule", desk.patient, startsAt="2030-01-01T10:00:00"
    )
    far_move = await desk.act(
        appointment["id"], "reschedule", desk.patient, startsAt="9999-12-31T23:30:00-05:00"
    )
    ancient = await desk.act(
        appointment["id"], "reschedule", desk.patient, startsAt="0001-01-01T00:10:00+01:00"
    )
    far_slots = await desk.slots(today, datetime.date(9999, 12, 31))

    assert naive.status_code == naive_move.status_code == 422
    assert naive.json()["errors"][0]["field"] == "startsAt"
    assert far_move.status_code == ancient.status_code == 422
    assert far_slots.status_code == 422
    assert far_slots.json()["errors"][0]["field"] == "to"
