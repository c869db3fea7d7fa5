"""Provisioning speed: clinics created through the provisioning service, against the floor.

The floor is the same rendered DDL executed on its own (a bare schema, no role, no grants,
no registry), measured in the same run with the same clinics present.

    uv run python bench/provision.py [--clinics 200] [--present 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid

from _common import (
    bench_database,
    clinic_sized_tree,
    machine,
    percentile,
    print_result,
    server_version,
    summary,
    workdir,
)

from polyclinic.db.engine import create_app_engine
from polyclinic.platform.lifecycle import clinic_provisioner
from polyclinic.tenancy.migrations import render_tenant_ddl
from polyclinic.tenancy.provisioning import NO_PARAMETERS, NewClinic


async def run(clinics: int, present: int) -> None:
    with workdir() as tmp, bench_database() as settings:
        tree = clinic_sized_tree(tmp)
        head, ddl = render_tenant_ddl(tree)
        tables = ddl.count("CREATE TABLE") - 1  # minus alembic_version
        engine = create_app_engine(settings, pool_size=2)
        provisioner = clinic_provisioner(engine, settings, migrations=tree)

        def new(prefix: str) -> NewClinic:
            sub = f"{prefix}{uuid.uuid4().hex[:10]}"
            return NewClinic(f"Clinic {sub}", sub, "Europe/Berlin", f"owner@{sub}.test")

        started = time.perf_counter()
        for _ in range(present):
            await provisioner.create(new("p"))
        print(
            f"{present} clinics present ({tables} tables each), "
            f"made in {time.perf_counter() - started:.1f} s"
        )

        provision_ms: list[float] = []
        floor_ms: list[float] = []
        for index in range(clinics):
            t0 = time.perf_counter()
            await provisioner.create(new("b"))
            provision_ms.append((time.perf_counter() - t0) * 1000)

            t0 = time.perf_counter()
            async with engine.begin() as connection:
                await connection.exec_driver_sql(
                    f"CREATE SCHEMA floor_{index}; SET LOCAL search_path = floor_{index};\n{ddl}",
                    execution_options=NO_PARAMETERS,
                )
            floor_ms.append((time.perf_counter() - t0) * 1000)
        await engine.dispose()

        p50 = sorted(provision_ms)[len(provision_ms) // 2]
        floor_p50 = sorted(floor_ms)[len(floor_ms) // 2]
        print(f"machine: {machine()}; {server_version(settings)}; head {head}")
        print(f"provision ({clinics} clinics): {summary(provision_ms)}")
        print(f"floor, DDL alone:            {summary(floor_ms)}")
        print(
            f"ratio provision/floor at p50: {p50 / floor_p50:.2f}x"
            "  (target <= 2x, p50 <= 50 ms, p95 <= 100 ms)"
        )
        print_result(
            {
                "bench": "provision",
                "clinics": clinics,
                "head": head,
                "provision_p50_ms": round(p50, 2),
                "provision_p95_ms": round(percentile(provision_ms, 0.95), 2),
                "floor_p50_ms": round(floor_p50, 2),
                "ratio_provision_to_floor": round(p50 / floor_p50, 3),
            }
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clinics", type=int, default=200)
    parser.add_argument("--present", type=int, default=1000)
    args = parser.parse_args()
    asyncio.run(run(args.clinics, args.present))


if __name__ == "__main__":
    main()
