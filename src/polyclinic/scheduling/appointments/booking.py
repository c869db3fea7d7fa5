"""Finding free times and booking them: one appointment or a recurring series.

Nothing here decides whether two bookings collide: the exclusion constraint on
`appointments` does, so of any number of concurrent requests for one time exactly one is
written and the rest get 409. The quota unit is consumed in the same transaction, so a
refused booking consumes nothing and a booking refused by the quota writes nothing.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import psycopg.errors
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.billing.quota import QuotaEngine
from polyclinic.config import Settings
from polyclinic.db.base import utcnow
from polyclinic.db.context import TenantInfo
from polyclinic.errors import Conflict, FieldError, Forbidden, InvalidInput
from polyclinic.identity.accounts.models import User
from polyclinic.identity.permissions.guards import Principal
from polyclinic.identity.permissions.roles import Role
from polyclinic.payments.cards import CardPayments
from polyclinic.scheduling.appointments.card_payments import charge_for, check_chargeable
from polyclinic.scheduling.appointments.holds import expire_holds
from polyclinic.scheduling.appointments.journal import note_step
from polyclinic.scheduling.appointments.models import (
    Appointment,
    AppointmentSeries,
    AppointmentStatus,
)
from polyclinic.scheduling.appointments.reminders import add_reminders
from polyclinic.scheduling.locations.models import Location
from polyclinic.scheduling.setup.availability import Policies
from polyclinic.scheduling.setup.models import (
    BookingPolicy,
    Practitioner,
    Service,
    ServicePractitioner,
)
from polyclinic.scheduling.slots.services import (
    Slot,
    Window,
    bookable_periods,
    busy_periods,
    free_slots,
    local_range,
    start_times,
)

# Longest buffers a service can have: how far around a range other bookings can matter.
BUFFER_REACH = datetime.timedelta(minutes=120)
IN_CLINIC, CARD = "in_clinic", "card"
# No policy books further ahead than its longest horizon (730 days).
FARTHEST = datetime.timedelta(days=731)


@dataclass(frozen=True)
class BookingRequest:
    practitioner_id: uuid.UUID
    service_id: uuid.UUID
    starts_at: datetime.datetime
    patient_id: uuid.UUID | None
    payment_method: str
    notes: str = ""
    parent_id: uuid.UUID | None = None


class Desk:
    """Booking for one clinic, on behalf of one signed-in user."""

    def __init__(
        self, session: AsyncSession, clinic: TenantInfo, settings: Settings, actor: Principal
    ) -> None:
        self.db = session
        self.clinic = clinic
        self.settings = settings
        self.actor = actor
        self.zone = ZoneInfo(clinic.timezone)
        self.quota = QuotaEngine(session, clinic.id, settings.past_due_grace_days)

    @property
    def by_patient(self) -> bool:
        return self.actor.role == Role.PATIENT

    async def slots(
        self,
        practitioner_id: uuid.UUID,
        service_id: uuid.UUID,
        first: datetime.date,
        last: datetime.date,
    ) -> list[Slot]:
        local_range(first, last, datetime.datetime.now(self.zone).date())
        practitioner, service = await self.bookable(practitioner_id, service_id)
        policy = await Policies(self.db).get()
        now = utcnow()
        periods = await bookable_periods(self.db, practitioner, service, self.zone, first, last)
        if not periods:
            return []
        busy = await busy_periods(
            self.db,
            practitioner.id,
            periods[0][0] - BUFFER_REACH,
            periods[-1][1] + BUFFER_REACH,
            now,
            service.location_id,
        )
        step = datetime.timedelta(minutes=policy.slot_granularity_minutes)
        return free_slots(periods, busy, service, step, self.window(policy, now))

    def window(self, policy: BookingPolicy, now: datetime.datetime) -> Window:
        # Staff may fill a gap at short notice; patients keep to the clinic's notice.
        return Window.of(policy, now, notice=self.by_patient)

    async def book(self, request: BookingRequest) -> tuple[Appointment, str | None]:
        """Book and commit. In clinic: confirmed at once. By card: the slot is held, then a
        PaymentIntent is made; the payment webhook confirms. Returns the appointment and,
        for a card, the client secret the patient's browser pays with."""
        self.check_instant(request.starts_at, "startsAt")
        patient_id = await self.patient_for(request.patient_id)
        practitioner, service = await self.bookable(request.practitioner_id, request.service_id)
        await self.check_start(practitioner, service, request.starts_at, "startsAt")
        if request.parent_id is not None:
            await self._check_parent(request.parent_id, patient_id)
        cards = CardPayments(self.db, self.clinic, self.settings)
        account = None
        if request.payment_method == CARD:
            check_chargeable(service)
            account = await cards.ready_account()
        location_lane = await self._location_lane(service)
        appointment = self._appointment(practitioner, service, location_lane, patient_id, request)
        await self.clear_expired_holds(practitioner, service)
        await self._write([appointment])
        await self.db.commit()
        if account is None:
            return appointment, None
        try:
            _, client_secret = await cards.start(charge_for(appointment, service), account)
        except Exception:
            await self._withdraw(appointment)
            raise
        note_step(self.db, appointment, "booked", None, self.actor.user_id)
        await self.db.commit()
        return appointment, client_secret

    async def _withdraw(self, appointment: Appointment) -> None:
        """Take back a hold whose payment could not be started: no row, no unit used."""
        await self.db.rollback()
        await self.quota.release(appointment.id)
        await self.db.execute(delete(Appointment).where(Appointment.id == appointment.id))
        await self.db.commit()

    async def book_series(
        self, request: BookingRequest, every_days: int, occurrences: int
    ) -> tuple[AppointmentSeries, list[Appointment]]:
        """All occurrences or none: each must be free and within hours."""
        if request.payment_method != IN_CLINIC:
            raise InvalidInput(
                "A series is paid in clinic",
                [FieldError("paymentMethod", "must be in_clinic for a series")],
            )
        self.check_instant(request.starts_at, "startsAt")
        patient_id = await self.patient_for(request.patient_id)
        practitioner, service = await self.bookable(request.practitioner_id, request.service_id)
        starts = self.repeat(request.starts_at, every_days, occurrences)
        for index, starts_at in enumerate(starts):
            await self.check_start(practitioner, service, starts_at, f"occurrences[{index}]")
        await self._check_free(practitioner, service, starts)
        location_lane = await self._location_lane(service)
        await self.clear_expired_holds(practitioner, service)
        series = AppointmentSeries(
            id=uuid.uuid4(), every_days=every_days, occurrences=occurrences, created_at=utcnow()
        )
        self.db.add(series)
        await self.db.flush()  # before its appointments: nothing else orders the two inserts
        appointments = []
        for index, starts_at in enumerate(starts):
            one = self._appointment(
                practitioner,
                service,
                location_lane,
                patient_id,
                BookingRequest(
                    request.practitioner_id,
                    request.service_id,
                    starts_at,
                    patient_id,
                    IN_CLINIC,
                    request.notes,
                ),
            )
            one.series_id, one.series_index = series.id, index
            appointments.append(one)
        await self._write(appointments)
        await self.db.commit()
        return series, appointments

    def repeat(
        self, first: datetime.datetime, every_days: int, occurrences: int
    ) -> list[datetime.datetime]:
        """Occurrences at the same wall-clock time in the clinic's zone (so 09:00 stays 09:00
        across a change of clocks)."""
        local = first.astimezone(self.zone)
        wall = local.replace(tzinfo=None)
        return [first] + [
            (wall + datetime.timedelta(days=every_days * k))
            .replace(tzinfo=self.zone, fold=local.fold)
            .astimezone(datetime.UTC)
            for k in range(1, occurrences)
        ]

    @staticmethod
    def check_instant(starts_at: datetime.datetime, field: str) -> None:
        """Before any arithmetic on a requested time: it carries its offset and lies within
        reach of any booking policy."""
        if starts_at.tzinfo is None:
            raise InvalidInput(
                "Give times with their UTC offset", [FieldError(field, "has no UTC offset")]
            )
        now = utcnow()
        if starts_at < now - datetime.timedelta(days=1):
            raise InvalidInput("That time has passed", [FieldError(field, "is in the past")])
        if starts_at > now + FARTHEST:
            raise InvalidInput(
                "That time is beyond any booking horizon", [FieldError(field, "is too far ahead")]
            )

    async def clear_expired_holds(self, practitioner: Practitioner, service: Service) -> None:
        """Cancel unpaid holds past their time that could stand in the way, in a transaction
        of their own: a booking then takes its quota row lock only after its insert, the
        order every booking keeps, so bookings cannot deadlock each other."""
        if await expire_holds(self.db, self.quota, utcnow(), practitioner.id, service.location_id):
            await self.db.commit()

    async def patient_for(self, patient_id: uuid.UUID | None) -> uuid.UUID:
        if self.by_patient:
            if patient_id is not None and patient_id != self.actor.user_id:
                raise Forbidden("A patient can book only for themself")
            return self.actor.user_id
        if patient_id is None:
            raise InvalidInput(
                "Staff book for a patient: say which",
                [FieldError("patientId", "is required when staff book")],
            )
        user = await self.db.get(User, patient_id)
        if user is None or user.role != Role.PATIENT or not user.is_active:
            raise InvalidInput(
                "No active patient with this id", [FieldError("patientId", "is not a patient")]
            )
        return patient_id

    async def bookable(
        self, practitioner_id: uuid.UUID, service_id: uuid.UUID
    ) -> tuple[Practitioner, Service]:
        # One round trip for the three facts: who, what, and whether they offer it.
        offers = (
            select(ServicePractitioner.service_id)
            .where(
                ServicePractitioner.service_id == service_id,
                ServicePractitioner.practitioner_id == practitioner_id,
            )
            .exists()
        )
        found = (
            await self.db.execute(
                select(Practitioner, Service, offers)
                .select_from(Practitioner)
                .outerjoin(Service, Service.id == service_id)
                .where(Practitioner.id == practitioner_id)
            )
        ).first()
        practitioner, service, offered = found if found is not None else (None, None, False)
        if practitioner is None:
            raise InvalidInput(
                "No practitioner with this id", [FieldError("practitionerId", "does not exist")]
            )
        if practitioner.verified_at is None or not practitioner.is_active:
            raise InvalidInput(
                "This practitioner cannot be booked (not verified or not active)",
                [FieldError("practitionerId", "is not bookable")],
            )
        if service is None or not service.is_active:
            raise InvalidInput(
                "No active service with this id", [FieldError("serviceId", "does not exist")]
            )
        if not offered:
            raise InvalidInput(
                f"{practitioner.display_name} does not offer {service.name}",
                [FieldError("serviceId", "is not offered by this practitioner")],
            )
        return practitioner, service

    async def check_start(
        self,
        practitioner: Practitioner,
        service: Service,
        starts_at: datetime.datetime,
        field: str,
    ) -> None:
        """The start is in the future, inside the policy's window, within the practitioner's
        hours and on a slot boundary. Whether it is free, the database says on insert."""
        if starts_at.tzinfo is None:
            raise InvalidInput(
                "Give times with their UTC offset", [FieldError(field, "has no UTC offset")]
            )
        now = utcnow()
        if starts_at <= now:
            raise InvalidInput("That time has passed", [FieldError(field, "is in the past")])
        policy = await Policies(self.db).get()
        window = self.window(policy, now)
        if starts_at < window.earliest:
            raise InvalidInput(
                f"Appointments are booked at least {policy.min_notice_minutes} minutes ahead",
                [FieldError(field, "is too soon")],
            )
        if starts_at > window.latest:
            raise InvalidInput(
                f"Appointments are booked at most {policy.horizon_days} days ahead",
                [FieldError(field, "is too far ahead")],
            )
        day = starts_at.astimezone(self.zone).date()
        periods = await bookable_periods(self.db, practitioner, service, self.zone, day, day)
        length = datetime.timedelta(minutes=service.duration_minutes)
        step = datetime.timedelta(minutes=policy.slot_granularity_minutes)
        if starts_at not in set(start_times(periods, length, step)):
            raise InvalidInput(
                "That time is outside the practitioner's hours or not a slot start",
                [FieldError(field, "is not a bookable start time")],
            )

    async def _check_parent(self, parent_id: uuid.UUID, patient_id: uuid.UUID) -> None:
        parent = await self.db.get(Appointment, parent_id)
        if parent is None or parent.patient_id != patient_id:
            raise InvalidInput(
                "A follow-up links to an earlier appointment of the same patient",
                [FieldError("parentId", "is not an appointment of this patient")],
            )

    async def _check_free(
        self, practitioner: Practitioner, service: Service, starts: Sequence[datetime.datetime]
    ) -> None:
        """Name the first occurrence that meets another booking (the constraint still has
        the last word for bookings made meanwhile)."""
        length = datetime.timedelta(minutes=service.duration_minutes)
        before = datetime.timedelta(minutes=service.buffer_before_minutes)
        after = datetime.timedelta(minutes=service.buffer_after_minutes)
        busy = await busy_periods(
            self.db,
            practitioner.id,
            starts[0] - BUFFER_REACH,
            starts[-1] + length + BUFFER_REACH,
            utcnow(),
            service.location_id,
        )
        for index, at in enumerate(starts):
            if any(b0 < at + length + after and at - before < b1 for b0, b1 in busy):
                local = at.astimezone(self.zone)
                raise Conflict(
                    f"Occurrence {index + 1} ({local:%Y-%m-%d %H:%M}) meets another booking; "
                    "nothing was booked",
                    [FieldError(f"occurrences[{index}]", "is taken")],
                )

    async def _location_lane(self, service: Service) -> int | None:
        if service.location_id is None:
            return None
        location = await self.db.get_one(Location, service.location_id)
        if not location.is_active:
            raise InvalidInput(
                f"{service.name} takes place at {location.name}, which is closed",
                [FieldError("serviceId", "is at a closed location")],
            )
        return location.lane

    def _appointment(
        self,
        practitioner: Practitioner,
        service: Service,
        location_lane: int | None,
        patient_id: uuid.UUID,
        request: BookingRequest,
    ) -> Appointment:
        length = datetime.timedelta(minutes=service.duration_minutes)
        card = request.payment_method == CARD
        hold = datetime.timedelta(minutes=self.settings.payment_hold_minutes)
        return Appointment(
            id=uuid.uuid4(),
            practitioner_id=practitioner.id,
            practitioner_lane=practitioner.lane,
            location_id=service.location_id,
            location_lane=location_lane,
            service_id=service.id,
            patient_id=patient_id,
            starts_at=request.starts_at,
            ends_at=request.starts_at + length,
            blocked_from=request.starts_at
            - datetime.timedelta(minutes=service.buffer_before_minutes),
            blocked_until=request.starts_at
            + length
            + datetime.timedelta(minutes=service.buffer_after_minutes),
            status=AppointmentStatus.PENDING_PAYMENT if card else AppointmentStatus.CONFIRMED,
            payment_method=request.payment_method,
            hold_expires_at=utcnow() + hold if card else None,
            notes=request.notes,
            parent_id=request.parent_id,
            booked_by=self.actor.user_id,
        )

    async def _write(self, appointments: Sequence[Appointment]) -> None:
        first = appointments[0]
        await take_turn(self.db, self.clinic.id, first.practitioner_id, first.location_id)
        self.db.add_all(appointments)
        await flush_or_taken(self.db)
        for appointment in appointments:
            await self.quota.consume(appointment.id)
            if appointment.status == AppointmentStatus.CONFIRMED:
                note_step(self.db, appointment, "booked", None, self.actor.user_id)
                note_step(
                    self.db,
                    appointment,
                    "confirmed",
                    AppointmentStatus.CONFIRMED,
                    self.actor.user_id,
                )
                await add_reminders(self.db, appointment)


async def take_turn(
    session: AsyncSession,
    clinic_id: uuid.UUID,
    practitioner_id: uuid.UUID,
    location_id: uuid.UUID | None,
) -> None:
    """Writers of one practitioner's (and location's) time take turns, until their commit.

    The exclusion constraint alone decides what may be written, but PostgreSQL can deadlock
    two transactions that insert conflicting rows at the same moment (each waits for the
    other's row). Taking the turn first makes the later one wait, then meet the constraint
    and get its 409. Always the practitioner, then the location: one order, no cycle."""
    keys = [f"{clinic_id}:practitioner:{practitioner_id}"]
    if location_id is not None:
        keys.append(f"{clinic_id}:location:{location_id}")
    for key in keys:
        await session.execute(select(func.pg_advisory_xact_lock(func.hashtextextended(key, 0))))


async def flush_or_taken(session: AsyncSession) -> None:
    """Flush; a clash with another booking's time becomes 409."""
    try:
        await session.flush()
    except IntegrityError as exc:
        if isinstance(exc.orig, psycopg.errors.ExclusionViolation):
            raise Conflict(
                "This time is no longer free: another booking holds it; choose another slot",
                [FieldError("startsAt", "is taken")],
            ) from None
        raise
