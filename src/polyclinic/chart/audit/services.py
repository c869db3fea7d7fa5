"""Writing the trail: `record` appends entries to the clinic's chain in the caller's own
transaction, so an entry exists exactly when the work it describes commits, and a request
whose entry cannot be written fails.

Writers serialise per clinic on the chain head row (locked until their transaction ends):
concurrent requests each append after the one before, and the chain stays one line. So a
route records last, right before it commits, to hold that lock for as short as it can.
"""

from __future__ import annotations

import enum
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.chart.audit.chain import chain_start, entry_hash
from polyclinic.chart.audit.models import AuditChainHead, AuditEntry
from polyclinic.db.base import utcnow
from polyclinic.db.session import clinic_of
from polyclinic.errors import Unavailable

logger = logging.getLogger("polyclinic.audit")

NOT_RECORDED = "The access could not be recorded in the audit trail, so it was refused; try again"


class Action(enum.StrEnum):
    READ = "read"
    LIST = "list"
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    EXPORT = "export"
    EMERGENCY_ACCESS = "emergency_access"


@dataclass(frozen=True)
class Actor:
    """Who acted, and from where: the same for every entry of one request."""

    user_id: uuid.UUID | None
    role: str | None
    request_id: str | None = None
    ip: str | None = None


@dataclass(frozen=True)
class Event:
    """What was done to whose data."""

    action: str
    resource: str
    patient_id: uuid.UUID | None
    resource_id: uuid.UUID | None = None
    emergency: bool = False
    reason: str | None = None


async def _lock_head(session: AsyncSession) -> tuple[int, str | None]:
    """The chain head, locked until the transaction ends (made on first use)."""
    statement = (
        pg_insert(AuditChainHead)
        .values(id=1, seq=0, hash=None)
        .on_conflict_do_update(index_elements=["id"], set_={"id": AuditChainHead.id})
        .returning(AuditChainHead.seq, AuditChainHead.hash)
    )
    seq, head_hash = (await session.execute(statement)).one()
    return seq, head_hash


async def record(session: AsyncSession, actor: Actor, *events: Event) -> list[int]:
    """Append one entry per event to the clinic's chain, in the session's transaction.

    Nothing is committed here: the entries commit, or roll back, with the caller's work.
    Raises `Unavailable` (503) when the entries cannot be written; the caller's transaction
    is then unusable and the request fails.
    """
    if not events:
        return []
    clinic = clinic_of(session)
    await session.flush()  # the caller's own pending changes fail as themselves, not as ours
    try:
        seq, previous = await _lock_head(session)
        previous = previous or chain_start(clinic.id)
        rows: list[dict[str, Any]] = []
        for event in events:
            seq += 1
            row: dict[str, Any] = {
                "id": uuid.uuid4(),
                "seq": seq,
                "occurred_at": utcnow(),
                "actor_id": actor.user_id,
                "actor_role": actor.role,
                "patient_id": event.patient_id,
                "action": str(event.action),
                "resource": event.resource,
                "resource_id": event.resource_id,
                "request_id": actor.request_id,
                "ip": actor.ip,
                "emergency": event.emergency,
                "reason": event.reason,
                "prev_hash": previous,
            }
            row["hash"] = previous = entry_hash(clinic.id, row)
            rows.append(row)
        await session.execute(insert(AuditEntry), rows)
        await session.execute(
            update(AuditChainHead).where(AuditChainHead.id == 1).values(seq=seq, hash=previous)
        )
    except SQLAlchemyError as exc:
        logger.error("audit entries of clinic %s could not be written", clinic.slug, exc_info=exc)
        raise Unavailable(NOT_RECORDED) from None
    return [row["seq"] for row in rows]


def events_for(action: str, resource: str, patient_ids: Sequence[uuid.UUID]) -> list[Event]:
    """One event per patient, each patient once (a page listing several patients)."""
    return [Event(action, resource, patient_id) for patient_id in dict.fromkeys(patient_ids)]
