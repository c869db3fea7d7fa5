"""The audit trail of access to patients' data: what is recorded, who sees it, and that it
cannot be changed by the clinic and is written with the request's own work."""

from __future__ import annotations

import asyncio
import datetime
import itertools

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.chart.audit.services import Actor, Event, record
from polyclinic.chart.audit.verify import verify_clinic
from polyclinic.db.session import clinic_session, clinic_transaction
from polyclinic.errors import Unavailable
from tests.chart.conftest import Clinic, entries, info, superuser_rows
from tests.conftest import TRUSTED_PROXY, Client


async def test_reading_a_patient_is_recorded_with_who_what_when_and_where(
    clinic: Clinic, engine: AsyncEngine
) -> None:
    ann = clinic.users["ann"]
    response = await clinic.call(
        "GET", f"/patients/{ann.id}", "nurse", headers={"x-request-id": "req-read-ann"}
    )
    assert response.status_code == 200

    [entry] = await entries(engine, clinic)
    assert entry["actor_id"] == clinic.users["nurse"].id and entry["actor_role"] == "nurse"
    assert entry["patient_id"] == ann.id and entry["resource_id"] is None
    assert (entry["action"], entry["resource"]) == ("read", "patient")
    assert entry["request_id"] == "req-read-ann" and entry["ip"] == "192.0.2.10"
    assert entry["emergency"] is False and entry["seq"] == 1

    listed = await clinic.call("GET", f"/audit?patientId={ann.id}", "clinic_admin")
    assert listed.status_code == 200
    [shown] = listed.json()["data"]
    assert shown["actorRole"] == "nurse" and shown["requestId"] == "req-read-ann"
    assert shown["occurredAt"].endswith("Z") and shown["ip"] == "192.0.2.10"


async def test_the_address_is_the_client_behind_a_trusted_proxy(
    app: object, clinic: Clinic, engine: AsyncEngine
) -> None:
    proxied = Client(app, client_ip=TRUSTED_PROXY)
    clinic.api.client = proxied
    try:
        response = await clinic.call(
            "GET",
            f"/patients/{clinic.users['ann'].id}",
            "doctor",
            headers={"x-forwarded-for": "203.0.113.9, 198.51.100.7"},
        )
    finally:
        await proxied.http.aclose()
    assert response.status_code == 200
    [entry] = await entries(engine, clinic)
    assert entry["ip"] == "198.51.100.7"


async def test_a_listing_records_each_patient_shown_and_failures_record_nothing(
    clinic: Clinic, engine: AsyncEngine
) -> None:
    page = await clinic.call("GET", "/patients?limit=10", "receptionist")
    assert page.status_code == 200 and len(page.json()["data"]) == 2
    recorded = await entries(engine, clinic)
    assert {e["patient_id"] for e in recorded} == {
        clinic.users["ann"].id,
        clinic.users["bob"].id,
    }
    assert {e["action"] for e in recorded} == {"list"}

    # A missing patient, or a patient asking for someone else's record: nothing to record.
    missing = await clinic.call("GET", f"/patients/{clinic.users['doctor'].id}", "doctor")
    other = await clinic.call("GET", f"/patients/{clinic.users['bob'].id}", "ann")
    assert missing.status_code == other.status_code == 404
    assert len(await entries(engine, clinic)) == 2


async def test_admins_filter_the_trail_by_patient_actor_and_time(
    clinic: Clinic, engine: AsyncEngine
) -> None:
    ann, bob = clinic.users["ann"], clinic.users["bob"]
    for reader, patient in (("doctor", ann), ("nurse", ann), ("doctor", bob)):
        assert (await clinic.call("GET", f"/patients/{patient.id}", reader)).status_code == 200

    async def listed(query: str) -> list[dict[str, object]]:
        response = await clinic.call("GET", f"/audit?{query}", "clinic_admin")
        assert response.status_code == 200, response.text
        return response.json()["data"]

    doctor = clinic.users["doctor"].id
    assert len(await listed(f"actorId={doctor}")) == 2
    [both] = await listed(f"actorId={doctor}&patientId={ann.id}")
    assert both["patientId"] == str(ann.id)
    newest_first = await listed("limit=2")
    assert [e["seq"] for e in newest_first] == [3, 2]
    paged = await clinic.call("GET", "/audit?limit=2&offset=2", "clinic_admin")
    assert paged.json()["meta"] == {"total": 3, "limit": 2, "offset": 2, "hasMore": False}

    later = (datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=5)).isoformat()
    assert await listed(f"from={later.replace('+00:00', 'Z')}") == []
    assert len(await listed(f"to={later.replace('+00:00', 'Z')}")) == 3

    backwards = await clinic.call(
        "GET", "/audit?from=2027-01-02T00:00:00Z&to=2027-01-01T00:00:00Z", "clinic_admin"
    )
    assert backwards.status_code == 422
    assert backwards.json()["errors"][0]["field"] == "to"
    garbage = await clinic.call("GET", "/audit?patientId=not-an-id", "clinic_admin")
    assert garbage.status_code in (400, 422)
    assert garbage.json()["errors"][0]["field"] in ("patientId", "patient_id")
    for role in ("doctor", "nurse", "receptionist", "billing", "ann"):
        refused = await clinic.call("GET", "/audit", role)
        assert refused.status_code == 403, role


async def test_a_patient_sees_who_accessed_their_record_and_nothing_else(
    clinic: Clinic,
) -> None:
    ann, bob = clinic.users["ann"], clinic.users["bob"]
    await clinic.call("GET", f"/patients/{ann.id}", "doctor")
    await clinic.call("GET", f"/patients/{bob.id}", "nurse")
    await clinic.call("GET", f"/patients/{bob.id}", "receptionist")

    own = await clinic.call("GET", "/me/access-log", "ann")
    assert own.status_code == 200
    [seen] = own.json()["data"]
    assert seen["actorName"] == "Test Doctor" and seen["actorRole"] == "doctor"
    assert (seen["action"], seen["resource"], seen["emergency"]) == ("read", "patient", False)
    assert set(seen) == {"occurredAt", "actorName", "actorRole", "action", "resource", "emergency"}

    theirs = await clinic.call("GET", "/me/access-log", "bob")
    assert [e["actorRole"] for e in theirs.json()["data"]] == ["receptionist", "nurse"]
    assert theirs.json()["meta"]["total"] == 2
    for role in ("clinic_admin", "doctor", "nurse", "receptionist", "billing"):
        assert (await clinic.call("GET", "/me/access-log", role)).status_code == 403, role


async def test_entries_cannot_be_changed_or_removed_by_the_clinic(
    clinic: Clinic, engine: AsyncEngine
) -> None:
    await clinic.call("GET", f"/patients/{clinic.users['ann'].id}", "doctor")
    async with clinic_session(engine, info(clinic)) as session:
        for statement in (
            "UPDATE audit_entries SET actor_role = 'nobody'",
            "DELETE FROM audit_entries",
            "TRUNCATE audit_entries",
            "DELETE FROM audit_chain_head",
        ):
            with pytest.raises(DBAPIError, match="permission denied"):
                await session.execute(text(statement))
            await session.rollback()
        assert await session.scalar(text("SELECT count(*) FROM audit_entries")) == 1

    # Not even the tables' owner changes an entry without turning the trail's triggers off.
    with pytest.raises(DBAPIError, match="append-only"):
        await superuser_rows(engine, clinic, "UPDATE {s}.audit_entries SET actor_role = 'x'")
    with pytest.raises(DBAPIError, match="append-only"):
        await superuser_rows(engine, clinic, "DELETE FROM {s}.audit_entries")
    assert len(await entries(engine, clinic)) == 1


async def test_an_entry_commits_or_rolls_back_with_the_work_it_records(
    clinic: Clinic, engine: AsyncEngine
) -> None:
    actor = Actor(clinic.users["doctor"].id, "doctor", "req-1", "192.0.2.1")
    ann = clinic.users["ann"].id
    with pytest.raises(RuntimeError):
        async with clinic_transaction(engine, info(clinic)) as session:
            await record(session, actor, Event("update", "patient", ann))
            raise RuntimeError("the change failed after the entry was written")
    assert await entries(engine, clinic) == []

    async with clinic_transaction(engine, info(clinic)) as session:
        assert await record(session, actor, Event("update", "patient", ann)) == [1]
    assert [e["seq"] for e in await entries(engine, clinic)] == [1]
    assert (await verify_clinic(engine, info(clinic))).ok


async def test_a_read_that_cannot_be_recorded_is_refused(
    clinic: Clinic, engine: AsyncEngine
) -> None:
    role = clinic.api.tenant.db_role
    await superuser_rows(engine, clinic, f'REVOKE INSERT ON {{s}}.audit_entries FROM "{role}"')
    try:
        response = await clinic.call("GET", f"/patients/{clinic.users['ann'].id}", "doctor")
        with pytest.raises(Unavailable):
            async with clinic_transaction(engine, info(clinic)) as session:
                await record(session, Actor(None, None), Event("read", "patient", None))
    finally:
        await superuser_rows(engine, clinic, f'GRANT INSERT ON {{s}}.audit_entries TO "{role}"')
    assert response.status_code == 503
    assert "audit trail" in response.json()["message"]
    assert "ann@" not in response.text
    assert await entries(engine, clinic) == []


async def test_concurrent_writers_keep_one_chain(clinic: Clinic, engine: AsyncEngine) -> None:
    async def write(n: int) -> None:
        actor = Actor(clinic.users["nurse"].id, "nurse", f"req-{n}")
        async with clinic_transaction(engine, info(clinic)) as session:
            await record(session, actor, Event("read", "patient", clinic.users["ann"].id))
            await asyncio.sleep(0)

    await asyncio.gather(*(write(n) for n in range(12)))
    recorded = await entries(engine, clinic)
    assert [e["seq"] for e in recorded] == list(range(1, 13))
    assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(recorded))
    report = await verify_clinic(engine, info(clinic))
    assert report.ok and report.entries == 12


async def test_two_clinics_with_the_same_ids_keep_their_own_trails(
    clinic: Clinic, twin: Clinic, engine: AsyncEngine
) -> None:
    ann = clinic.users["ann"]
    assert twin.users["ann"].id == ann.id
    assert (await clinic.call("GET", f"/patients/{ann.id}", "doctor")).status_code == 200
    assert (await clinic.call("GET", f"/patients/{ann.id}", "nurse")).status_code == 200
    assert (await twin.call("GET", f"/patients/{ann.id}", "receptionist")).status_code == 200

    here = await clinic.call("GET", f"/audit?patientId={ann.id}", "clinic_admin")
    there = await twin.call("GET", f"/audit?patientId={ann.id}", "clinic_admin")
    assert [e["actorRole"] for e in here.json()["data"]] == ["nurse", "doctor"]
    assert [e["actorRole"] for e in there.json()["data"]] == ["receptionist"]
    twin_log = await twin.call("GET", "/me/access-log", "ann")
    assert [e["actorRole"] for e in twin_log.json()["data"]] == ["receptionist"]

    # Each clinic's chain starts at its own first entry and verifies on its own.
    a, b = await entries(engine, clinic), await entries(engine, twin)
    assert [e["seq"] for e in a] == [1, 2] and [e["seq"] for e in b] == [1]
    assert a[0]["prev_hash"] != b[0]["prev_hash"]
    assert (await verify_clinic(engine, info(clinic))).ok
    assert (await verify_clinic(engine, info(twin))).ok
