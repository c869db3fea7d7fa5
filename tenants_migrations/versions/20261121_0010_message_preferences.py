"""Message preferences on users: the channels a user accepts messages on, and their language.

Email and SMS are on unless the user turns them off (an opt-out); WhatsApp needs an
explicit opt-in. A null locale means the clinic's default (`en`).

Revision ID: t0010
Revises: t0009
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "t0010"
down_revision: str | Sequence[str] | None = "t0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNELS = "message_channels <@ ARRAY['email', 'sms', 'whatsapp']::text[]"


def upgrade() -> None:
    op.add_column("users", sa.Column("locale", sa.String(12), nullable=True))
    op.add_column(
        "users",
        sa.Column(
            "message_channels",
            postgresql.ARRAY(sa.Text()),
            nullable=False,
            server_default=sa.text("'{email,sms}'"),
        ),
    )
    op.create_check_constraint(op.f("ck_users_message_channels"), "users", CHANNELS)


def downgrade() -> None:
    op.drop_constraint(op.f("ck_users_message_channels"), "users", type_="check")
    op.drop_column("users", "message_channels")
    op.drop_column("users", "locale")
