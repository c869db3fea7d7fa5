"""Two-factor sign-in for platform super-admins.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "users", sa.Column("mfa_secret", sa.String(255), nullable=True), schema="platform"
    )
    op.add_column(
        "users",
        sa.Column(
            "mfa_enabled_at", advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=True
        ),
        schema="platform",
    )
    op.add_column(
        "users",
        sa.Column("mfa_recovery_hashes", postgresql.JSONB(), nullable=True),
        schema="platform",
    )
    op.add_column(
        "users", sa.Column("mfa_last_step", sa.BigInteger(), nullable=True), schema="platform"
    )


def downgrade() -> None:
    for column in ("mfa_last_step", "mfa_recovery_hashes", "mfa_enabled_at", "mfa_secret"):
        op.drop_column("users", column, schema="platform")
