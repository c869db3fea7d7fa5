"""The master key in use: a value wrapped by it, unwrapped at every start-up.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import advanced_alchemy.types.datetime
import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # No grant to the clinic roles: only the platform reads it.
    op.create_table(
        "master_key_check",
        sa.Column("id", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("master_key_id", sa.String(length=300), nullable=False),
        sa.Column("check_blob", sa.LargeBinary(), nullable=False),
        sa.Column(
            "created_at",
            advanced_alchemy.types.datetime.DateTimeUTC(timezone=True),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            advanced_alchemy.types.datetime.DateTimeUTC(timezone=True),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_master_key_check")),
        sa.CheckConstraint("id = 1", name=op.f("ck_master_key_check_single_row")),
        schema="platform",
    )


def downgrade() -> None:
    op.drop_table("master_key_check", schema="platform")
