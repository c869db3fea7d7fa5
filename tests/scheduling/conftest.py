"""Scheduling tests use the identity tests' clinic helpers, and a clinic made ready to book:
a verified practitioner with hours every day, a service, a patient and staff."""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.billing.test_stripe_billing import admin_of
from tests.identity.conftest import ClinicApi, add_user, clinic_a, clinic_b, mailer  # noqa: F401

BERLIN = ZoneInfo("Europe/Berlin")  # the zone test clinics are created in


def local(days_ahead: int, clock: str, zone: ZoneInfo = BERLIN) -> datetime.datetime:
    """A wall-clock time `days_ahead` local days from today in the clinic's zone, as UTC."""
    day = datetime.datetime.now(zone).date() + datetime.timedelta(days=days_ahead)
    hour, minute = map(int, clock.split(":"))
    return datetime.datetime.combine(day, datetime.time(hour, minute), zone).astimezone(
        datetime.UTC
    )


def iso(at: datetime.datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


async def user_token(clinic: ClinicApi, engine: AsyncEngine, role: str) -> tuple[uuid.UUID, str]:
    email = f"{role}-{uuid.uuid4().hex[:8]}@example.com"
    user = await add_user(engine, clinic.tenant, email, role)
    return user.id, (await clinic.login(email))["accessToken"]


@dataclass
class Bookable:
    """A clinic ready to book, and people to act in it."""

    clinic: ClinicApi
    admin: str
    practitioner_id: str
    doctor: str  # the practitioner's own token
    service_id: str
    patient_id: uuid.UUID
    patient: str
    reception: str

    async def book(self, starts_at: datetime.datetime, **fields: Any) -> httpx.Response:
        token = fields.pop("token", self.patient)
        body = {
            "practitionerId": self.practitioner_id,
            "serviceId": self.service_id,
            "startsAt": iso(starts_at),
            "paymentMethod": "in_clinic",
            **fields,
        }
        return await self.clinic.call("POST", "/appointments", token, json=body)

    async def booked(self, starts_at: datetime.datetime, **fields: Any) -> dict[str, Any]:
        response = await self.book(starts_at, **fields)
        assert response.status_code == 201, response.text
        return response.json()["data"]["appointment"]

    async def series(
        self, starts_at: datetime.datetime | str, occurrences: int, **fields: Any
    ) -> httpx.Response:
        token = fields.pop("token", self.patient)
        body = {
            "practitionerId": self.practitioner_id,
            "serviceId": self.service_id,
            "startsAt": starts_at if isinstance(starts_at, str) else iso(starts_at),
            "occurrences": occurrences,
            **fields,
        }
        return await self.clinic.call("POST", "/appointments/series", token, json=body)

    async def act(
        self, appointment_id: str, action: str, token: str, **body: Any
    ) -> httpx.Response:
        return await self.clinic.call(
            "POST", f"/appointments/{appointment_id}/{action}", token, json=body or None
        )

    async def slots(self, first: datetime.date, last: datetime.date, token: str | None = None):  # type: ignore[no-untyped-def]
        return await self.clinic.call(
            "GET",
            f"/slots?practitionerId={self.practitioner_id}&serviceId={self.service_id}"
            f"&from={first}&to={last}",
            token or self.patient,
        )


async def bookable(
    clinic: ClinicApi,
    engine: AsyncEngine,
    *,
    hours: tuple[str, str] = ("08:00", "18:00"),
    duration: int = 30,
    buffers: tuple[int, int] = (0, 0),
    price: int = 5000,
    policy: dict[str, int] | None = None,
) -> Bookable:
    admin = await admin_of(clinic, engine)
    doctor_id, doctor = await user_token(clinic, engine, "doctor")
    made = await clinic.call(
        "POST",
        "/practitioners",
        admin,
        json={"userId": str(doctor_id), "specialty": "General practice"},
    )
    assert made.status_code == 201, made.text
    practitioner_id = made.json()["data"]["id"]
    assert (await clinic.call("POST", f"/practitioners/{practitioner_id}/verify", admin)).is_success
    week = [{"weekday": d, "starts": hours[0], "ends": hours[1]} for d in range(7)]
    put = await clinic.call(
        "PUT", f"/practitioners/{practitioner_id}/hours", admin, json={"hours": week}
    )
    assert put.status_code == 200, put.text
    service = await clinic.call(
        "POST",
        "/services",
        admin,
        json={
            "name": f"Consultation {uuid.uuid4().hex[:6]}",
            "durationMinutes": duration,
            "priceMinor": price,
            "currency": "EUR",
            "mode": "in_person",
            "bufferBeforeMinutes": buffers[0],
            "bufferAfterMinutes": buffers[1],
            "practitionerIds": [practitioner_id],
        },
    )
    assert service.status_code == 201, service.text
    if policy:
        changed = await clinic.call("PATCH", "/booking-policy", admin, json=policy)
        assert changed.status_code == 200, changed.text
    patient_id, patient = await user_token(clinic, engine, "patient")
    _, reception = await user_token(clinic, engine, "receptionist")
    return Bookable(
        clinic=clinic,
        admin=admin,
        practitioner_id=practitioner_id,
        doctor=doctor,
        service_id=service.json()["data"]["id"],
        patient_id=patient_id,
        patient=patient,
        reception=reception,
    )
