"""Booking, the appointment's lifecycle routes, views and self check-in."""

from __future__ import annotations

import datetime
import uuid
from typing import Annotated

from litestar import Controller, get, post
from litestar.di import NamedDependency
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, FromQuery, JSONBody, Parameter
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.db.context import TenantInfo
from polyclinic.identity.permissions.guards import Principal
from polyclinic.payments.cards import CardPayments
from polyclinic.scheduling.appointments.agenda import Agenda, View
from polyclinic.scheduling.appointments.booking import BookingRequest, Desk
from polyclinic.scheduling.appointments.lifecycle import (
    AppointmentActions,
    check_in_token,
    self_check_in,
)
from polyclinic.scheduling.appointments.schemas import (
    AppointmentOut,
    BookedOut,
    BookingIn,
    CancelIn,
    CardPaymentOut,
    CheckInCodeOut,
    CheckInIn,
    RescheduleIn,
    SeriesIn,
    SeriesOut,
    TransitionOut,
    appointment_out,
    transition_out,
)
from polyclinic.scheduling.slots.zones import zone_of
from polyclinic.web.envelope import Envelope, PagedEnvelope, ok, page
from polyclinic.web.openapi import error_responses
from polyclinic.web.paging import Limit, Offset
from polyclinic.web.state import Runtime

READ = error_responses(400, 401, 403, 404, 422)


WRITE = error_responses(400, 401, 402, 403, 404, 409, 422, 502, 503)


STEP = error_responses(400, 401, 403, 404, 409)


Status = FromQuery[str | None]


def _request(data: BookingIn | SeriesIn) -> BookingRequest:
    return BookingRequest(
        practitioner_id=data.practitioner_id,
        service_id=data.service_id,
        starts_at=data.starts_at,
        patient_id=data.patient_id,
        payment_method=data.payment_method,
        notes=data.notes,
        parent_id=getattr(data, "parent_id", None),
    )


def step_route(path: str, step: str, summary: str, action: str, message: str) -> HTTPRouteHandler:
    """One lifecycle step as its own route, with its own permission."""

    async def take_step(
        self: Controller,
        appointment_id: FromPath[uuid.UUID],
        clinic_db: NamedDependency[AsyncSession],
        clinic: NamedDependency[TenantInfo],
        runtime: NamedDependency[Runtime],
        principal: NamedDependency[Principal],
    ) -> Envelope[AppointmentOut]:
        actions = AppointmentActions(clinic_db, clinic, runtime.settings, principal)
        done = await actions.advance(appointment_id, step)
        return ok(appointment_out(done, zone_of(clinic)), message)

    take_step.__name__ = f"{step}_appointment"
    return post(
        f"/{{appointment_id:uuid}}/{path}",
        status_code=HTTP_200_OK,
        summary=summary,
        responses=STEP,
        opt={"permission": ("appointments", action)},
    )(take_step)


class AppointmentsController(Controller):
    path = "/appointments"
    tags = ["clinic: appointments"]

    @get(
        "/",
        summary="Appointments: staff day or week views; a patient's own",
        description="With `date`, the local day (or Monday-to-Sunday week) holding it; "
        "without, what is still ahead. Patients see only their own.",
        responses=READ,
        opt={"permission": ("appointments", "read")},
    )
    async def list_appointments(
        self,
        clinic_db: NamedDependency[AsyncSession],
        clinic: NamedDependency[TenantInfo],
        principal: NamedDependency[Principal],
        date: FromQuery[datetime.date | None] = None,
        view: FromQuery[View] = "day",
        practitioner_id: Annotated[uuid.UUID | None, Parameter(query="practitionerId")] = None,
        patient_id: Annotated[uuid.UUID | None, Parameter(query="patientId")] = None,
        status: Status = None,
        limit: Limit = 50,
        offset: Offset = 0,
    ) -> PagedEnvelope[AppointmentOut]:
        zone = zone_of(clinic)
        rows, total = await Agenda(clinic_db, zone, principal).list(
            day=date,
            view=view,
            practitioner_id=practitioner_id,
            patient_id=patient_id,
            status=status,
            limit=limit,
            offset=offset,
        )
        return page(
            [appointment_out(a, zone) for a in rows], total=total, limit=limit, offset=offset
        )

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        summary="Book: a patient for themself, or staff for a patient",
        description="`in_clinic`: confirmed at once. `card`: the slot is held as "
        "`pending_payment` until Stripe reports the payment (the answer carries the "
        "PaymentIntent's client secret); an unpaid hold expires and frees the slot. "
        "One unit of the clinic's plan quota is used in the same transaction.",
        responses=WRITE,
        opt={"permission": ("appointments", "book")},
    )
    async def book(
        self,
        data: JSONBody[BookingIn],
        clinic_db: NamedDependency[AsyncSession],
        clinic: NamedDependency[TenantInfo],
        runtime: NamedDependency[Runtime],
        principal: NamedDependency[Principal],
    ) -> Envelope[BookedOut]:
        desk = Desk(clinic_db, clinic, runtime.settings, principal)
        appointment, secret = await desk.book(_request(data))
        payment = (
            CardPaymentOut(client_secret=secret, hold_expires_at=appointment.hold_expires_at)
            if secret
            else None
        )
        out = BookedOut(appointment=appointment_out(appointment, desk.zone), payment=payment)
        message = "Booked; waiting for the card payment" if secret else "Booked"
        return ok(out, message, HTTP_201_CREATED)

    @post(
        "/series",
        status_code=HTTP_201_CREATED,
        summary="Book a recurring series, all occurrences or none (paid in clinic)",
        responses=WRITE,
        opt={"permission": ("appointments", "book")},
    )
    async def book_series(
        self,
        data: JSONBody[SeriesIn],
        clinic_db: NamedDependency[AsyncSession],
        clinic: NamedDependency[TenantInfo],
        runtime: NamedDependency[Runtime],
        principal: NamedDependency[Principal],
    ) -> Envelope[SeriesOut]:
        desk = Desk(clinic_db, clinic, runtime.settings, principal)
        series, booked = await desk.book_series(_request(data), data.every_days, data.occurrences)
        out = SeriesOut(
            series_id=series.id, appointments=[appointment_out(a, desk.zone) for a in booked]
        )
        return ok(out, f"{len(booked)} appointments booked", HTTP_201_CREATED)

    @get(
        "/{appointment_id:uuid}",
        summary="One appointment",
        responses=READ,
        opt={"permission": ("appointments", "read")},
    )
    async def get_appointment(
        self,
        appointment_id: FromPath[uuid.UUID],
        clinic_db: NamedDependency[AsyncSession],
        clinic: NamedDependency[TenantInfo],
        principal: NamedDependency[Principal],
    ) -> Envelope[AppointmentOut]:
        zone = zone_of(clinic)
        appointment = await Agenda(clinic_db, zone, principal).get(appointment_id)
        return ok(appointment_out(appointment, zone))

    @get(
        "/{appointment_id:uuid}/history",
        summary="Every step of an appointment, oldest first",
        responses=READ,
        opt={"permission": ("appointments", "read")},
    )
    async def history(
        self,
        appointment_id: FromPath[uuid.UUID],
        clinic_db: NamedDependency[AsyncSession],
        clinic: NamedDependency[TenantInfo],
        principal: NamedDependency[Principal],
    ) -> Envelope[list[TransitionOut]]:
        steps = await Agenda(clinic_db, zone_of(clinic), principal).history(appointment_id)
        return ok([transition_out(t) for t in steps])

    @get(
        "/{appointment_id:uuid}/check-in-code",
        summary="The signed code (for a QR) that checks this appointment in at the clinic",
        responses=READ,
        opt={"permission": ("appointments", "read")},
    )
    async def check_in_code(
        self,
        appointment_id: FromPath[uuid.UUID],
        clinic_db: NamedDependency[AsyncSession],
        clinic: NamedDependency[TenantInfo],
        runtime: NamedDependency[Runtime],
        principal: NamedDependency[Principal],
    ) -> Envelope[CheckInCodeOut]:
        appointment = await Agenda(clinic_db, zone_of(clinic), principal).get(appointment_id)
        opens = runtime.settings.check_in_opens_minutes
        token = check_in_token(runtime.signer, clinic.id, appointment, opens)
        return ok(
            CheckInCodeOut(
                token=token,
                valid_from=appointment.starts_at - datetime.timedelta(minutes=opens),
                valid_until=appointment.ends_at,
            )
        )

    @post(
        "/check-in",
        status_code=HTTP_200_OK,
        summary="Self check-in with the signed code, valid only around the appointment",
        responses=error_responses(400, 404, 409, 422),
        opt={"permission": ("appointments", "self_check_in")},
    )
    async def self_check_in(
        self,
        data: JSONBody[CheckInIn],
        clinic_db: NamedDependency[AsyncSession],
        clinic: NamedDependency[TenantInfo],
        runtime: NamedDependency[Runtime],
    ) -> Envelope[AppointmentOut]:
        appointment = await self_check_in(clinic_db, runtime.signer, data.token, clinic.id)
        return ok(appointment_out(appointment, zone_of(clinic)), "Checked in")

    check_in = step_route(
        "check-in",
        "checked_in",
        "Check the patient in (confirmed -> checked_in)",
        "check_in",
        "Checked in",
    )
    start = step_route(
        "start", "started", "Start the visit (checked_in -> in_progress)", "treat", "Visit started"
    )
    complete = step_route(
        "complete",
        "completed",
        "Complete the visit (in_progress -> completed)",
        "treat",
        "Visit completed",
    )
    no_show = step_route(
        "no-show",
        "no_show",
        "The patient did not come (confirmed -> no_show, once it has begun)",
        "no_show",
        "Marked as no-show",
    )

    @post(
        "/{appointment_id:uuid}/cancel",
        status_code=HTTP_200_OK,
        summary="Cancel one appointment, or it and the rest of its series",
        description="Cancelled by the clinic, or by the patient at least the policy's "
        "cancellation notice ahead: the quota unit is given back and a card payment "
        "refunded. A later cancellation by the patient keeps both.",
        responses=WRITE,
        opt={"permission": ("appointments", "cancel")},
    )
    async def cancel(
        self,
        appointment_id: FromPath[uuid.UUID],
        data: JSONBody[CancelIn],
        clinic_db: NamedDependency[AsyncSession],
        clinic: NamedDependency[TenantInfo],
        runtime: NamedDependency[Runtime],
        principal: NamedDependency[Principal],
    ) -> Envelope[list[AppointmentOut]]:
        actions = AppointmentActions(clinic_db, clinic, runtime.settings, principal)
        cancelled, to_settle = await actions.cancel(appointment_id, data.reason, data.scope)
        zone = zone_of(clinic)
        answer = ok([appointment_out(a, zone) for a in cancelled], "Cancelled")
        if to_settle:
            # Refunds and unpaid intents are settled now; a failure is retried by the sweep.
            await CardPayments(clinic_db, clinic, runtime.settings).settle(to_settle)
        return answer

    @post(
        "/{appointment_id:uuid}/reschedule",
        status_code=HTTP_200_OK,
        summary="Move one appointment, or it and the rest of its series, all or nothing",
        description="The appointment keeps its id, its quota unit and its payment.",
        responses=WRITE,
        opt={"permission": ("appointments", "reschedule")},
    )
    async def reschedule(
        self,
        appointment_id: FromPath[uuid.UUID],
        data: JSONBody[RescheduleIn],
        clinic_db: NamedDependency[AsyncSession],
        clinic: NamedDependency[TenantInfo],
        runtime: NamedDependency[Runtime],
        principal: NamedDependency[Principal],
    ) -> Envelope[list[AppointmentOut]]:
        actions = AppointmentActions(clinic_db, clinic, runtime.settings, principal)
        moved = await actions.reschedule(appointment_id, data.starts_at, data.scope)
        zone = zone_of(clinic)
        return ok([appointment_out(a, zone) for a in moved], "Rescheduled")
