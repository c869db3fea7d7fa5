"""Reminders and send claims.

Outbox events may wait for a time (`due_at`, reminders) and are marked `finished_at` once a
worker has run their delivery to the end, so an event whose job was lost (a broker restarted
without persistence, a worker killed) is relayed again. A delivery is claimed `sending`
before its provider is called, so a worker killed mid-send leaves a trace and the message is
never sent twice. The booking policy holds the clinic's reminder offsets.

Revision ID: t0009
Revises: t0008
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "t0009"
down_revision: str | Sequence[str] | None = "t0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_STATUSES = "status IN ('pending', 'sent', 'failed', 'not_sent')"
NEW_STATUSES = "status IN ('pending', 'sending', 'sent', 'failed', 'not_sent', 'unconfirmed')"


def _ts(name: str) -> sa.Column:
    return sa.Column(name, advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=True)


def upgrade() -> None:
    op.add_column("outbox", _ts("due_at"))
    op.add_column("outbox", _ts("finished_at"))
    # Events relayed before finished_at existed count as finished: not relayed again.
    op.execute("UPDATE outbox SET finished_at = relayed_at WHERE relayed_at IS NOT NULL")
    op.drop_index(op.f("ix_outbox_unrelayed"), "outbox")
    op.create_index(
        op.f("ix_outbox_due"),
        "outbox",
        [sa.text("coalesce(due_at, created_at)")],
        postgresql_where=sa.text("relayed_at IS NULL"),
    )
    op.create_index(
        op.f("ix_outbox_unfinished"),
        "outbox",
        ["relayed_at"],
        postgresql_where=sa.text("relayed_at IS NOT NULL AND finished_at IS NULL"),
    )
    op.create_index(op.f("ix_outbox_subject_id"), "outbox", ["subject_id"])
    op.add_column("deliveries", _ts("sending_at"))
    op.alter_column("deliveries", "status", type_=sa.String(12))
    op.drop_constraint(op.f("ck_deliveries_status"), "deliveries", type_="check")
    op.create_check_constraint(op.f("ck_deliveries_status"), "deliveries", NEW_STATUSES)
    op.add_column(
        "booking_policy",
        sa.Column(
            "reminder_offsets_minutes",
            postgresql.ARRAY(sa.Integer()),
            nullable=False,
            server_default=sa.text("'{1440,60}'"),
        ),
    )
    op.create_check_constraint(
        op.f("ck_booking_policy_reminder_offsets"),
        "booking_policy",
        "cardinality(reminder_offsets_minutes) <= 5",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_booking_policy_reminder_offsets"), "booking_policy", type_="check")
    op.drop_column("booking_policy", "reminder_offsets_minutes")
    op.drop_constraint(op.f("ck_deliveries_status"), "deliveries", type_="check")
    op.execute("UPDATE deliveries SET status = 'failed' WHERE status IN ('sending', 'unconfirmed')")
    op.create_check_constraint(op.f("ck_deliveries_status"), "deliveries", OLD_STATUSES)
    op.alter_column("deliveries", "status", type_=sa.String(10))
    op.drop_column("deliveries", "sending_at")
    op.drop_index(op.f("ix_outbox_subject_id"), "outbox")
    op.drop_index(op.f("ix_outbox_unfinished"), "outbox")
    op.drop_index(op.f("ix_outbox_due"), "outbox")
    op.create_index(
        op.f("ix_outbox_unrelayed"),
        "outbox",
        ["created_at"],
        postgresql_where=sa.text("relayed_at IS NULL"),
    )
    op.drop_column("outbox", "finished_at")
    op.drop_column("outbox", "due_at")
