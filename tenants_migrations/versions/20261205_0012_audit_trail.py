"""The audit trail of protected health information, and emergency access to a chart.

`audit_entries` is append-only: the clinic's role may add and read entries, never change,
remove or truncate them (privileges revoked), and a trigger refuses any change or removal
whoever tries, so only someone able to turn triggers off can alter the trail, and the hash
chain (`polyclinic audit verify`) still shows it. `audit_chain_head` holds the chain's last
position and hash (one row, locked by each writer). `emergency_grants` are the charts opened
in an emergency.

Revision ID: t0012
Revises: t0011
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op

revision: str = "t0012"
down_revision: str | Sequence[str] | None = "t0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_CLINIC_ROLE = "DO $$ BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = current_schema()) THEN "


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "audit_entries",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        _ts("occurred_at"),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("actor_role", sa.String(20), nullable=True),
        sa.Column("patient_id", sa.Uuid(), nullable=True),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("resource", sa.String(40), nullable=False),
        sa.Column("resource_id", sa.Uuid(), nullable=True),
        sa.Column("request_id", sa.String(128), nullable=True),
        sa.Column("ip", sa.String(64), nullable=True),
        sa.Column("emergency", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.UniqueConstraint("seq", name=op.f("uq_audit_entries_seq")),
    )
    op.create_index(op.f("ix_audit_entries_occurred_at"), "audit_entries", ["occurred_at"])
    op.create_index("ix_audit_entries_patient_id_seq", "audit_entries", ["patient_id", "seq"])
    op.create_index("ix_audit_entries_actor_id_seq", "audit_entries", ["actor_id", "seq"])
    op.create_table(
        "audit_chain_head",
        sa.Column("id", sa.SmallInteger(), primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(64), nullable=True),
        sa.CheckConstraint("id = 1", name=op.f("ck_audit_chain_head_one_row")),
    )
    op.execute("INSERT INTO audit_chain_head (id, seq, hash) VALUES (1, 0, NULL)")
    op.create_table(
        "emergency_grants",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "user_id", sa.Uuid(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        _ts("granted_at"),
        _ts("expires_at"),
    )
    op.create_index(op.f("ix_emergency_grants_patient_id"), "emergency_grants", ["patient_id"])
    op.create_index(op.f("ix_emergency_grants_granted_at"), "emergency_grants", ["granted_at"])
    op.create_index(
        "ix_emergency_grants_user_id_patient_id", "emergency_grants", ["user_id", "patient_id"]
    )
    op.execute(
        "CREATE FUNCTION audit_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
        "BEGIN RAISE EXCEPTION 'the audit trail is append-only: % refused', TG_OP "
        "USING ERRCODE = 'insufficient_privilege'; END $$"
    )
    op.execute(
        "CREATE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE ON audit_entries "
        "FOR EACH ROW EXECUTE FUNCTION audit_entries_append_only()"
    )
    op.execute(
        "CREATE TRIGGER audit_entries_no_truncate BEFORE TRUNCATE ON audit_entries "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_entries_append_only()"
    )
    # The clinic's role (named like its schema) adds and reads entries, moves the chain head,
    # and never changes or removes an entry, nor the head.
    op.execute(
        _CLINIC_ROLE + "EXECUTE 'REVOKE UPDATE, DELETE, TRUNCATE ON audit_entries FROM ' "
        "|| quote_ident(current_schema()); "
        "EXECUTE 'REVOKE DELETE, TRUNCATE ON audit_chain_head FROM ' "
        "|| quote_ident(current_schema()); END IF; END $$"
    )


def downgrade() -> None:
    op.drop_table("emergency_grants")
    op.drop_table("audit_chain_head")
    op.drop_table("audit_entries")
    op.execute("DROP FUNCTION audit_entries_append_only()")
