"""Billing lifecycle: when a subscription lapsed, and who suspended a clinic and why.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import advanced_alchemy.types.datetime
import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "subscriptions",
        sa.Column(
            "lapsed_since",
            advanced_alchemy.types.datetime.DateTimeUTC(timezone=True),
            nullable=True,
        ),
        schema="billing",
    )
    op.add_column(
        "tenants",
        sa.Column("suspended_by", sa.String(length=20), nullable=True),
        schema="platform",
    )
    op.add_column(
        "tenants", sa.Column("suspension_reason", sa.Text(), nullable=True), schema="platform"
    )


def downgrade() -> None:
    op.drop_column("tenants", "suspension_reason", schema="platform")
    op.drop_column("tenants", "suspended_by", schema="platform")
    op.drop_column("subscriptions", "lapsed_since", schema="billing")
