"""An appointment's life after booking:
`pending_payment -> confirmed -> checked_in -> in_progress -> completed`, or `cancelled`
or `no_show`. Each step checks the state it starts from under a row lock; a step from the
wrong state is 409 with the current state. A role the matrix holds to its own appointments
for a step (a doctor: those they are the practitioner of) is refused another's with 403.
"""

from __future__ import annotations

import datetime
import uuid
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.db.base import utcnow
from polyclinic.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound
from polyclinic.identity.permissions.matrix import only_own
from polyclinic.payments.models import Payment, PaymentStatus
from polyclinic.scheduling.appointments.booking import Desk, flush_or_taken, take_turn
from polyclinic.scheduling.appointments.journal import note_step
from polyclinic.scheduling.appointments.models import Appointment, AppointmentStatus
from polyclinic.scheduling.appointments.reminders import add_reminders, drop_reminders
from polyclinic.scheduling.setup.availability import Policies
from polyclinic.scheduling.setup.models import Practitioner, Service
from polyclinic.web.tokens import InvalidToken, TokenSigner

S = AppointmentStatus
Scope = Literal["this", "following"]


@dataclass(frozen=True)
class Step:
    name: str
    verb: str
    starts_from: frozenset[str]
    ends_in: str
    # The step's action in the permission matrix (resource `appointments`).
    action: str


STEPS = {
    step.name: step
    for step in (
        Step("checked_in", "check in", frozenset({S.CONFIRMED}), S.CHECKED_IN, "check_in"),
        Step("started", "start", frozenset({S.CHECKED_IN}), S.IN_PROGRESS, "treat"),
        Step("completed", "complete", frozenset({S.IN_PROGRESS}), S.COMPLETED, "treat"),
        Step("no_show", "mark as no-show", frozenset({S.CONFIRMED}), S.NO_SHOW, "no_show"),
        Step(
            "cancelled",
            "cancel",
            frozenset({S.PENDING_PAYMENT, S.CONFIRMED}),
            S.CANCELLED,
            "cancel",
        ),
        Step("rescheduled", "move", frozenset({S.PENDING_PAYMENT, S.CONFIRMED}), "", "reschedule"),
    )
}


def refuse(step: Step, appointment: Appointment) -> Conflict:
    state = appointment.status.replace("_", " ")
    return Conflict(
        f"Cannot {step.verb} an appointment that is {state}",
        [FieldError("status", appointment.status)],
    )


class AppointmentActions(Desk):
    """Steps on existing appointments, by one signed-in user (patients on their own only)."""

    async def locked(self, appointment_id: uuid.UUID) -> Appointment:
        return await self.visible(appointment_id, lock=True)

    async def visible(self, appointment_id: uuid.UUID, *, lock: bool = False) -> Appointment:
        query = select(Appointment).where(Appointment.id == appointment_id)
        if lock:
            query = query.with_for_update().execution_options(populate_existing=True)
        if self.by_patient:
            query = query.where(Appointment.patient_id == self.actor.user_id)
        appointment = await self.db.scalar(query)
        if appointment is None:
            raise NotFound("No appointment with this id")
        return appointment

    async def check_own(self, appointment: Appointment, step: Step) -> None:
        """403 for a role held to its own appointments for this step (a doctor) on one with
        another practitioner. Patients never see others' appointments (404) to begin with."""
        if self.by_patient or not only_own(("appointments", step.action), self.actor.role):
            return
        holder = await self.db.scalar(
            select(Practitioner.user_id).where(Practitioner.id == appointment.practitioner_id)
        )
        if holder != self.actor.user_id:
            raise Forbidden(
                f"Your role may {step.verb} only your own appointments; "
                "this one is with another practitioner"
            )

    async def advance(self, appointment_id: uuid.UUID, name: str) -> Appointment:
        """check in, start, complete, no-show."""
        appointment = await self.locked(appointment_id)
        step = STEPS[name]
        await self.check_own(appointment, step)
        if appointment.status not in step.starts_from:
            raise refuse(step, appointment)
        if name == "no_show" and appointment.starts_at > utcnow():
            raise Conflict(
                "A patient can be marked as not showing up only once the appointment has begun",
                [FieldError("startsAt", "is still ahead")],
            )
        self._move(appointment, step)
        await self.db.commit()
        return appointment

    def _move(self, appointment: Appointment, step: Step, **details: object) -> None:
        before = appointment.status
        appointment.status = step.ends_in
        note_step(self.db, appointment, step.name, before, self.actor.user_id, details=details)

    async def cancel(
        self, appointment_id: uuid.UUID, reason: str, scope: Scope
    ) -> tuple[list[Appointment], list[uuid.UUID]]:
        """Cancel one appointment, or it and the rest of its series. Cancelled by the clinic,
        or by the patient at least the policy's notice ahead: the quota unit is given back
        and a card payment refunded. A later cancellation by the patient keeps both.
        Returns the appointments and the payments the payments sweep must settle."""
        first = await self.locked(appointment_id)
        step = STEPS["cancelled"]
        targets = await self._with_following(first, scope)
        for one in targets:
            await self.check_own(one, step)
        for one in targets:
            if one.status not in step.starts_from:
                raise refuse(step, one)
        policy = await Policies(self.db).get()
        notice = datetime.timedelta(hours=policy.cancellation_notice_hours)
        now = utcnow()
        by = "patient" if self.by_patient else "clinic"
        to_settle = []
        for one in targets:
            # An unpaid hold costs the patient nothing to drop, as letting it expire would not.
            in_window = (
                by == "clinic" or one.status == S.PENDING_PAYMENT or one.starts_at - now >= notice
            )
            before = one.status
            one.status, one.cancelled_by, one.cancel_reason = S.CANCELLED, by, reason
            released = await self.quota.release(one.id) if in_window else False
            payment = await self._payment(one.id)
            refund = False
            if payment is not None and payment.status == PaymentStatus.SUCCEEDED and in_window:
                payment.status, refund = PaymentStatus.REFUND_PENDING, True
            if payment is not None and payment.status in (
                PaymentStatus.PENDING,
                PaymentStatus.REFUND_PENDING,
            ):
                to_settle.append(payment.id)
            note_step(
                self.db,
                one,
                "cancelled",
                before,
                self.actor.user_id,
                reason=reason,
                details={
                    "cancelledBy": by,
                    "quotaReleased": released,
                    "refund": refund,
                    "late": not in_window,
                },
            )
        await drop_reminders(self.db, [one.id for one in targets])
        await self.db.commit()
        return targets, to_settle

    async def reschedule(
        self, appointment_id: uuid.UUID, starts_at: datetime.datetime, scope: Scope
    ) -> list[Appointment]:
        """Move one appointment, or it and the rest of its series by the same wall-clock
        shift, all or nothing. The appointment keeps its id, its quota unit and its payment."""
        self.check_instant(starts_at, "startsAt")
        first = await self.visible(appointment_id)
        practitioner = await self.db.get_one(Practitioner, first.practitioner_id)
        service = await self.db.get_one(Service, first.service_id)
        await self.clear_expired_holds(practitioner, service)
        await take_turn(self.db, self.clinic.id, practitioner.id, service.location_id)
        first = await self.locked(appointment_id)
        step = STEPS["rescheduled"]
        targets = await self._with_following(first, scope)
        for one in targets:
            await self.check_own(one, step)
        for one in targets:
            if one.status not in step.starts_from:
                raise refuse(step, one)
        if self.by_patient:
            await self._check_patient_may_move(first)
        requested = starts_at.astimezone(self.zone)
        shift = requested.replace(tzinfo=None) - self._wall(first.starts_at)
        moves = [(first, starts_at.astimezone(datetime.UTC))]
        for one in targets[1:]:
            new_start = (self._wall(one.starts_at) + shift).replace(
                tzinfo=self.zone, fold=requested.fold
            )
            moves.append((one, new_start.astimezone(datetime.UTC)))
        for index, (_, new_start) in enumerate(moves):
            field = "startsAt" if index == 0 else f"occurrences[{index}]"
            await self.check_start(practitioner, service, new_start, field)
        # The constraint is checked row by row: move the occurrence furthest along the shift
        # first, so none lands on a sibling that has not moved yet.
        later_first = moves[0][1] > first.starts_at
        moves.sort(key=lambda move: move[0].starts_at, reverse=later_first)
        for one, new_start in moves:
            previous = one.starts_at
            delta = new_start - previous
            one.starts_at += delta
            one.ends_at += delta
            one.blocked_from += delta
            one.blocked_until += delta
            note_step(
                self.db,
                one,
                "rescheduled",
                one.status,
                self.actor.user_id,
                details={"previousStartsAt": previous.isoformat()},
            )
            await flush_or_taken(self.db)
        await drop_reminders(self.db, [one.id for one in targets])
        for one in targets:
            await add_reminders(self.db, one)
        await self.db.commit()
        return targets

    def _wall(self, at: datetime.datetime) -> datetime.datetime:
        return at.astimezone(self.zone).replace(tzinfo=None)

    async def _check_patient_may_move(self, appointment: Appointment) -> None:
        policy = await Policies(self.db).get()
        notice = datetime.timedelta(hours=policy.cancellation_notice_hours)
        if appointment.starts_at - utcnow() < notice:
            raise Conflict(
                f"Appointments can be moved up to {policy.cancellation_notice_hours} hours "
                "ahead; please call the clinic",
                [FieldError("startsAt", "is too close to move")],
            )

    async def _with_following(self, first: Appointment, scope: Scope) -> list[Appointment]:
        if scope == "this":
            return [first]
        if first.series_id is None:
            raise InvalidInput(
                "This appointment is not part of a series",
                [FieldError("scope", "following needs a series")],
            )
        rest = await self.db.scalars(
            select(Appointment)
            .where(
                Appointment.series_id == first.series_id,
                Appointment.series_index > first.series_index,
                Appointment.status.in_((S.PENDING_PAYMENT, S.CONFIRMED)),
            )
            .order_by(Appointment.series_index)
            .with_for_update()
        )
        return [first, *rest]

    async def _payment(self, appointment_id: uuid.UUID) -> Payment | None:
        return await self.db.scalar(
            select(Payment).where(Payment.appointment_id == appointment_id).with_for_update()
        )


CHECK_IN = "check-in"


def check_in_token(
    signer: TokenSigner, clinic_id: uuid.UUID, appointment: Appointment, opens_minutes: int
) -> str:
    """The QR code's content: this appointment, at this clinic, only from a while before it
    starts until it ends."""
    opens = appointment.starts_at - datetime.timedelta(minutes=opens_minutes)
    return signer.issue(
        appointment.id,
        CHECK_IN,
        clinic=str(clinic_id),
        at=int(appointment.starts_at.timestamp()),
        nbf=int(opens.timestamp()),
        exp=int(appointment.ends_at.timestamp()),
    )


async def self_check_in(
    session: AsyncSession, signer: TokenSigner, token: str, clinic_id: uuid.UUID
) -> Appointment:
    try:
        claims = signer.verify(token, CHECK_IN)
    except InvalidToken:
        raise InvalidInput(
            "This check-in code is not valid now: it works from shortly before the "
            "appointment until its end",
            [FieldError("token", "is invalid or outside its time")],
        ) from None
    if claims.get("clinic") != str(clinic_id):
        raise InvalidInput(
            "This check-in code is for another clinic", [FieldError("token", "is not ours")]
        )
    appointment = await session.scalar(
        select(Appointment).where(Appointment.id == uuid.UUID(claims["sub"])).with_for_update()
    )
    if appointment is None:
        raise NotFound("No appointment with this id")
    if claims.get("at") != int(appointment.starts_at.timestamp()):
        raise InvalidInput(
            "This check-in code is for the appointment's earlier time; use the latest one",
            [FieldError("token", "is for another time")],
        )
    step = STEPS["checked_in"]
    if appointment.status not in step.starts_from:
        raise refuse(step, appointment)
    appointment.status = step.ends_in
    note_step(session, appointment, "checked_in", S.CONFIRMED, None, details={"self": True})
    await session.commit()
    return appointment
