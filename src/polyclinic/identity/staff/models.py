"""Staff invitations, accepted with an emailed one-time token (clinic schema)."""

from __future__ import annotations

import datetime
import uuid

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from polyclinic.db.base import TenantBase, Timestamps, UUIDKey
from polyclinic.identity.accounts.models import ROLE_VALUES


class Invitation(UUIDKey, Timestamps, TenantBase):
    __tablename__ = "invitations"
    __table_args__ = (CheckConstraint(f"role IN ({ROLE_VALUES})", name="role"),)

    email: Mapped[str] = mapped_column(String(320), index=True)
    role: Mapped[str] = mapped_column(String(20))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    invited_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    expires_at: Mapped[datetime.datetime] = mapped_column(DateTimeUTC(timezone=True))
    accepted_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
    revoked_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True))
