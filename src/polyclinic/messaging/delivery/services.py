"""Delivery: the messages an outbox event causes, sent through the clinic's own providers.

For one event, the delivery rows are made first (one per recipient and channel, never twice),
then each one not yet sent is sent with its own id as the idempotency key. A failure is
recorded on the row (attempts, the provider's reason) and raised, so the job's retries try
the failed rows again; a row once `sent` is never sent again. A channel the clinic has not
configured goes through the platform's default provider when the clinic's plan includes it,
else is recorded `not_sent` with the reason; so is a channel the recipient opted out of.

Before its provider is called a delivery is claimed (`sending`, committed). A claim older
than DELIVERY_CLAIM_SECONDS belongs to a worker that died mid-send: the provider may have
the message, so it is marked `unconfirmed` and not sent again unless someone retries it.
An event whose job never ran to its end (lost by a broker, a killed worker) is relayed
again after OUTBOX_RELAY_AGAIN_SECONDS; everything above makes that harmless.
"""

from __future__ import annotations

import datetime
import logging
import uuid
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import dramatiq
from sqlalchemy import Text, and_, func, literal, or_, select, update
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from polyclinic.billing.quota import QUOTA_THRESHOLD_EVENT, PaymentRequired
from polyclinic.config import Settings
from polyclinic.db.base import utcnow
from polyclinic.db.context import TenantInfo, in_clinic
from polyclinic.db.session import clinic_of, clinic_session
from polyclinic.errors import Conflict, DomainError, InvalidInput, NotFound, UpstreamFailed
from polyclinic.identity.accounts.models import User
from polyclinic.identity.permissions.roles import Role
from polyclinic.messaging.channels.providers import OutgoingMessage
from polyclinic.messaging.channels.providers.base import OutcomeUnknown
from polyclinic.messaging.channels.services import Sender, sender_for
from polyclinic.messaging.delivery.account_mail import (
    ACCOUNT_MAIL_KINDS,
    EVENT_PREFIX,
    NEEDS_TOKEN,
    TOKEN_KEPT_AT_MOST,
    TOKEN_KEY,
    AccountMailTokens,
    account_mail_kind,
    account_mail_values,
)
from polyclinic.messaging.delivery.models import ERROR_LENGTH, Delivery, DeliveryStatus
from polyclinic.messaging.preferences.services import locale_for, reach_for
from polyclinic.messaging.templates.services import BASE_LOCALE, Rendered, Templates
from polyclinic.scheduling.appointments.lifecycle import check_in_token
from polyclinic.scheduling.appointments.models import Appointment
from polyclinic.scheduling.appointments.reminders import REMINDER_EVENT, reminder_holds
from polyclinic.scheduling.setup.models import Practitioner, Service
from polyclinic.tenancy.naming import clinic_url
from polyclinic.web.tokens import TokenSigner
from polyclinic.worker.jobs import enqueue
from polyclinic.worker.outbox import DUE_AT, OutboxEvent

logger = logging.getLogger("polyclinic.messaging")


DELIVER_JOB = "deliver_event"


QUOTA_KIND = "quota_threshold"


# Outbox events that message the patient, and the template kind of each.
PATIENT_MESSAGES = {
    "appointment.confirmed": "appointment_confirmation",
    REMINDER_EVENT: "appointment_reminder",
    "appointment.rescheduled": "appointment_rescheduled",
    "appointment.cancelled": "appointment_cancelled",
    "appointment.no_show": "no_show_follow_up",
}


RETRYABLE = (DeliveryStatus.PENDING, DeliveryStatus.FAILED)


UNANSWERED = (
    "the provider gave no answer and may have the message, so it is not sent again unless retried"
)


ACCOUNT_MAIL_LOST = (
    "the service stopped before this mail was sent; its one-time code was not kept, so the "
    "person asks for a new one"
)


# Account mail whose event still holds its sealed code (the others cannot be sent again).
_CODE_KEPT = and_(OutboxEvent.kind.startswith(EVENT_PREFIX), OutboxEvent.payload.has_key(TOKEN_KEY))


# Where a delivery no longer needs its event's code: the code is erased then.
_DONE_WITH_CODE = (DeliveryStatus.SENT, DeliveryStatus.NOT_SENT, DeliveryStatus.UNCONFIRMED)


STALE_REMINDER = "the appointment moved, was cancelled or has begun"


# What someone may send again by hand.
RESENDABLE = (DeliveryStatus.FAILED, DeliveryStatus.NOT_SENT, DeliveryStatus.UNCONFIRMED)


INTERRUPTED = (
    "the worker stopped while the provider was being called; the provider may have the "
    "message, so it is not sent again unless retried"
)


class DeliveryFailed(Exception):
    """Some of an event's deliveries failed; raised so the job is retried with backoff."""


@dataclass(frozen=True)
class Recipient:
    user_id: uuid.UUID
    channel: str
    address: str
    # Why nothing goes out (the user opted out of the channel): recorded `not_sent`.
    refused: str | None = None


async def relay_outbox(
    session: AsyncSession,
    broker: dramatiq.Broker,
    *,
    again_after: datetime.timedelta,
    limit: int = 500,
) -> int:
    """Send one `deliver_event` job, carrying the clinic, per event of the session's clinic
    that is due and unrelayed, or relayed long ago and never finished; each is marked relayed
    only once its job is enqueued. If the broker cannot be reached the error is raised and
    the events not yet enqueued stay for the next run."""
    clinic = clinic_of(session)
    now = utcnow()
    due = or_(
        and_(OutboxEvent.relayed_at.is_(None), now >= DUE_AT),
        and_(
            OutboxEvent.finished_at.is_(None),
            OutboxEvent.relayed_at < now - again_after,
        ),
    )
    events = (
        await session.scalars(
            select(OutboxEvent)
            .where(due)
            .order_by(DUE_AT)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()
    relayed = 0
    try:
        with in_clinic(clinic):
            for event in events:
                if (
                    event.kind in PATIENT_MESSAGES
                    or event.kind == QUOTA_THRESHOLD_EVENT
                    or account_mail_kind(event) is not None
                ):
                    enqueue(broker, DELIVER_JOB, str(event.id))
                else:  # nobody to tell
                    event.finished_at = utcnow()
                event.relayed_at = utcnow()
                relayed += 1
    finally:
        # Those enqueued are marked; the rest are unlocked, still unrelayed.
        await session.commit()
    return relayed


async def close_abandoned(session: AsyncSession, claim: datetime.timedelta) -> int:
    """Deliveries no job will come back for, marked for a person to see: a claim older than
    the claim time on a finished event (a hand retry or an account mail whose process
    stopped mid-send), and account mail still pending after it whose code was not kept
    (stopped before the send). Codes older than any code lives are erased."""
    now = utcnow()
    cutoff = now - claim
    finished = select(OutboxEvent.id).where(OutboxEvent.finished_at.is_not(None))
    claims = await session.execute(
        update(Delivery)
        .where(
            Delivery.status == DeliveryStatus.SENDING,
            Delivery.sending_at < cutoff,
            Delivery.outbox_event_id.in_(finished),
        )
        .values(status=DeliveryStatus.UNCONFIRMED, reason=INTERRUPTED, updated_at=now)
    )
    mail = await session.execute(
        update(Delivery)
        .where(
            Delivery.status == DeliveryStatus.PENDING,
            Delivery.kind.in_(NEEDS_TOKEN),
            Delivery.created_at < cutoff,
            Delivery.outbox_event_id.not_in(select(OutboxEvent.id).where(_CODE_KEPT)),
        )
        .values(status=DeliveryStatus.NOT_SENT, reason=ACCOUNT_MAIL_LOST, updated_at=now)
    )
    await session.execute(_erase_code(OutboxEvent.created_at < now - TOKEN_KEPT_AT_MOST))
    await session.commit()
    closed = claims.rowcount + mail.rowcount  # type: ignore[attr-defined]
    if closed:
        logger.warning("%d abandoned deliveries marked for a person to see", closed)
    return int(closed)


def claim_time(settings: Settings) -> datetime.timedelta:
    return datetime.timedelta(seconds=settings.delivery_claim_seconds)


def relay_again(settings: Settings) -> datetime.timedelta:
    return datetime.timedelta(seconds=settings.outbox_relay_again_seconds)


async def deliver(
    engine: AsyncEngine,
    settings: Settings,
    clinic: TenantInfo,
    event_id: uuid.UUID,
    *,
    token: str | None = None,
) -> list[Delivery]:
    """Make the event's deliveries, send those not sent yet; raises `DeliveryFailed` when
    any failed, or is held by another worker that may have died (the job's next attempt
    takes them up). The event is finished only when none is held elsewhere. `token` is an
    account mail's code when the caller has it (else it is opened from the event); once no
    delivery needs it any more, it is erased from the event."""
    async with clinic_session(engine, clinic) as session:
        ids = await prepare(session, event_id)
        senders: dict[str, Sender] = {}  # one per channel for the event's deliveries
        done = [
            await send(session, settings, delivery_id, senders, token=token) for delivery_id in ids
        ]
        held = [d for d in done if d is None or d.status == DeliveryStatus.SENDING]
        if not held:
            await session.execute(
                update(OutboxEvent)
                .where(OutboxEvent.id == event_id, OutboxEvent.finished_at.is_(None))
                .values(finished_at=utcnow())
            )
            if done and all(d is not None and d.status in _DONE_WITH_CODE for d in done):
                await session.execute(_erase_code(OutboxEvent.id == event_id))
            await session.commit()
    failed = [d for d in done if d is not None and d.status == DeliveryStatus.FAILED]
    if failed or held:
        raise DeliveryFailed(
            f"of {len(ids)} deliveries of event {event_id}, {len(failed)} failed and "
            f"{len(held)} are held by another worker; retried later"
        )
    return [d for d in done if d is not None]


async def prepare(session: AsyncSession, event_id: uuid.UUID) -> list[uuid.UUID]:
    """The event's deliveries, made once (a second run finds them made)."""
    # Locked: two runs of one event make its deliveries one after the other.
    event = await session.scalar(
        select(OutboxEvent).where(OutboxEvent.id == event_id).with_for_update()
    )
    if event is None:
        await session.commit()
        return []
    if event.kind == REMINDER_EVENT and not await reminder_holds(session, event):
        await _drop_reminder(session, event)
        return []
    kind, recipients = await _recipients(session, event)
    if recipients:
        now = utcnow()
        await session.execute(
            insert(Delivery)
            .values(
                [
                    {
                        "id": uuid.uuid4(),
                        "outbox_event_id": event.id,
                        "kind": kind,
                        "channel": r.channel,
                        "recipient_id": r.user_id,
                        "address": r.address,
                        "status": DeliveryStatus.NOT_SENT if r.refused else DeliveryStatus.PENDING,
                        "reason": r.refused,
                        "attempts": 0,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for r in recipients
                ]
            )
            .on_conflict_do_nothing(constraint="uq_deliveries_event_recipient_channel")
        )
    ids = list(
        await session.scalars(
            select(Delivery.id)
            .where(Delivery.outbox_event_id == event.id)
            .order_by(Delivery.created_at, Delivery.channel)
        )
    )
    await session.commit()
    return ids


async def _drop_reminder(session: AsyncSession, event: OutboxEvent) -> None:
    await session.execute(
        update(Delivery)
        .where(Delivery.outbox_event_id == event.id, Delivery.status.in_(RETRYABLE))
        .values(status=DeliveryStatus.NOT_SENT, reason=STALE_REMINDER, updated_at=utcnow())
    )
    await session.commit()
    logger.info("reminder %s dropped: %s", event.id, STALE_REMINDER)


async def _recipients(session: AsyncSession, event: OutboxEvent) -> tuple[str, list[Recipient]]:
    if event.kind in PATIENT_MESSAGES:
        patient = await session.get(User, uuid.UUID(event.payload["patientId"]))
        if patient is None:
            return PATIENT_MESSAGES[event.kind], []
        return PATIENT_MESSAGES[event.kind], _reachable(patient, ("email", "sms", "whatsapp"))
    if (kind := account_mail_kind(event)) is not None:
        recipient = uuid.UUID(event.payload["recipientId"])
        return kind, [Recipient(recipient, "email", event.payload["to"])]
    if event.kind == QUOTA_THRESHOLD_EVENT:
        admins = await session.scalars(
            select(User).where(User.role == Role.CLINIC_ADMIN, User.is_active.is_(True))
        )
        return QUOTA_KIND, [r for admin in admins for r in _reachable(admin, ("email",))]
    return "", []


def _reachable(user: User, channels: tuple[str, ...]) -> list[Recipient]:
    """The user's channels by their preferences; an opt-out is kept as a refused recipient
    (a channel without an address has nothing to record)."""
    return [
        Recipient(user.id, reach.channel, reach.address, reach.refused)
        for reach in reach_for(user, channels)
        if reach.address is not None
    ]


async def send(
    session: AsyncSession,
    settings: Settings,
    delivery_id: uuid.UUID,
    senders: dict[str, Sender] | None = None,
    *,
    token: str | None = None,
) -> Delivery | None:
    """Send one delivery unless it is sent already or another worker holds it (None).
    Commits its outcome; never raises for the provider's refusal (the row says it).
    `token`: an account mail's code, when the caller has it."""
    delivery = await _locked(session, delivery_id, skip_locked=True)
    if delivery is None or delivery.status not in RETRYABLE:
        if delivery is not None and delivery.status == DeliveryStatus.SENDING:
            _unless_in_flight(delivery, settings)
        await session.commit()
        return delivery
    try:
        event = await session.get_one(OutboxEvent, delivery.outbox_event_id)
        # A retry, by hand or by the job, may come after the patient opted out or the
        # appointment moved: checked again each time.
        unwanted = await _unwanted(session, delivery, event, token)
        senders = {} if senders is None else senders
        if delivery.channel not in senders:
            senders[delivery.channel] = await sender_for(session, settings, delivery.channel)
        sender = senders[delivery.channel]
        if unwanted is None and sender.provider is None:
            unwanted = sender.reason
        if unwanted is not None:
            delivery.status = DeliveryStatus.NOT_SENT
            delivery.reason = unwanted
            await session.commit()
            logger.info("delivery %s not sent: %s", delivery.id, unwanted)
            return delivery
        provider = sender.provider
        assert provider is not None
        rendered = await _render(session, settings, delivery, event, token)
    except DomainError as exc:  # stored settings unusable, secrets unreadable, bad template
        delivery.attempts += 1
        return await _record_failure(session, delivery, str(exc))
    except Exception as exc:  # the database or a bug: recorded, and the job retries
        await session.rollback()
        delivery = await _locked(session, delivery_id)
        assert delivery is not None
        delivery.attempts += 1
        error = f"the message could not be prepared ({type(exc).__name__})"
        return await _record_failure(session, delivery, error)
    delivery.attempts += 1
    delivery.provider = sender.provider_name
    delivery.status = DeliveryStatus.SENDING
    delivery.sending_at = claimed_at = utcnow()
    await session.commit()  # the claim outlives this worker, should it die mid-send
    try:
        message_id = await provider.send(
            OutgoingMessage(
                channel=delivery.channel,
                to=delivery.address,
                body=rendered.body,
                subject=rendered.subject,
                idempotency_key=str(delivery.id),
            )
        )
    except OutcomeUnknown as exc:
        return await _unconfirmed(session, delivery_id, claimed_at, str(exc))
    except (UpstreamFailed, InvalidInput) as exc:
        error: str | None = str(exc)
    except Exception as exc:
        error = f"the send failed unexpectedly ({type(exc).__name__})"
    else:
        error = None
    delivery = await _locked(session, delivery_id)
    assert delivery is not None
    if delivery.sending_at != claimed_at:  # another attempt took over meanwhile
        await session.commit()
        return delivery
    if error is not None:
        return await _record_failure(session, delivery, error)
    delivery.status = DeliveryStatus.SENT
    delivery.provider_message_id = message_id
    delivery.sent_at = utcnow()
    delivery.last_error = None
    delivery.reason = None
    await session.commit()
    logger.info(
        "delivery %s sent through %s (provider message id %s)",
        delivery.id,
        delivery.provider,
        delivery.provider_message_id,
    )
    return delivery


async def _unconfirmed(
    session: AsyncSession, delivery_id: uuid.UUID, claimed_at: datetime.datetime, error: str
) -> Delivery:
    delivery = await _locked(session, delivery_id)
    assert delivery is not None
    if delivery.sending_at == claimed_at:
        delivery.status = DeliveryStatus.UNCONFIRMED
        delivery.last_error = error[:ERROR_LENGTH]
        delivery.reason = UNANSWERED
        logger.warning("delivery %s unconfirmed: %s", delivery.id, error)
    await session.commit()
    return delivery


async def _unwanted(
    session: AsyncSession, delivery: Delivery, event: OutboxEvent, token: str | None
) -> str | None:
    """Why the delivery should no longer go out, else None."""
    if (kind := account_mail_kind(event)) is not None:
        # Account mail goes whatever the person's message preferences, if it can.
        kept = token is not None or TOKEN_KEY in event.payload
        return ACCOUNT_MAIL_LOST if kind in NEEDS_TOKEN and not kept else None
    if event.kind == REMINDER_EVENT and not await reminder_holds(session, event):
        return STALE_REMINDER
    recipient = await session.get(User, delivery.recipient_id)
    if recipient is not None:
        reach = reach_for(recipient, (delivery.channel,))
        if not reach:
            return f"the recipient no longer accepts {delivery.channel}"
        if reach[0].refused is not None:
            return reach[0].refused
    return None


async def _locked(
    session: AsyncSession, delivery_id: uuid.UUID, *, skip_locked: bool = False
) -> Delivery | None:
    return await session.scalar(
        select(Delivery)
        .where(Delivery.id == delivery_id)
        .with_for_update(skip_locked=skip_locked)
        .execution_options(populate_existing=True)
    )


def _unless_in_flight(delivery: Delivery, settings: Settings) -> None:
    """A claim older than the claim time is a worker that died mid-send."""
    assert delivery.sending_at is not None
    if utcnow() - delivery.sending_at > claim_time(settings):
        delivery.status = DeliveryStatus.UNCONFIRMED
        delivery.reason = INTERRUPTED
        logger.warning("delivery %s unconfirmed: %s", delivery.id, INTERRUPTED)


async def _record_failure(session: AsyncSession, delivery: Delivery, error: str) -> Delivery:
    _failed(delivery, error)
    await session.commit()
    logger.warning(
        "delivery %s failed (attempt %d): %s", delivery.id, delivery.attempts, delivery.last_error
    )
    return delivery


def _failed(delivery: Delivery, error: str) -> None:
    """A failed attempt; `error` is the provider's reason with secrets masked, or our own."""
    delivery.status = DeliveryStatus.FAILED
    delivery.last_error = error[:ERROR_LENGTH]


async def retry(session: AsyncSession, settings: Settings, delivery_id: uuid.UUID) -> Delivery:
    """A failed or not-sent delivery back to pending, and sent now."""
    delivery = await session.scalar(
        select(Delivery).where(Delivery.id == delivery_id).with_for_update()
    )
    if delivery is None:
        raise NotFound("No delivery with this id")
    if delivery.kind in ACCOUNT_MAIL_KINDS:
        raise Conflict(
            "Account mail carries a one-time code that is not kept; "
            "the person asks for a new one instead"
        )
    if delivery.status not in RESENDABLE:
        raise Conflict(
            "Only failed, not sent or unconfirmed deliveries are retried; "
            f"this one is {delivery.status}"
        )
    senders = await _sender_unless_lapsed(session, settings, delivery.channel)
    delivery.status = DeliveryStatus.PENDING
    delivery.reason = None
    await session.commit()
    sent = await send(session, settings, delivery_id, senders)
    if sent is None:
        raise Conflict("Another worker is sending this delivery now")
    return sent


async def _sender_unless_lapsed(
    session: AsyncSession, settings: Settings, channel: str
) -> dict[str, Sender] | None:
    """402, and nothing changed, when the message would need the platform's provider that
    the clinic's standing does not allow; a sender that cannot be built is left to `send`,
    which records why."""
    try:
        sender = await sender_for(session, settings, channel)
    except DomainError:
        return None
    if sender.lapsed:
        raise PaymentRequired(f"Not sent: {sender.reason}; a clinic admin can settle it in billing")
    return {channel: sender}


async def list_deliveries(
    session: AsyncSession, status: str | None, limit: int, offset: int
) -> tuple[list[Delivery], int]:
    query = select(Delivery)
    if status is not None:
        query = query.where(Delivery.status == status)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = await session.scalars(
        query.order_by(Delivery.created_at.desc(), Delivery.id).limit(limit).offset(offset)
    )
    return list(rows), total or 0


async def _render(
    session: AsyncSession,
    settings: Settings,
    delivery: Delivery,
    event: OutboxEvent,
    token: str | None,
) -> Rendered:
    clinic = clinic_of(session)
    clinic_name = clinic.name
    if (kind := account_mail_kind(event)) is not None:
        if token is None:
            token = await AccountMailTokens(settings).open(session, event)
        # An invitee has no account yet: the clinic's default language then.
        user = await session.get(User, delivery.recipient_id)
        locale = locale_for(user) if user is not None else BASE_LOCALE
        values = account_mail_values(settings, clinic, kind, event, token)
        return await Templates(session).render(kind, "email", locale, values)
    if delivery.kind == QUOTA_KIND:
        return _quota_message(clinic_name, event.payload)
    context = await _visit_values(session, settings, clinic, clinic_name, delivery.kind, event)
    recipient = await session.get_one(User, delivery.recipient_id)
    return await Templates(session).render(
        delivery.kind, delivery.channel, locale_for(recipient), context
    )


def _quota_message(clinic_name: str, payload: dict[str, Any]) -> Rendered:
    percent, used, included = payload["percent"], payload["used"], payload["included"]
    return Rendered(
        f"{clinic_name} has used {percent}% of its appointments this period",
        f"Hello,\n\n{clinic_name} has booked {used} of the {included} appointments its "
        f"{payload['plan']} plan includes in the period from {payload['periodStart'][:10]} "
        f"to {payload['periodEnd'][:10]} ({percent}%).\nAppointments beyond the plan are "
        "billed as overage; a larger plan may suit the clinic better.\n\nPolyclinic",
    )


async def _visit_values(
    session: AsyncSession,
    settings: Settings,
    clinic: TenantInfo,
    clinic_name: str,
    kind: str,
    event: OutboxEvent,
) -> dict[str, Any]:
    payload = event.payload
    zone = ZoneInfo(clinic.timezone)
    patient = await session.get_one(User, uuid.UUID(payload["patientId"]))
    practitioner = await session.get_one(Practitioner, uuid.UUID(payload["practitionerId"]))
    service = await session.get_one(Service, uuid.UUID(payload["serviceId"]))
    values: dict[str, Any] = {
        "clinic_name": clinic_name,
        "patient_name": f"{patient.first_name} {patient.last_name}".strip(),
        "practitioner_name": practitioner.display_name,
        "service_name": service.name,
        "starts_at": local_time(payload["startsAt"], zone),
    }
    if kind in ("appointment_confirmation", "appointment_reminder"):
        appointment = await session.get_one(Appointment, uuid.UUID(payload["appointmentId"]))
        values["check_in_code"] = check_in_token(
            TokenSigner(settings), clinic.id, appointment, settings.check_in_opens_minutes
        )
    elif kind == "appointment_rescheduled":
        values["previous_starts_at"] = local_time(payload["previousStartsAt"], zone)
    elif kind == "appointment_cancelled":
        appointment = await session.get_one(Appointment, uuid.UUID(payload["appointmentId"]))
        values["reason"] = appointment.cancel_reason or "no reason was given"
    elif kind == "no_show_follow_up":
        values["booking_url"] = clinic_url(settings, clinic.slug, "/book")
    return values


def local_time(iso: str, zone: ZoneInfo) -> str:
    """`Mon 1 Mar 2027, 10:30` in the clinic's zone."""
    at = datetime.datetime.fromisoformat(iso).astimezone(zone)
    return f"{at:%a} {at.day} {at:%b %Y, %H:%M}"


def _erase_code(which: Any) -> Any:
    """Drop the sealed code from the account mail events `which` selects."""
    return (
        update(OutboxEvent)
        .where(which, _CODE_KEPT)
        .values(payload=OutboxEvent.payload.op("-", return_type=JSONB)(literal(TOKEN_KEY, Text)))
    )
