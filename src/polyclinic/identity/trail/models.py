"""The auth event trail: sign-ins, failures, changes to accounts (clinic schema)."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from polyclinic.db.base import TenantBase, UUIDKey, utcnow


class AuthEvent(UUIDKey, TenantBase):
    """Append-only: the clinic's role may insert and read, never change or delete."""

    __tablename__ = "auth_events"

    occurred_at: Mapped[datetime.datetime] = mapped_column(
        DateTimeUTC(timezone=True), default=utcnow, index=True
    )
    event: Mapped[str] = mapped_column(String(40))
    user_id: Mapped[uuid.UUID | None] = mapped_column(index=True)
    actor_id: Mapped[uuid.UUID | None]
    email: Mapped[str | None] = mapped_column(String(320))
    ip: Mapped[str | None] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(128))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
