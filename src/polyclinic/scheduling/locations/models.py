"""Rooms and sites, and their weekly opening hours (clinic schema)."""

from __future__ import annotations

import datetime
import uuid

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Identity,
    Integer,
    SmallInteger,
    String,
    Time,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from polyclinic.db.base import TenantBase, Timestamps, UUIDKey


class Location(UUIDKey, Timestamps, TenantBase):
    """A room or a site where services take place; with hours of its own, and never
    holding two appointments at once."""

    __tablename__ = "locations"
    __table_args__ = (
        UniqueConstraint("id", "lane", name="uq_locations_id_lane"),
        CheckConstraint("kind IN ('room', 'site')", name="kind"),
    )

    name: Mapped[str] = mapped_column(String(120), unique=True)
    kind: Mapped[str] = mapped_column(String(10))
    address: Mapped[str | None] = mapped_column(String(500))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    lane: Mapped[int] = mapped_column(Integer, Identity())


class LocationHours(UUIDKey, TenantBase):
    """When a location is open, per weekday (0 = Monday)."""

    __tablename__ = "location_hours"
    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday"),
        CheckConstraint("starts < ends", name="starts_before_ends"),
    )

    location_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("locations.id", ondelete="CASCADE"), index=True
    )
    weekday: Mapped[int] = mapped_column(SmallInteger)
    starts: Mapped[datetime.time] = mapped_column(Time)
    ends: Mapped[datetime.time] = mapped_column(Time)
