"""Merging two records of one person: appointments follow the survivor, the duplicate is kept
pointing at it, and the merges that would lose an account are refused."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

import polyclinic.models  # noqa: F401  (every table)
from polyclinic.chart.patients.merge import FOLLOW_SURVIVOR, KEPT_ON_MERGE
from polyclinic.db.base import tenant_metadata
from polyclinic.db.session import clinic_transaction
from polyclinic.scheduling.appointments.models import Appointment
from polyclinic.tenancy.models import Tenant
from polyclinic.tenancy.resolver import tenant_info
from tests.chart.test_patients import WALK_IN, add_patient, register, token_for
from tests.identity.conftest import ClinicApi
from tests.scheduling.conftest import bookable, local


async def appointments_of(engine: AsyncEngine, tenant: Tenant, patient_id: str | uuid.UUID) -> int:
    info = tenant_info(tenant)
    assert info is not None
    async with clinic_transaction(engine, info) as session:
        count = await session.scalar(
            select(func.count()).where(Appointment.patient_id == uuid.UUID(str(patient_id)))
        )
    return int(count or 0)


def test_every_patient_column_moves_or_stays_on_purpose() -> None:
    """A clinic table with a `patient_id` must say what a merge does with it: follow the
    survivor (`follow_survivor`) or stay with the duplicate (`KEPT_ON_MERGE`)."""
    decided = {f"{c.table.name}.{c.key}" for c in FOLLOW_SURVIVOR} | KEPT_ON_MERGE
    undecided = [
        f"{table.name}.{column.key}"
        for table in tenant_metadata.tables.values()
        for column in table.columns
        if column.key == "patient_id" and f"{table.name}.{column.key}" not in decided
    ]
    assert undecided == []
    assert "appointments.patient_id" in decided


async def test_a_duplicate_merges_into_the_survivor(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    clinic = await bookable(clinic_a, engine)
    # The survivor registered themselves (has an account); the desk made a second record of
    # the same person for a phone booking.
    survivor = str(clinic.patient_id)
    duplicate = await register(clinic_a, clinic.reception, email="phone.booking@x.example")
    moved = await clinic.booked(
        local(2, "09:00"), token=clinic.reception, patientId=duplicate["id"]
    )
    await clinic.booked(local(3, "09:00"), token=clinic.reception, patientId=duplicate["id"])
    await clinic.booked(local(4, "09:00"))  # the survivor's own
    # An earlier duplicate already merged into this one follows it too.
    older = await register(clinic_a, clinic.reception, firstName="Old")
    first = await clinic_a.call(
        "POST",
        f"/patients/{duplicate['id']}/merge",
        clinic.reception,
        json={"duplicateId": older["id"]},
    )
    assert first.status_code == 200, first.text

    merged = await clinic_a.call(
        "POST",
        f"/patients/{survivor}/merge",
        clinic.reception,
        json={"duplicateId": duplicate["id"]},
    )
    assert merged.status_code == 200, merged.text
    data = merged.json()["data"]
    assert data["id"] == survivor and data["hasAccount"] is True
    # The survivor's blanks are filled from the duplicate; its own sign-in email stays.
    assert data["insurance"] == WALK_IN["insurance"] and data["address"]["city"] == "Graz"
    assert data["dateOfBirth"] == "1984-03-02" and data["email"].endswith("@example.com")
    assert await appointments_of(engine, clinic_a.tenant, survivor) == 3
    assert await appointments_of(engine, clinic_a.tenant, duplicate["id"]) == 0

    # The duplicate is kept, inactive, pointing at the survivor, and no longer listed.
    gone = (await clinic_a.call("GET", f"/patients/{duplicate['id']}", clinic.reception)).json()[
        "data"
    ]
    assert gone["mergedIntoId"] == survivor and gone["isActive"] is False
    assert gone["email"] is None  # kept in the merge's record, so it can be used again
    older_now = (await clinic_a.call("GET", f"/patients/{older['id']}", clinic.reception)).json()
    assert older_now["data"]["mergedIntoId"] == survivor
    listed = (await clinic_a.call("GET", "/patients?q=morgan", clinic.reception)).json()["data"]
    assert duplicate["id"] not in [p["id"] for p in listed]
    # Nothing more is done to it: no changes, no bookings, no invitation.
    changed = await clinic_a.call(
        "PATCH", f"/patients/{duplicate['id']}", clinic.reception, json={"phone": "+1 555 0100"}
    )
    assert changed.status_code == 409 and survivor in changed.json()["message"]
    booked = await clinic.book(local(5, "09:00"), token=clinic.reception, patientId=duplicate["id"])
    assert booked.status_code == 422
    # The moved appointments are the patient's, who signs in as before.
    mine = await clinic_a.call("GET", f"/appointments/{moved['id']}", clinic.patient)
    assert mine.status_code == 200 and mine.json()["data"]["patientId"] == survivor


async def test_merges_that_would_lose_something_are_refused(
    clinic_a: ClinicApi, engine: AsyncEngine
) -> None:
    _, desk = await token_for(clinic_a, engine, "receptionist")
    doctor_id, _ = await token_for(clinic_a, engine, "doctor")
    walk_in = await register(clinic_a, desk)
    one = await add_patient(engine, clinic_a.tenant, email="one@x.example", password_hash="x")
    two = await add_patient(engine, clinic_a.tenant, email="two@x.example", password_hash="y")

    async def merge(survivor: object, duplicate: object) -> tuple[int, str | None]:
        response = await clinic_a.call(
            "POST", f"/patients/{survivor}/merge", desk, json={"duplicateId": str(duplicate)}
        )
        errors = response.json().get("errors") or [{"field": None}]
        return response.status_code, errors[0]["field"]

    assert await merge(walk_in["id"], walk_in["id"]) == (409, "duplicateId")
    assert await merge(walk_in["id"], doctor_id) == (409, "duplicateId")
    assert await merge(doctor_id, walk_in["id"]) == (404, None)
    assert await merge(walk_in["id"], uuid.uuid4()) == (404, "duplicateId")
    assert await merge(one.id, two.id) == (409, "duplicateId")  # two accounts
    # The record with the account survives, so the patient keeps signing in as before.
    assert await merge(walk_in["id"], one.id) == (409, "duplicateId")
    bad = await clinic_a.call(
        "POST", f"/patients/{walk_in['id']}/merge", desk, json={"duplicateId": "nope"}
    )
    assert bad.status_code == 422
    for patient in (walk_in["id"], one.id, two.id):
        shown = (await clinic_a.call("GET", f"/patients/{patient}", desk)).json()["data"]
        assert shown["mergedIntoId"] is None and shown["isActive"] is True

    # The other way round works, and a merged record cannot be merged again.
    assert (await merge(one.id, walk_in["id"]))[0] == 200
    assert await merge(two.id, walk_in["id"]) == (409, "duplicateId")
    assert await merge(walk_in["id"], two.id) == (409, "duplicateId")


async def test_a_merge_at_one_clinic_leaves_the_other_alone(
    clinic_a: ClinicApi, clinic_b: ClinicApi, engine: AsyncEngine
) -> None:
    _, desk_a = await token_for(clinic_a, engine, "receptionist")
    _, desk_b = await token_for(clinic_b, engine, "receptionist")
    survivor = await register(clinic_a, desk_a)
    duplicate = await register(clinic_a, desk_a, firstName="Anna")
    # Clinic B holds two patients with the same ids.
    for made in (survivor, duplicate):
        await add_patient(engine, clinic_b.tenant, id=uuid.UUID(made["id"]), last_name="AtB")

    merged = await clinic_a.call(
        "POST", f"/patients/{survivor['id']}/merge", desk_a, json={"duplicateId": duplicate["id"]}
    )
    assert merged.status_code == 200
    at_b = (await clinic_b.call("GET", f"/patients/{duplicate['id']}", desk_b)).json()["data"]
    assert at_b["mergedIntoId"] is None and at_b["isActive"] is True and at_b["lastName"] == "AtB"
    # The merge is in clinic A's audit trail, for both records; clinic B's has no merge.
    _, admin_a = await token_for(clinic_a, engine, "clinic_admin")
    _, admin_b = await token_for(clinic_b, engine, "clinic_admin")
    for made in (survivor, duplicate):
        trail = await clinic_a.call("GET", f"/audit?patientId={made['id']}", admin_a)
        assert ("update", "patient") in {(e["action"], e["resource"]) for e in trail.json()["data"]}
        at_b_trail = await clinic_b.call("GET", f"/audit?patientId={made['id']}", admin_b)
        assert "update" not in {e["action"] for e in at_b_trail.json()["data"]}
    listed_b = (await clinic_b.call("GET", "/patients?q=atb", desk_b)).json()["data"]
    assert len(listed_b) == 2
