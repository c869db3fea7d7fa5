"""The app's `Mailer`: account mail sent in the process that wrote it, right after its
transaction commits, through the same delivery as the outbox relay's (so a mail the relay
also takes is still sent once)."""

from __future__ import annotations

import uuid

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.config import Settings
from polyclinic.db.base import utcnow
from polyclinic.db.context import TenantInfo, in_clinic
from polyclinic.db.session import clinic_session
from polyclinic.messaging.delivery.account_mail import TOKEN_KEY
from polyclinic.messaging.delivery.models import Delivery, DeliveryStatus
from polyclinic.messaging.delivery.services import DeliveryFailed, deliver
from polyclinic.worker.mail import MailMessage
from polyclinic.worker.outbox import OutboxEvent


class ClinicMailer:
    def __init__(self, engine: AsyncEngine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings

    async def send(self, message: MailMessage, event_id: uuid.UUID) -> None:
        clinic = message.clinic
        with in_clinic(clinic):
            async with clinic_session(self.engine, clinic) as session:
                # Taken here: the periodic relay leaves it alone unless it stays unfinished.
                await session.execute(
                    update(OutboxEvent)
                    .where(OutboxEvent.id == event_id, OutboxEvent.relayed_at.is_(None))
                    .values(relayed_at=utcnow())
                )
                await session.commit()
            try:
                await deliver(self.engine, self.settings, clinic, event_id, token=message.token)
            except DeliveryFailed:
                await self._retry_later(clinic, event_id)

    async def _retry_later(self, clinic: TenantInfo, event_id: uuid.UUID) -> None:
        """A failed send whose code is kept goes back to the relay, whose job retries it
        with backoff; without the code nothing can send it again."""
        async with clinic_session(self.engine, clinic) as session:
            failed = select(Delivery.id).where(
                Delivery.outbox_event_id == event_id, Delivery.status == DeliveryStatus.FAILED
            )
            await session.execute(
                update(OutboxEvent)
                .where(
                    OutboxEvent.id == event_id,
                    OutboxEvent.payload.has_key(TOKEN_KEY),
                    failed.exists(),
                )
                .values(relayed_at=None, finished_at=None)
            )
            await session.commit()
