"""Messaging keys: the clinic's data keys, wrapped by the master key, and its channel
secrets, sealed under them.

Revision ID: t0005
Revises: t0004
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op

revision: str = "t0005"
down_revision: str | Sequence[str] | None = "t0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "data_keys",
        sa.Column("version", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("master_key_id", sa.String(300), nullable=False),
        _ts("created_at"),
        _ts("rewrapped_at", nullable=True),
        sa.PrimaryKeyConstraint("version", name=op.f("pk_data_keys")),
        sa.CheckConstraint("version >= 1", name=op.f("ck_data_keys_version_positive")),
    )
    op.create_table(
        "channel_secrets",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("provider", sa.String(40), nullable=False),
        sa.Column("name", sa.String(60), nullable=False),
        sa.Column(
            "key_version",
            sa.Integer(),
            sa.ForeignKey(
                "data_keys.version", name=op.f("fk_channel_secrets_key_version_data_keys")
            ),
            nullable=False,
        ),
        sa.Column("blob", sa.LargeBinary(), nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        sa.UniqueConstraint(
            "channel", "provider", "name", name=op.f("uq_channel_secrets_channel_provider_name")
        ),
        sa.CheckConstraint(
            "channel IN ('email', 'sms', 'whatsapp')", name=op.f("ck_channel_secrets_channel")
        ),
    )
    op.create_index(op.f("ix_channel_secrets_key_version"), "channel_secrets", ["key_version"])


def downgrade() -> None:
    op.drop_table("channel_secrets")
    op.drop_table("data_keys")
