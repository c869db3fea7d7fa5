"""Platform registry: tenants, domains, super-admins; the clinic group role and its grants.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import advanced_alchemy.types
import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CLINIC_GROUP_ROLE = "polyclinic_clinic"
STATUSES = ("provisioning", "active", "suspended", "deleted", "failed")


def _timestamps() -> list[sa.Column]:
    return [
        sa.Column("created_at", advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False),
        sa.Column("updated_at", advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS platform")
    op.execute("CREATE SCHEMA IF NOT EXISTS billing")
    # Roles belong to the cluster, not the database: create the group role only once.
    op.execute(
        f"""DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{CLINIC_GROUP_ROLE}') THEN
                CREATE ROLE {CLINIC_GROUP_ROLE} NOLOGIN;
            END IF;
        END $$"""
    )
    status = sa.Enum(*STATUSES, name="tenant_status", schema="platform")
    op.create_table(
        "tenants",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("slug", sa.String(40), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("schema_name", sa.String(63), nullable=False),
        sa.Column("db_role", sa.String(63), nullable=False),
        sa.Column("status", status, nullable=False),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("admin_email", sa.String(320), nullable=False),
        sa.Column("schema_version", sa.String(64), nullable=True),
        sa.Column("migration_failed", sa.Boolean(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("deleted_at", advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=True),
        sa.Column("purged_at", advanced_alchemy.types.DateTimeUTC(timezone=True), nullable=True),
        *_timestamps(),
        sa.UniqueConstraint("slug", name=op.f("uq_tenants_slug")),
        sa.UniqueConstraint("schema_name", name=op.f("uq_tenants_schema_name")),
        sa.UniqueConstraint("db_role", name=op.f("uq_tenants_db_role")),
        schema="platform",
    )
    op.create_index(op.f("ix_platform_tenants_status"), "tenants", ["status"], schema="platform")
    op.create_index(
        op.f("ix_platform_tenants_schema_version"), "tenants", ["schema_version"], schema="platform"
    )
    op.create_table(
        "domains",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column(
            "tenant_id",
            sa.Uuid(),
            sa.ForeignKey("platform.tenants.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("host", sa.String(253), nullable=False),
        sa.Column("is_primary", sa.Boolean(), nullable=False),
        *_timestamps(),
        sa.UniqueConstraint("host", name=op.f("uq_domains_host")),
        schema="platform",
    )
    op.create_index(
        op.f("ix_platform_domains_tenant_id"), "domains", ["tenant_id"], schema="platform"
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        *_timestamps(),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
        schema="platform",
    )
    # A clinic role sees its own registry row and nothing else of the platform.
    op.execute(f"GRANT USAGE ON SCHEMA platform TO {CLINIC_GROUP_ROLE}")
    op.execute(f"GRANT SELECT ON platform.tenants TO {CLINIC_GROUP_ROLE}")
    op.execute("ALTER TABLE platform.tenants ENABLE ROW LEVEL SECURITY")
    op.execute(
        f"CREATE POLICY tenant_reads_own_row ON platform.tenants FOR SELECT "
        f"TO {CLINIC_GROUP_ROLE} USING (db_role = current_user)"
    )


def downgrade() -> None:
    op.drop_table("users", schema="platform")
    op.drop_table("domains", schema="platform")
    op.drop_table("tenants", schema="platform")
    sa.Enum(name="tenant_status", schema="platform").drop(op.get_bind())
    op.execute(f"REVOKE ALL ON SCHEMA platform FROM {CLINIC_GROUP_ROLE}")
