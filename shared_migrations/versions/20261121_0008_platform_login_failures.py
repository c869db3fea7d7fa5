"""Super-admins' failed sign-ins, counted in the platform schema, so their lockout holds
without Redis.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # No grant to the clinic roles: only the platform signs its operators in.
    op.create_table(
        "login_failures",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("expires_at", advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("locked_until", advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_login_failures")),
        schema="platform",
    )
    op.create_index(
        op.f("ix_platform_login_failures_expires_at"),
        "login_failures",
        ["expires_at"],
        schema="platform",
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_platform_login_failures_expires_at"), "login_failures", schema="platform"
    )
    op.drop_table("login_failures", schema="platform")
