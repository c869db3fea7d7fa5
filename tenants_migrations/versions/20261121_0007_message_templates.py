"""Message templates: a clinic's own subject and body per message kind, channel and locale.

Revision ID: t0007
Revises: t0006
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op

revision: str = "t0007"
down_revision: str | Sequence[str] | None = "t0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "message_templates",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("locale", sa.String(12), nullable=False),
        sa.Column("subject", sa.String(300), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False),
        sa.UniqueConstraint(
            "kind", "channel", "locale", name=op.f("uq_message_templates_kind_channel_locale")
        ),
        sa.CheckConstraint(
            "channel IN ('email', 'sms', 'whatsapp')", name=op.f("ck_message_templates_channel")
        ),
    )


def downgrade() -> None:
    op.drop_table("message_templates")
