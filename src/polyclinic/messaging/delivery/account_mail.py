"""Account mail (email verification, password reset, staff invitations, a patient's
invitation to claim the record the clinic made) through the clinic's
email provider, else the platform's default where the clinic's plan allows, in the clinic's
own wording, and recorded in the clinic's delivery log so its admins see what failed.

Each message gets an outbox event (already relayed and finished: there is no job for it) and
one delivery. The one-time code is in the message only: not in the event, the delivery or
the log, so such a delivery cannot be sent again later; a new code must be asked for.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from polyclinic.config import Settings
from polyclinic.db.base import utcnow
from polyclinic.db.context import TenantInfo, in_clinic
from polyclinic.db.session import clinic_session
from polyclinic.errors import DomainError
from polyclinic.identity.accounts.models import User
from polyclinic.messaging.channels.providers import OutgoingMessage
from polyclinic.messaging.channels.providers.base import OutcomeUnknown
from polyclinic.messaging.channels.services import sender_for
from polyclinic.messaging.delivery.models import (
    ERROR_LENGTH,
    REASON_LENGTH,
    Delivery,
    DeliveryStatus,
)
from polyclinic.messaging.preferences.services import locale_for
from polyclinic.messaging.templates.services import BASE_LOCALE, Templates
from polyclinic.tenancy.naming import clinic_url
from polyclinic.worker.mail import MailMessage
from polyclinic.worker.outbox import OutboxEvent

logger = logging.getLogger("polyclinic.messaging")

# The template kinds of account mail (also the deliveries' `kind`), and the page of the
# clinic's site each one's link opens; the token goes in its query.
ACCOUNT_MAIL_LINKS = {
    "email_verification": "/verify-email",
    "password_reset": "/reset-password",
    "staff_invitation": "/accept-invitation",
    "already_registered": "/forgot-password",
    "account_claim": "/claim-account",
}
ACCOUNT_MAIL_KINDS = frozenset(ACCOUNT_MAIL_LINKS)
# The outbox event of an account mail is `account.<kind>`.
EVENT_PREFIX = "account."


class ClinicMailer:
    """The app's `Mailer`: each message through its clinic's sender, recorded."""

    def __init__(self, engine: AsyncEngine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings

    async def send(self, message: MailMessage) -> None:
        with in_clinic(message.clinic):
            async with clinic_session(self.engine, message.clinic) as session:
                await self._send(session, message.clinic, message)

    async def _send(self, session: AsyncSession, clinic: TenantInfo, message: MailMessage) -> None:
        delivery_id = await _record(session, message)
        try:
            sender = await sender_for(session, self.settings, "email")
            if sender.provider is None:
                reason = (sender.reason or "nobody can send it")[:REASON_LENGTH]
                await _update(session, delivery_id, status=DeliveryStatus.NOT_SENT, reason=reason)
                logger.info("%s mail (delivery %s) not sent: %s", message.kind, delivery_id, reason)
                return
            # An invitee has no account yet: the clinic's default language then.
            user = await session.get(User, message.recipient_id)
            locale = locale_for(user) if user is not None else BASE_LOCALE
            rendered = await Templates(session).render(
                message.kind, "email", locale, self._values(clinic, message)
            )
            # Claimed, as other deliveries are while their provider answers; nothing is held
            # in the database meanwhile.
            await _update(
                session,
                delivery_id,
                status=DeliveryStatus.SENDING,
                sending_at=utcnow(),
                attempts=1,
                provider=sender.provider_name,
            )
            provider_message_id = await sender.provider.send(
                OutgoingMessage(
                    channel="email",
                    to=message.to,
                    body=rendered.body,
                    subject=rendered.subject,
                    idempotency_key=str(delivery_id),
                )
            )
        except OutcomeUnknown as exc:  # the provider may have it: not failed, not sent
            await _update(
                session,
                delivery_id,
                status=DeliveryStatus.UNCONFIRMED,
                last_error=exc.message[:ERROR_LENGTH],
            )
            logger.warning("%s mail (delivery %s) unconfirmed: %s", message.kind, delivery_id, exc)
        except DomainError as exc:  # refused, unreachable, unusable settings or template
            await _failed(session, delivery_id, message.kind, exc.message)
        except Exception as exc:
            error = f"the send failed unexpectedly ({type(exc).__name__})"
            await _failed(session, delivery_id, message.kind, error)
        else:
            await _update(
                session,
                delivery_id,
                status=DeliveryStatus.SENT,
                provider_message_id=provider_message_id,
                sent_at=utcnow(),
            )
            logger.info(
                "%s mail (delivery %s) sent through %s (provider message id %s)",
                message.kind,
                delivery_id,
                sender.provider_name,
                provider_message_id,
            )

    def _values(self, clinic: TenantInfo, message: MailMessage) -> dict[str, Any]:
        path = ACCOUNT_MAIL_LINKS[message.kind]
        if message.token is not None:
            path = f"{path}?token={message.token}"
        return {
            **message.values,
            "clinic_name": clinic.name,
            "link": clinic_url(self.settings, clinic.slug, path),
        }


async def _record(session: AsyncSession, message: MailMessage) -> uuid.UUID:
    """The message's event and its delivery (pending), committed; the delivery's id."""
    if message.kind not in ACCOUNT_MAIL_KINDS:
        raise ValueError(f"{message.kind!r} is not a kind of account mail")
    now = utcnow()
    event = OutboxEvent(
        id=uuid.uuid4(),
        kind=EVENT_PREFIX + message.kind,
        subject_id=message.recipient_id,
        payload={"recipientId": str(message.recipient_id)},
        created_at=now,
        # Nothing for the relay to do: the message is sent here, once.
        relayed_at=now,
        finished_at=now,
    )
    delivery = Delivery(
        id=uuid.uuid4(),
        outbox_event_id=event.id,
        kind=message.kind,
        channel="email",
        recipient_id=message.recipient_id,
        address=message.to,
        status=DeliveryStatus.PENDING,
        attempts=0,
    )
    session.add(event)
    await session.flush()  # the delivery refers to it
    session.add(delivery)
    await session.commit()
    return delivery.id


async def _update(session: AsyncSession, delivery_id: uuid.UUID, **values: Any) -> None:
    # Whatever a failure left half done is dropped first.
    await session.rollback()
    await session.execute(
        update(Delivery).where(Delivery.id == delivery_id).values(updated_at=utcnow(), **values)
    )
    await session.commit()


async def _failed(session: AsyncSession, delivery_id: uuid.UUID, kind: str, error: str) -> None:
    """A failed send; `error` is the provider's reason (secrets masked) or our own."""
    await _update(
        session,
        delivery_id,
        status=DeliveryStatus.FAILED,
        attempts=1,
        last_error=error[:ERROR_LENGTH],
    )
    logger.warning("%s mail (delivery %s) failed: %s", kind, delivery_id, error)
