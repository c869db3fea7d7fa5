"""Messaging channels: each channel's provider and its settings (the secrets stay sealed in
`channel_secrets`).

Revision ID: t0006
Revises: t0005
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "t0006"
down_revision: str | Sequence[str] | None = "t0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str) -> sa.Column:
    return sa.Column(name, advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "channel_settings",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("provider", sa.String(40), nullable=False),
        sa.Column("settings", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_channel_settings")),
        sa.UniqueConstraint("channel", name=op.f("uq_channel_settings_channel")),
        sa.CheckConstraint(
            "channel IN ('email', 'sms', 'whatsapp')", name=op.f("ck_channel_settings_channel")
        ),
    )


def downgrade() -> None:
    op.drop_table("channel_settings")
