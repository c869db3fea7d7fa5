"""A patient's profile (1:1 with their user row) and the log of merged records (clinic schema)."""

from __future__ import annotations

import datetime
import uuid
from typing import Any

from advanced_alchemy.types import DateTimeUTC
from sqlalchemy import CheckConstraint, ForeignKey, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from polyclinic.db.base import TenantBase, Timestamps, UUIDKey, utcnow

SEXES = ("female", "male", "other", "unknown")  # FHIR's administrative gender


class PatientProfile(Timestamps, TenantBase):
    __tablename__ = "patient_profiles"
    __table_args__ = (
        CheckConstraint("sex IN ({})".format(", ".join(f"'{s}'" for s in SEXES)), name="sex"),
        CheckConstraint(
            "merged_into_id IS NULL OR merged_into_id <> user_id", name="not_merged_into_itself"
        ),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    sex: Mapped[str | None] = mapped_column(String(10))
    address_line1: Mapped[str | None] = mapped_column(String(200))
    address_line2: Mapped[str | None] = mapped_column(String(200))
    city: Mapped[str | None] = mapped_column(String(100))
    postal_code: Mapped[str | None] = mapped_column(String(20))
    region: Mapped[str | None] = mapped_column(String(100))
    country: Mapped[str | None] = mapped_column(String(2))
    emergency_name: Mapped[str | None] = mapped_column(String(200))
    emergency_relation: Mapped[str | None] = mapped_column(String(50))
    emergency_phone: Mapped[str | None] = mapped_column(String(40))
    insurance_payer: Mapped[str | None] = mapped_column(String(200))
    insurance_member_id: Mapped[str | None] = mapped_column(String(100))
    insurance_group: Mapped[str | None] = mapped_column(String(100))
    # The staff member who registered the patient; None for a self-registered patient.
    registered_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    # Set on a duplicate merged into another record: that record, which holds its rows now.
    merged_into_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"), index=True)
    merged_at: Mapped[datetime.datetime | None] = mapped_column(DateTimeUTC(timezone=True))


# The profile's own fields, as a merge fills the survivor's blanks from the duplicate.
PROFILE_FIELDS = (
    "sex",
    "address_line1",
    "address_line2",
    "city",
    "postal_code",
    "region",
    "country",
    "emergency_name",
    "emergency_relation",
    "emergency_phone",
    "insurance_payer",
    "insurance_member_id",
    "insurance_group",
)


class PatientMerge(UUIDKey, TenantBase):
    """One merge: which rows moved from the duplicate to the survivor, and the duplicate's
    email when the survivor already had one of its own."""

    __tablename__ = "patient_merges"

    survivor_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), index=True)
    duplicate_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), unique=True)
    merged_by: Mapped[uuid.UUID | None] = mapped_column()
    duplicate_email: Mapped[str | None] = mapped_column(String(320))
    # "<table>.<column>" -> how many rows moved.
    moved: Mapped[dict[str, Any]] = mapped_column(JSONB)
    merged_at: Mapped[datetime.datetime] = mapped_column(DateTimeUTC(timezone=True), default=utcnow)
