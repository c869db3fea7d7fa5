"""The clinic's own profile, in the clinic schema."""

from __future__ import annotations

from sqlalchemy import String, Text, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from polyclinic.db.base import TenantBase, Timestamps, UUIDKey


class ClinicProfile(UUIDKey, Timestamps, TenantBase):
    __tablename__ = "clinic_profile"

    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    phone: Mapped[str | None] = mapped_column(String(40))
    address: Mapped[str | None] = mapped_column(String(500))
    contact_email: Mapped[str | None] = mapped_column(String(320))
    # Origins (`https://host[:port]`) whose pages may call the clinic's API (CORS).
    allowed_origins: Mapped[list[str]] = mapped_column(
        ARRAY(Text), default=list, server_default=text("'{}'")
    )
