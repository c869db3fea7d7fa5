"""The trail's entries, its chain head and emergency access grants (clinic schema)."""

from __future__ import annotations

import datetime
import uuid

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from polyclinic.db.base import TenantBase, UUIDKey, utcnow


class AuditEntry(UUIDKey, TenantBase):
    """One access to protected health information. Append-only: the clinic's role may add
    and read entries, never change or remove them. `hash` covers the entry's content and
    `prev_hash`, the hash of the entry before it (`chain.py`)."""

    __tablename__ = "audit_entries"
    __table_args__ = (
        Index("ix_audit_entries_patient_id_seq", "patient_id", "seq"),
        Index("ix_audit_entries_actor_id_seq", "actor_id", "seq"),
    )

    seq: Mapped[int] = mapped_column(BigInteger, unique=True)
    occurred_at: Mapped[datetime.datetime] = mapped_column(
        DateTimeUTC(timezone=True), default=utcnow, index=True
    )
    actor_id: Mapped[uuid.UUID | None]
    actor_role: Mapped[str | None] = mapped_column(String(20))
    patient_id: Mapped[uuid.UUID | None]
    action: Mapped[str] = mapped_column(String(40))
    resource: Mapped[str] = mapped_column(String(40))
    resource_id: Mapped[uuid.UUID | None]
    request_id: Mapped[str | None] = mapped_column(String(128))
    ip: Mapped[str | None] = mapped_column(String(64))
    emergency: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str | None] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditChainHead(TenantBase):
    """The clinic's one chain head: the last entry's position and hash. Writers lock this
    row, so concurrent requests append to a single chain; the verifier compares it with the
    last entry, so entries removed from the end are found too."""

    __tablename__ = "audit_chain_head"
    __table_args__ = (CheckConstraint("id = 1", name="one_row"),)

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str | None] = mapped_column(String(64))


class EmergencyGrant(UUIDKey, TenantBase):
    """A staff member opened a patient's chart in an emergency, with a reason, until
    `expires_at`."""

    __tablename__ = "emergency_grants"
    __table_args__ = (Index("ix_emergency_grants_user_id_patient_id", "user_id", "patient_id"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    patient_id: Mapped[uuid.UUID] = mapped_column(index=True)
    reason: Mapped[str] = mapped_column(Text)
    granted_at: Mapped[datetime.datetime] = mapped_column(
        DateTimeUTC(timezone=True), default=utcnow, index=True
    )
    expires_at: Mapped[datetime.datetime] = mapped_column(DateTimeUTC(timezone=True))
