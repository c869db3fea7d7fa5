"""Shared set-up for the benchmarks: a throwaway database, settings, clinics, a bigger schema."""

from __future__ import annotations

import datetime
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import polyclinic.models  # noqa: E402, F401  (every clinic model, for the table count)
from polyclinic.billing.models import Plan  # noqa: E402
from polyclinic.billing.plans import DEFAULT_PLANS  # noqa: E402
from polyclinic.config import Settings, load_settings  # noqa: E402
from polyclinic.db.base import tenant_metadata, utcnow  # noqa: E402
from polyclinic.db.engine import create_sync_engine  # noqa: E402
from polyclinic.db.migrations import upgrade_shared  # noqa: E402
from polyclinic.db.scratch import scratch_database  # noqa: E402
from polyclinic.scheduling.setup.models import (  # noqa: E402
    BookingPolicy,
    Practitioner,
    Service,
    ServicePractitioner,
    WeeklyHours,
)
from polyclinic.tenancy.migrations import TENANT_MIGRATIONS, tenant_head  # noqa: E402


@contextmanager
def bench_database(**overrides: str) -> Iterator[Settings]:
    """A fresh database with the shared schemas; dropped afterwards with its clinic roles."""
    with scratch_database("polyclinic_bench") as url:
        settings = load_settings(
            {
                "DATABASE_URL": url,
                "BASE_DOMAIN": "clinics.bench",
                "JWT_SIGNING_KEY": "bench-" + "k" * 40,
                **overrides,
            }
        )
        engine = create_sync_engine(settings, pool_size=1)
        upgrade_shared(engine)
        with Session(engine) as session:  # the default plans: each clinic starts a trial
            session.add_all(Plan(version=1, status="active", **values) for values in DEFAULT_PLANS)
            session.commit()
        engine.dispose()
        yield settings


# More tables shaped like a clinic's (keys, foreign keys, indexes), so the schema has the
# twelve tables the django-tenants figures were measured with.
# Padding tables, named so they never meet a real clinic table.
_EXTRA_TABLES = [f"bench_table_{n:02}" for n in range(1, 12)]
CLINIC_TABLES = 12


def clinic_sized_tree(workdir: Path) -> Path:
    """The real clinic tree, padded to at least twelve tables with clinic-shaped ones."""
    tree = workdir / "tenants_migrations"
    shutil.copytree(TENANT_MIGRATIONS, tree, ignore=shutil.ignore_patterns("__pycache__"))
    head = tenant_head()
    body = []
    previous = None
    for table in _EXTRA_TABLES[: max(0, CLINIC_TABLES - len(tenant_metadata.tables))]:
        fk = (
            f'sa.Column("{previous}_id", sa.Uuid(), sa.ForeignKey("{previous}.id"), index=True),'
            if previous
            else ""
        )
        body.append(
            f'''    op.create_table(
        "{table}",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="active"),
        sa.Column("notes", sa.Text()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        {fk}
    )
    op.create_index("ix_{table}_created_at", "{table}", ["created_at"])'''
        )
        previous = table
    revision = f'''"""Clinic-shaped tables for the benchmarks, at least twelve in all.

Revision ID: bench12
Revises: {head}
"""

import sqlalchemy as sa
from alembic import op

revision = "bench12"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
{chr(10).join(body) or "    pass"}


def downgrade() -> None:
    pass
'''
    (tree / "versions" / "29990101_bench12_clinic_tables.py").write_text(revision)
    return tree


@contextmanager
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="polyclinic-bench-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def summary(samples_ms: list[float]) -> str:
    return (
        f"p50 {statistics.median(samples_ms):6.1f} ms  p95 {percentile(samples_ms, 0.95):6.1f} ms"
        f"  mean {statistics.fmean(samples_ms):6.1f} ms  (n={len(samples_ms)})"
    )


def machine() -> str:
    cpu = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, {cpu}"


def server_version(settings: Settings) -> str:
    engine = create_sync_engine(settings, pool_size=1)
    with engine.connect() as connection:
        version = connection.scalar(text("SHOW server_version"))
    engine.dispose()
    return f"PostgreSQL {version}"


def print_result(figures: dict[str, object]) -> None:
    """The run's figures as the last line, `RESULT {json}`, for whatever collects them."""
    print("RESULT " + json.dumps(figures, sort_keys=True), flush=True)


async def bookable_practitioner(
    session: AsyncSession,
    doctor_id: object,
    *,
    minutes: int,
    opens: datetime.time,
    closes: datetime.time,
    horizon_days: int,
) -> tuple[Practitioner, Service]:
    """A verified practitioner offering one free in-person service of `minutes`, open every
    day from `opens` to `closes`, bookable at no notice up to `horizon_days` ahead."""
    practitioner = Practitioner(
        user_id=doctor_id, display_name="Dr D", specialty="GP", verified_at=utcnow()
    )
    service = Service(
        name="Consultation",
        duration_minutes=minutes,
        price_minor=0,
        currency="EUR",
        mode="in_person",
    )
    session.add_all([practitioner, service])
    await session.flush()
    session.add(ServicePractitioner(service_id=service.id, practitioner_id=practitioner.id))
    session.add_all(
        WeeklyHours(practitioner_id=practitioner.id, weekday=day, starts=opens, ends=closes)
        for day in range(7)
    )
    await session.execute(
        update(BookingPolicy).values(min_notice_minutes=0, horizon_days=horizon_days)
    )
    await session.flush()
    return practitioner, service
