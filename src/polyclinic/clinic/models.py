"""The clinic's own profile, in the clinic schema."""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from polyclinic.db.base import TenantBase, Timestamps, UUIDKey


class ClinicProfile(UUIDKey, Timestamps, TenantBase):
    __tablename__ = "clinic_profile"

    name: Mapped[str] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64))
    phone: Mapped[str | None] = mapped_column(String(40))
    address: Mapped[str | None] = mapped_column(String(500))
    contact_email: Mapped[str | None] = mapped_column(String(320))
