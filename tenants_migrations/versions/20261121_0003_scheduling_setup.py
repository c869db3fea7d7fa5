"""Scheduling set-up: practitioners, services and who offers them, weekly hours, date
exceptions, the booking policy (one row); contact details on the clinic profile.

Revision ID: t0003
Revises: t0002
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op

revision: str = "t0003"
down_revision: str | Sequence[str] | None = "t0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=nullable)


def _practitioner_fk() -> sa.Column:
    return sa.Column(
        "practitioner_id",
        sa.Uuid(),
        sa.ForeignKey("practitioners.id", ondelete="CASCADE"),
        nullable=False,
    )


def upgrade() -> None:
    op.add_column("clinic_profile", sa.Column("phone", sa.String(40), nullable=True))
    op.add_column("clinic_profile", sa.Column("address", sa.String(500), nullable=True))
    op.add_column("clinic_profile", sa.Column("contact_email", sa.String(320), nullable=True))
    op.create_table(
        "practitioners",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "user_id", sa.Uuid(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("specialty", sa.String(100), nullable=False),
        sa.Column("bio", sa.Text(), nullable=False),
        _ts("verified_at", nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.UniqueConstraint("user_id", name=op.f("uq_practitioners_user_id")),
    )
    op.create_table(
        "services",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("duration_minutes", sa.Integer(), nullable=False),
        sa.Column("price_minor", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("mode", sa.String(10), nullable=False),
        sa.Column("buffer_before_minutes", sa.Integer(), nullable=False),
        sa.Column("buffer_after_minutes", sa.Integer(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.UniqueConstraint("name", name=op.f("uq_services_name")),
        sa.CheckConstraint("duration_minutes BETWEEN 5 AND 480", name=op.f("ck_services_duration")),
        sa.CheckConstraint("price_minor >= 0", name=op.f("ck_services_price_not_negative")),
        sa.CheckConstraint("mode IN ('in_person', 'video')", name=op.f("ck_services_mode")),
        sa.CheckConstraint(
            "buffer_before_minutes BETWEEN 0 AND 120 AND buffer_after_minutes BETWEEN 0 AND 120",
            name=op.f("ck_services_buffers"),
        ),
    )
    op.create_table(
        "service_practitioners",
        sa.Column(
            "service_id",
            sa.Uuid(),
            sa.ForeignKey("services.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "practitioner_id",
            sa.Uuid(),
            sa.ForeignKey("practitioners.id", ondelete="CASCADE"),
            primary_key=True,
        ),
    )
    op.create_index(
        op.f("ix_service_practitioners_practitioner_id"),
        "service_practitioners",
        ["practitioner_id"],
    )
    op.create_table(
        "weekly_hours",
        sa.Column("id", sa.Uuid(), primary_key=True),
        _practitioner_fk(),
        sa.Column("weekday", sa.SmallInteger(), nullable=False),
        sa.Column("starts", sa.Time(), nullable=False),
        sa.Column("ends", sa.Time(), nullable=False),
        sa.CheckConstraint("weekday BETWEEN 0 AND 6", name=op.f("ck_weekly_hours_weekday")),
        sa.CheckConstraint("starts < ends", name=op.f("ck_weekly_hours_starts_before_ends")),
    )
    op.create_index(op.f("ix_weekly_hours_practitioner_id"), "weekly_hours", ["practitioner_id"])
    op.create_table(
        "availability_exceptions",
        sa.Column("id", sa.Uuid(), primary_key=True),
        _practitioner_fk(),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(5), nullable=False),
        sa.Column("starts", sa.Time(), nullable=True),
        sa.Column("ends", sa.Time(), nullable=True),
        sa.Column("reason", sa.String(200), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.CheckConstraint(
            "kind IN ('off', 'extra')", name=op.f("ck_availability_exceptions_kind")
        ),
        sa.CheckConstraint(
            "(starts IS NULL AND ends IS NULL AND kind = 'off') OR (starts < ends)",
            name=op.f("ck_availability_exceptions_times"),
        ),
    )
    op.create_index(
        op.f("ix_availability_exceptions_practitioner_id"),
        "availability_exceptions",
        ["practitioner_id"],
    )
    op.create_table(
        "booking_policy",
        sa.Column("id", sa.SmallInteger(), primary_key=True),
        sa.Column("min_notice_minutes", sa.Integer(), nullable=False),
        sa.Column("horizon_days", sa.Integer(), nullable=False),
        sa.Column("cancellation_notice_hours", sa.Integer(), nullable=False),
        sa.Column("slot_granularity_minutes", sa.Integer(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.CheckConstraint("id = 1", name=op.f("ck_booking_policy_single_row")),
        sa.CheckConstraint(
            "min_notice_minutes BETWEEN 0 AND 43200", name=op.f("ck_booking_policy_min_notice")
        ),
        sa.CheckConstraint(
            "horizon_days BETWEEN 1 AND 730", name=op.f("ck_booking_policy_horizon")
        ),
        sa.CheckConstraint(
            "cancellation_notice_hours BETWEEN 0 AND 720",
            name=op.f("ck_booking_policy_cancellation"),
        ),
        sa.CheckConstraint(
            "slot_granularity_minutes IN (5, 10, 15, 20, 30, 60)",
            name=op.f("ck_booking_policy_granularity"),
        ),
    )
    op.execute(
        "INSERT INTO booking_policy (id, min_notice_minutes, horizon_days,"
        " cancellation_notice_hours, slot_granularity_minutes, created_at, updated_at)"
        " VALUES (1, 120, 90, 24, 15, now(), now())"
    )


def downgrade() -> None:
    for table in (
        "booking_policy",
        "availability_exceptions",
        "weekly_hours",
        "service_practitioners",
        "services",
        "practitioners",
    ):
        op.drop_table(table)
    for column in ("contact_email", "address", "phone"):
        op.drop_column("clinic_profile", column)
