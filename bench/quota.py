"""Quota engine throughput: consumes per second, all on one clinic (every booking contends for
the same period row) against spread over many clinics, beside an empty clinic transaction.

Each consume runs as a booking would: its own clinic transaction (role, search_path), the
ledger insert and the conditional counter update, then commit. The baseline is a clinic
transaction that writes one row and commits (a commit that writes waits for the disk).

    uv run python bench/quota.py [--clinics 50] [--consumes 4000] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import time
import uuid

from _common import bench_database, machine, print_result, server_version
from sqlalchemy import text, update

from polyclinic.billing.models import Plan, Subscription
from polyclinic.billing.quota import QuotaEngine
from polyclinic.db.context import TenantInfo
from polyclinic.db.engine import create_app_engine
from polyclinic.db.session import clinic_transaction, platform_session
from polyclinic.identity.trail.models import AuthEvent
from polyclinic.platform.lifecycle import clinic_provisioner
from polyclinic.tenancy.provisioning import NewClinic
from polyclinic.tenancy.resolver import tenant_info


async def run(args: argparse.Namespace) -> None:
    with bench_database(DB_POOL_SIZE=str(args.concurrency), DB_MAX_OVERFLOW="0") as settings:
        engine = create_app_engine(settings)
        async with platform_session(engine) as session:
            # Unlimited appointments, so every consume counts instead of being refused.
            await session.execute(
                update(Plan).where(Plan.code == "network").values(is_default=True)
            )
            await session.execute(
                update(Plan).where(Plan.code == "starter").values(is_default=False)
            )
            await session.commit()
        provisioner = clinic_provisioner(engine, settings)
        clinics: list[TenantInfo] = []
        for _ in range(args.clinics):
            sub = f"q{uuid.uuid4().hex[:10]}"
            info = tenant_info(
                await provisioner.create(NewClinic(sub, sub, "UTC", f"o@{sub}.test"))
            )
            assert info is not None
            clinics.append(info)
        async with platform_session(engine) as session:
            await session.execute(update(Subscription).values(status="active"))
            await session.commit()

        async def empty(clinic: TenantInfo) -> None:
            async with clinic_transaction(engine, clinic) as session:
                await session.execute(text("SELECT 1"))

        async def one_write(clinic: TenantInfo) -> None:
            async with clinic_transaction(engine, clinic) as session:
                session.add(AuthEvent(event="bench"))

        async def consume(clinic: TenantInfo) -> None:
            async with clinic_transaction(engine, clinic) as session:
                await QuotaEngine(session, clinic.id, 7).consume(uuid.uuid4())

        async def rate(work, targets: list[TenantInfo]) -> float:  # type: ignore[no-untyped-def]
            cycle = itertools.cycle(targets)
            per_worker = args.consumes // args.concurrency

            async def worker(count: int) -> None:
                for _ in range(count):
                    await work(next(cycle))

            await asyncio.gather(*(worker(20) for _ in range(args.concurrency)))  # warm-up
            started = time.perf_counter()
            await asyncio.gather(*(worker(per_worker) for _ in range(args.concurrency)))
            return per_worker * args.concurrency / (time.perf_counter() - started)

        baseline = await rate(empty, clinics)
        written = await rate(one_write, clinics)
        spread = await rate(consume, clinics)
        one = await rate(consume, clinics[:1])
        await engine.dispose()

        print(f"machine: {machine()}; {server_version(settings)}")
        print(f"concurrency {args.concurrency}, {args.consumes} consumes per run")
        print(f"clinic transaction, read only:      {baseline:7.0f} /s")
        print(f"clinic transaction, one row written: {written:7.0f} /s  (baseline)")
        print(
            f"consume, spread over {args.clinics} clinics:   {spread:7.0f} /s"
            f"  ({spread / written:.0%} of the baseline)"
        )
        print(f"consume, all on one clinic:         {one:7.0f} /s  ({one / spread:.0%} of spread)")
        print_result(
            {
                "bench": "quota",
                "clinics": args.clinics,
                "concurrency": args.concurrency,
                "read_only_per_s": round(baseline, 1),
                "baseline_per_s": round(written, 1),
                "spread_per_s": round(spread, 1),
                "one_clinic_per_s": round(one, 1),
                "ratio_spread_to_baseline": round(spread / written, 3),
            }
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clinics", type=int, default=50)
    parser.add_argument("--consumes", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=8)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
