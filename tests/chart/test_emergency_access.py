"""Emergency access ("break the glass"): staff whose role does not open a chart open one
with a reason, for a limited time, to themselves only; the opening and every read under it
are flagged in the trail and shown to the clinic's admins. Role by role."""

from __future__ import annotations

import datetime
import uuid

import pytest
from litestar import Controller, Litestar, get
from litestar.di import NamedDependency
from litestar.params import FromPath
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.chart.audit.dependencies import AUDIT_DEPENDENCIES
from polyclinic.chart.audit.trail import AuditTrail
from polyclinic.identity.dependencies import IDENTITY_DEPENDENCIES
from polyclinic.identity.permissions.guards import authorize
from tests.chart.conftest import Clinic, entries, superuser_rows

REASON = "Unconscious patient in the waiting room, allergies needed"


class ChartProbe(Controller):
    """A chart route as the chart's routes are written: the `chart read` permission, the
    chart guard for the patient, and the read recorded."""

    path = "/api/v1/probe/{patient_id:uuid}/chart"
    guards = [authorize]
    dependencies = {**IDENTITY_DEPENDENCIES, **AUDIT_DEPENDENCIES}

    @get("/", opt={"permission": ("chart", "read")})
    async def read(
        self, patient_id: FromPath[uuid.UUID], audit: NamedDependency[AuditTrail]
    ) -> dict[str, str]:
        access = await audit.open_chart(patient_id)
        await audit.read("chart", patient_id, access=access)
        return {"basis": access.basis}


@pytest.fixture
def probe(app: Litestar) -> None:
    app.register(ChartProbe)


async def open_chart(clinic: Clinic, who: str, patient: str, reason: str = REASON):  # type: ignore[no-untyped-def]
    return await clinic.call(
        "POST",
        f"/patients/{clinic.users[patient].id}/emergency-access",
        who,
        json={"reason": reason},
    )


async def read_chart(clinic: Clinic, who: str, patient: str) -> int:
    response = await clinic.call("GET", f"/probe/{clinic.users[patient].id}/chart", who)
    return response.status_code


@pytest.mark.usefixtures("probe")
async def test_the_chart_opens_by_role_and_for_a_patient_only_their_own(clinic: Clinic) -> None:
    expected = {
        "clinic_admin": 200,
        "doctor": 200,
        "nurse": 200,
        "receptionist": 403,
        "billing": 403,
    }
    for role, status in expected.items():
        assert await read_chart(clinic, role, "ann") == status, role
    assert await read_chart(clinic, "ann", "ann") == 200
    assert await read_chart(clinic, "ann", "bob") == 404
    refused = await clinic.call("GET", f"/probe/{clinic.users['ann'].id}/chart", "receptionist")
    assert "emergency-access" in refused.json()["message"]


@pytest.mark.usefixtures("probe")
async def test_opening_in_an_emergency_role_by_role(clinic: Clinic, engine: AsyncEngine) -> None:
    expected = {
        "clinic_admin": 409,
        "doctor": 409,
        "nurse": 409,
        "receptionist": 201,
        "billing": 201,
        "ann": 403,
    }
    for who, status in expected.items():
        response = await open_chart(clinic, who, "bob")
        assert response.status_code == status, (who, response.text)
    assert len(await entries(engine, clinic)) == 2


@pytest.mark.usefixtures("probe")
async def test_an_emergency_opening_is_time_limited_flagged_and_shown_to_admins(
    clinic: Clinic, engine: AsyncEngine, settings: object
) -> None:
    before = datetime.datetime.now(datetime.UTC)
    opened = await open_chart(clinic, "receptionist", "ann")
    assert opened.status_code == 201, opened.text
    grant = opened.json()["data"]
    expires = datetime.datetime.fromisoformat(grant["expiresAt"])
    minutes = settings.emergency_access_minutes  # type: ignore[attr-defined]
    assert before + datetime.timedelta(minutes=minutes - 1) < expires
    assert expires <= datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=minutes)
    assert grant["reason"] == REASON and grant["active"] is True

    # Open to this receptionist, for this patient only.
    assert await read_chart(clinic, "receptionist", "ann") == 200
    assert await read_chart(clinic, "receptionist", "bob") == 403
    assert await read_chart(clinic, "billing", "ann") == 403

    recorded = await entries(engine, clinic)
    assert [(e["action"], e["emergency"], e["reason"]) for e in recorded] == [
        ("emergency_access", True, REASON),
        ("read", True, REASON),
    ]
    assert recorded[0]["resource_id"] == uuid.UUID(grant["id"])

    flagged = await clinic.call("GET", "/audit?emergency=true", "clinic_admin")
    assert [e["action"] for e in flagged.json()["data"]] == ["read", "emergency_access"]
    assert all(e["actorRole"] == "receptionist" for e in flagged.json()["data"])
    active = await clinic.call("GET", "/audit/emergency-access?active=true", "clinic_admin")
    [shown] = active.json()["data"]
    assert shown["userId"] == str(clinic.users["receptionist"].id)
    assert shown["patientId"] == str(clinic.users["ann"].id) and shown["reason"] == REASON
    for role in ("doctor", "nurse", "receptionist", "billing", "ann"):
        assert (await clinic.call("GET", "/audit/emergency-access", role)).status_code == 403

    # The patient sees that their chart was opened in an emergency.
    log = await clinic.call("GET", "/me/access-log", "ann")
    assert [e["emergency"] for e in log.json()["data"]] == [True, True]

    # Once it has expired, the chart is closed again.
    await superuser_rows(
        engine, clinic, "UPDATE {s}.emergency_grants SET expires_at = now() - interval '1 second'"
    )
    assert await read_chart(clinic, "receptionist", "ann") == 403
    closed = await clinic.call("GET", "/audit/emergency-access?active=false", "clinic_admin")
    assert [g["active"] for g in closed.json()["data"]] == [False]


async def test_an_opening_needs_a_reason_and_a_patient(clinic: Clinic, engine: AsyncEngine) -> None:
    ann = clinic.users["ann"].id
    missing = await clinic.call("POST", f"/patients/{ann}/emergency-access", "billing", json={})
    short = await open_chart(clinic, "billing", "ann", reason="because")
    blank = await open_chart(clinic, "billing", "ann", reason=" " * 40)
    for response in (missing, short, blank):
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["field"] == "reason"
    nobody = await clinic.call(
        "POST", f"/patients/{uuid.uuid4()}/emergency-access", "billing", json={"reason": REASON}
    )
    staff = await clinic.call(
        "POST",
        f"/patients/{clinic.users['doctor'].id}/emergency-access",
        "billing",
        json={"reason": REASON},
    )
    assert nobody.status_code == staff.status_code == 404
    assert await entries(engine, clinic) == []
    assert await superuser_rows(engine, clinic, "SELECT * FROM {s}.emergency_grants") == []


@pytest.mark.usefixtures("probe")
async def test_an_opening_at_one_clinic_opens_nothing_at_another(
    clinic: Clinic, twin: Clinic, engine: AsyncEngine
) -> None:
    assert (await open_chart(clinic, "receptionist", "ann")).status_code == 201
    assert await read_chart(clinic, "receptionist", "ann") == 200
    # The same user id and patient id at the other clinic: still closed, nothing recorded.
    assert await read_chart(twin, "receptionist", "ann") == 403
    assert await entries(engine, twin) == []
    grants = await twin.call("GET", "/audit/emergency-access", "clinic_admin")
    assert grants.json()["data"] == []
