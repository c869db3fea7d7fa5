"""Migrating many clinics: one revision adding a column and an index, applied to every clinic.

The baseline, measured in the same run, is the same two statements executed directly on
each schema from one connection, one transaction per clinic.

    uv run python bench/migrate_all.py [--clinics 1000] [--jobs 2]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from pathlib import Path

from _common import (
    CLINIC_TABLES,
    bench_database,
    clinic_sized_tree,
    machine,
    print_result,
    server_version,
    workdir,
)
from sqlalchemy import text

from polyclinic.config import Settings
from polyclinic.db.base import tenant_metadata
from polyclinic.db.engine import create_app_engine, create_sync_engine
from polyclinic.platform.lifecycle import clinic_provisioner
from polyclinic.tenancy.migrations import migrate_tenants, tenant_head, tenant_script
from polyclinic.tenancy.provisioning import NewClinic

REVISION = '''"""A reference on users, indexed.

Revision ID: bench13
Revises: bench12
"""

import sqlalchemy as sa
from alembic import op

revision = "bench13"
down_revision = "bench12"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("reference", sa.String(40), nullable=True))
    op.create_index("ix_users_reference", "users", ["reference"])


def downgrade() -> None:
    op.drop_index("ix_users_reference", "users")
    op.drop_column("users", "reference")
'''


async def provision(settings: Settings, tree: Path, count: int) -> None:
    engine = create_app_engine(settings, pool_size=2)
    provisioner = clinic_provisioner(engine, settings, migrations=tree)
    for _ in range(count):
        sub = f"m{uuid.uuid4().hex[:10]}"
        await provisioner.create(NewClinic(sub, sub, "UTC", f"o@{sub}.test"))
    await engine.dispose()


def direct_baseline(settings: Settings, count: int) -> float:
    """Seconds to apply the same DDL directly to `count` fresh schemas of the same shape."""
    engine = create_sync_engine(settings, pool_size=1)
    with engine.connect() as connection:
        schemas = (
            connection.execute(
                text("SELECT schema_name FROM platform.tenants ORDER BY slug LIMIT :n"),
                {"n": count},
            )
            .scalars()
            .all()
        )
    started = time.perf_counter()
    with engine.connect() as connection:
        for schema in schemas:
            with connection.begin():
                connection.exec_driver_sql(
                    f'ALTER TABLE "{schema}".users ADD COLUMN reference_direct varchar(40); '
                    f'CREATE INDEX ix_direct_ref ON "{schema}".users (reference_direct)',
                    execution_options={"no_parameters": True},
                )
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clinics", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    with workdir() as tmp, bench_database() as settings:
        tree = clinic_sized_tree(tmp)
        started = time.perf_counter()
        asyncio.run(provision(settings, tree, args.clinics))
        print(
            f"{args.clinics} clinics at {tenant_head(tree)} "
            f"({max(CLINIC_TABLES, len(tenant_metadata.tables))} tables), "
            f"made in {time.perf_counter() - started:.1f} s"
        )
        (tree / "versions" / "29990102_bench13_reference.py").write_text(REVISION)
        tenant_script.cache_clear()  # the release brings a new head

        started = time.perf_counter()
        report = migrate_tenants(settings, jobs=args.jobs, location=tree)
        migrate_s = time.perf_counter() - started
        assert report.ok and len(report.migrated) == args.clinics, report.failed

        started = time.perf_counter()
        idle = migrate_tenants(settings, jobs=args.jobs, location=tree)
        idle_s = time.perf_counter() - started
        assert idle.migrated == []

        baseline_s = direct_baseline(settings, args.clinics)
        per_clinic = migrate_s * 1000 / args.clinics
        baseline_per = baseline_s * 1000 / args.clinics
        print(f"machine: {machine()}; {server_version(settings)}")
        print(
            f"migrate {args.clinics} clinics, --jobs {args.jobs}: {migrate_s:6.2f} s wall "
            f"({per_clinic:.1f} ms per clinic; target <= 10 s)"
        )
        print(f"nothing to do over {args.clinics} clinics:  {idle_s:6.2f} s wall (target <= 1 s)")
        print(
            f"baseline, same DDL direct, 1 connection: {baseline_s:6.2f} s "
            f"({baseline_per:.1f} ms per clinic)"
        )
        print(f"ratio runner/direct: {migrate_s / baseline_s:.2f}x")
        print_result(
            {
                "bench": "migrate_all",
                "clinics": args.clinics,
                "jobs": args.jobs,
                "migrate_s": round(migrate_s, 3),
                "idle_s": round(idle_s, 3),
                "baseline_s": round(baseline_s, 3),
                "ratio_runner_to_direct": round(migrate_s / baseline_s, 3),
            }
        )


if __name__ == "__main__":
    main()
