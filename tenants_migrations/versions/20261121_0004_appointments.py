"""Appointments: locations (rooms or sites) with their hours, bookings with their history,
recurring series, card payments and the clinic's connected Stripe account, and the outbox
that carries events to messaging.

Double booking is refused by exclusion constraints over each practitioner's, and each
location's, blocked time (buffers included). Practitioners and locations are matched through
a numbered lane (`int4range` on an identity column) rather than `uuid WITH =`, which would
need the btree_gist extension; that keeps the schema buildable on any PostgreSQL, the
embedded one included.

Revision ID: t0004
Revises: t0003
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "t0004"
down_revision: str | Sequence[str] | None = "t0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HOLDS_TIME = "status IN ('pending_payment', 'confirmed', 'checked_in', 'in_progress', 'completed')"


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.add_column("practitioners", sa.Column("lane", sa.Integer(), sa.Identity(), nullable=False))
    op.create_unique_constraint(op.f("uq_practitioners_id_lane"), "practitioners", ["id", "lane"])
    op.create_table(
        "locations",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("address", sa.String(500), nullable=True),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("lane", sa.Integer(), sa.Identity(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.UniqueConstraint("name", name=op.f("uq_locations_name")),
        sa.UniqueConstraint("id", "lane", name=op.f("uq_locations_id_lane")),
        sa.CheckConstraint("kind IN ('room', 'site')", name=op.f("ck_locations_kind")),
    )
    op.create_table(
        "location_hours",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "location_id",
            sa.Uuid(),
            sa.ForeignKey("locations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("weekday", sa.SmallInteger(), nullable=False),
        sa.Column("starts", sa.Time(), nullable=False),
        sa.Column("ends", sa.Time(), nullable=False),
        sa.CheckConstraint("weekday BETWEEN 0 AND 6", name=op.f("ck_location_hours_weekday")),
        sa.CheckConstraint("starts < ends", name=op.f("ck_location_hours_starts_before_ends")),
    )
    op.create_index(op.f("ix_location_hours_location_id"), "location_hours", ["location_id"])
    op.add_column(
        "services",
        sa.Column("location_id", sa.Uuid(), sa.ForeignKey("locations.id"), nullable=True),
    )
    op.create_table(
        "appointment_series",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("every_days", sa.Integer(), nullable=False),
        sa.Column("occurrences", sa.Integer(), nullable=False),
        _ts("created_at"),
        sa.CheckConstraint("every_days BETWEEN 1 AND 91", name=op.f("ck_appointment_series_every")),
        sa.CheckConstraint(
            "occurrences BETWEEN 2 AND 52", name=op.f("ck_appointment_series_occurrences")
        ),
    )
    op.create_table(
        "appointments",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("practitioner_id", sa.Uuid(), nullable=False),
        sa.Column("practitioner_lane", sa.Integer(), nullable=False),
        sa.Column("service_id", sa.Uuid(), sa.ForeignKey("services.id"), nullable=False),
        sa.Column("patient_id", sa.Uuid(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("location_id", sa.Uuid(), nullable=True),
        sa.Column("location_lane", sa.Integer(), nullable=True),
        _ts("starts_at"),
        _ts("ends_at"),
        _ts("blocked_from"),
        _ts("blocked_until"),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("payment_method", sa.String(10), nullable=False),
        _ts("hold_expires_at", nullable=True),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("parent_id", sa.Uuid(), sa.ForeignKey("appointments.id"), nullable=True),
        sa.Column("series_id", sa.Uuid(), sa.ForeignKey("appointment_series.id"), nullable=True),
        sa.Column("series_index", sa.SmallInteger(), nullable=True),
        sa.Column("booked_by", sa.Uuid(), nullable=False),
        sa.Column("cancelled_by", sa.String(10), nullable=True),
        sa.Column("cancel_reason", sa.String(500), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.ForeignKeyConstraint(
            ["practitioner_id", "practitioner_lane"],
            ["practitioners.id", "practitioners.lane"],
            name=op.f("fk_appointments_practitioner_id_practitioners"),
        ),
        sa.ForeignKeyConstraint(
            ["location_id", "location_lane"],
            ["locations.id", "locations.lane"],
            name=op.f("fk_appointments_location_id_locations"),
        ),
        sa.CheckConstraint(
            "status IN ('pending_payment', 'confirmed', 'checked_in', 'in_progress',"
            " 'completed', 'cancelled', 'no_show')",
            name=op.f("ck_appointments_status"),
        ),
        sa.CheckConstraint(
            "payment_method IN ('in_clinic', 'card')", name=op.f("ck_appointments_payment_method")
        ),
        sa.CheckConstraint(
            "blocked_from <= starts_at AND starts_at < ends_at AND ends_at <= blocked_until",
            name=op.f("ck_appointments_times"),
        ),
        sa.CheckConstraint(
            "cancelled_by IS NULL OR cancelled_by IN ('patient', 'clinic', 'system')",
            name=op.f("ck_appointments_cancelled_by"),
        ),
        postgresql.ExcludeConstraint(
            (sa.text("int4range(practitioner_lane, practitioner_lane, '[]')"), "&&"),
            (sa.text("tstzrange(blocked_from, blocked_until)"), "&&"),
            where=sa.text(HOLDS_TIME),
            using="gist",
            name=op.f("ex_appointments_no_double_booking"),
        ),
        postgresql.ExcludeConstraint(
            (sa.text("int4range(location_lane, location_lane, '[]')"), "&&"),
            (sa.text("tstzrange(blocked_from, blocked_until)"), "&&"),
            where=sa.text(f"location_lane IS NOT NULL AND {HOLDS_TIME}"),
            using="gist",
            name=op.f("ex_appointments_no_double_booked_location"),
        ),
    )
    op.create_index(
        op.f("ix_appointments_practitioner_id_starts_at"),
        "appointments",
        ["practitioner_id", "starts_at"],
    )
    op.create_index(
        op.f("ix_appointments_patient_id_starts_at"), "appointments", ["patient_id", "starts_at"]
    )
    op.create_index(op.f("ix_appointments_starts_at"), "appointments", ["starts_at"])
    op.create_index(
        op.f("ix_appointments_hold_expires_at"),
        "appointments",
        ["hold_expires_at"],
        postgresql_where=sa.text("status = 'pending_payment'"),
    )
    op.create_index(op.f("ix_appointments_series_id"), "appointments", ["series_id"])
    op.create_table(
        "appointment_transitions",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "appointment_id",
            sa.Uuid(),
            sa.ForeignKey("appointments.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("from_status", sa.String(20), nullable=True),
        sa.Column("to_status", sa.String(20), nullable=False),
        sa.Column("by_user_id", sa.Uuid(), nullable=True),
        sa.Column("reason", sa.String(500), nullable=True),
        sa.Column("details", postgresql.JSONB(), nullable=False),
        _ts("at"),
    )
    op.create_index(
        op.f("ix_appointment_transitions_appointment_id"),
        "appointment_transitions",
        ["appointment_id"],
    )
    op.create_table(
        "payment_account",
        sa.Column("id", sa.SmallInteger(), primary_key=True),
        sa.Column("stripe_account_id", sa.String(64), nullable=False),
        sa.Column("charges_enabled", sa.Boolean(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.CheckConstraint("id = 1", name=op.f("ck_payment_account_single_row")),
        sa.UniqueConstraint("stripe_account_id", name=op.f("uq_payment_account_stripe_account_id")),
    )
    op.create_table(
        "payments",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("appointment_id", sa.Uuid(), sa.ForeignKey("appointments.id"), nullable=False),
        sa.Column("stripe_payment_intent_id", sa.String(64), nullable=False),
        sa.Column("amount_minor", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("platform_fee_minor", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("refunded_minor", sa.Integer(), nullable=False),
        sa.Column("stripe_refund_id", sa.String(64), nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.UniqueConstraint("appointment_id", name=op.f("uq_payments_appointment_id")),
        sa.UniqueConstraint(
            "stripe_payment_intent_id", name=op.f("uq_payments_stripe_payment_intent_id")
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'succeeded', 'canceled', 'refund_pending', 'refunded')",
            name=op.f("ck_payments_status"),
        ),
    )
    op.create_index(
        op.f("ix_payments_open"),
        "payments",
        ["status"],
        postgresql_where=sa.text("status IN ('pending', 'refund_pending')"),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("kind", sa.String(60), nullable=False),
        sa.Column("subject_id", sa.Uuid(), nullable=True),
        sa.Column("payload", postgresql.JSONB(), nullable=False),
        _ts("created_at"),
        _ts("relayed_at", nullable=True),
    )
    op.create_index(
        op.f("ix_outbox_unrelayed"),
        "outbox",
        ["created_at"],
        postgresql_where=sa.text("relayed_at IS NULL"),
    )


def downgrade() -> None:
    for table in (
        "outbox",
        "payments",
        "payment_account",
        "appointment_transitions",
        "appointments",
        "appointment_series",
    ):
        op.drop_table(table)
    op.drop_column("services", "location_id")
    op.drop_table("location_hours")
    op.drop_table("locations")
    op.drop_constraint(op.f("uq_practitioners_id_lane"), "practitioners")
    op.drop_column("practitioners", "lane")
