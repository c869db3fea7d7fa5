"""Failed sign-ins, counted in the clinic's own schema (per account and per client address),
so the lockout holds without Redis.

Revision ID: t0013
Revises: t0012
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op

revision: str = "t0013"
down_revision: str | Sequence[str] | None = "t0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "login_failures",
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("expires_at", advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("locked_until", advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_login_failures")),
    )
    op.create_index(op.f("ix_login_failures_expires_at"), "login_failures", ["expires_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_login_failures_expires_at"), "login_failures")
    op.drop_table("login_failures")
