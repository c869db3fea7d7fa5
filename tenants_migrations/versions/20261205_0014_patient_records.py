"""Patients managed by staff: an email is optional (a record made at the desk has none until
the patient claims an account), each patient's demographics, emergency contact and insurance,
and the log of merged duplicate records.

Revision ID: t0014
Revises: t0013
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "t0014"
down_revision: str | Sequence[str] | None = "t0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEXES = "sex IN ('female', 'male', 'other', 'unknown')"


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=nullable)


def _text(name: str, length: int) -> sa.Column:
    return sa.Column(name, sa.String(length), nullable=True)


def upgrade() -> None:
    op.alter_column("users", "email", existing_type=sa.String(320), nullable=True)
    op.create_table(
        "patient_profiles",
        sa.Column(
            "user_id",
            sa.Uuid(),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        _text("sex", 10),
        _text("address_line1", 200),
        _text("address_line2", 200),
        _text("city", 100),
        _text("postal_code", 20),
        _text("region", 100),
        _text("country", 2),
        _text("emergency_name", 200),
        _text("emergency_relation", 50),
        _text("emergency_phone", 40),
        _text("insurance_payer", 200),
        _text("insurance_member_id", 100),
        _text("insurance_group", 100),
        sa.Column(
            "registered_by",
            sa.Uuid(),
            sa.ForeignKey("users.id", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("merged_into_id", sa.Uuid(), sa.ForeignKey("users.id"), nullable=True),
        _ts("merged_at", nullable=True),
        _ts("created_at"),
        _ts("updated_at"),
        sa.CheckConstraint(SEXES, name=op.f("ck_patient_profiles_sex")),
        sa.CheckConstraint(
            "merged_into_id IS NULL OR merged_into_id <> user_id",
            name=op.f("ck_patient_profiles_not_merged_into_itself"),
        ),
    )
    op.create_index(
        op.f("ix_patient_profiles_merged_into_id"), "patient_profiles", ["merged_into_id"]
    )
    op.create_table(
        "patient_merges",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("survivor_id", sa.Uuid(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("duplicate_id", sa.Uuid(), sa.ForeignKey("users.id"), nullable=False),
        sa.Column("merged_by", sa.Uuid(), nullable=True),
        sa.Column("duplicate_email", sa.String(320), nullable=True),
        sa.Column("moved", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        _ts("merged_at"),
        sa.UniqueConstraint("duplicate_id", name=op.f("uq_patient_merges_duplicate_id")),
    )
    op.create_index(op.f("ix_patient_merges_survivor_id"), "patient_merges", ["survivor_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_patient_merges_survivor_id"), table_name="patient_merges")
    op.drop_table("patient_merges")
    op.drop_index(op.f("ix_patient_profiles_merged_into_id"), table_name="patient_profiles")
    op.drop_table("patient_profiles")
    # Records made at the desk have no email; they cannot go back to a schema that needs one.
    op.execute("DELETE FROM users WHERE email IS NULL")
    op.alter_column("users", "email", existing_type=sa.String(320), nullable=False)
