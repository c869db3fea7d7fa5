"""The clinic's outbox: events written in the same transaction as the change that causes
them, for messaging to relay after commit (so a broker outage loses nothing)."""

from __future__ import annotations

import datetime
import logging
import uuid
from typing import Any

import dramatiq
from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import Index, String, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from polyclinic.db.base import TenantBase, UUIDKey, utcnow
from polyclinic.db.context import TenantInfo, in_clinic
from polyclinic.worker.jobs import enqueue


class OutboxEvent(UUIDKey, TenantBase):
    __tablename__ = "outbox"
    __table_args__ = (
        # What is due first among the unrelayed (reminders wait for their time).
        Index(
            "ix_outbox_due",
            text("coalesce(due_at, created_at)"),
            postgresql_where=text("relayed_at IS NULL"),
        ),
        Index(
            "ix_outbox_unfinished",
            "relayed_at",
            postgresql_where=text("relayed_at IS NOT NULL AND finished_at IS NULL"),
        ),
        Index("ix_outbox_subject_id", "subject_id"),
    )

    kind: Mapped[str] = mapped_column(String(60))
    subject_id: Mapped[uuid.UUID | None] = mapped_column()
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime.datetime] = mapped_column(DateTimeUTC(timezone=True))
    relayed_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    # Not relayed before this time (reminders).
    due_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    # The event's job has run to its end; until then a relayed event is relayed again after
    # a while, in case its job was lost.
    finished_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True))


logger = logging.getLogger("polyclinic.messaging")

OUTBOX_WRITTEN = "outbox_written"
# When an event may be relayed: its due time, else at once.
DUE_AT = func.coalesce(OutboxEvent.due_at, OutboxEvent.created_at)


def record(
    session: AsyncSession,
    kind: str,
    subject_id: uuid.UUID | None,
    payload: dict[str, Any],
    *,
    due_at: datetime.datetime | None = None,
) -> None:
    """Add an event to the caller's transaction (relayed once `due_at` has come, if given)."""
    session.add(
        OutboxEvent(
            id=uuid.uuid4(),
            kind=kind,
            subject_id=subject_id,
            payload=payload,
            created_at=utcnow(),
            due_at=due_at,
        )
    )
    # For the request's end: a relay is asked for at once, not at the next periodic run.
    session.info[OUTBOX_WRITTEN] = True


# The job that relays one clinic's outbox (declared by messaging's delivery).
NUDGE_JOB = "relay_clinic_outbox"


def nudge_relay(broker: dramatiq.Broker, clinic: TenantInfo) -> None:
    """Ask for the clinic's outbox to be relayed now. Blocking (call it off the event loop);
    a broker that cannot be reached is logged, and the periodic relay takes the events."""
    with in_clinic(clinic):
        try:
            enqueue(broker, NUDGE_JOB)
        except Exception as exc:
            logger.warning("outbox left to the periodic relay (%s)", type(exc).__name__)
