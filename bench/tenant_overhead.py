"""What tenancy costs per request: GET /api/v1/clinic over many clinics, one clinic, no tenancy.

Three runs in one process against the same database, each with a fresh app and pool:
  - round-robin over all clinics (host resolution, a clinic session, role + search_path),
  - the same route on one clinic only,
  - the same query on a route with no tenancy at all (fixed schema, no role switch).
Then the private memory of the PostgreSQL backends (read from /proc, so measuring does not
touch the pool) after a round-robin run that replaces connections every `--memory-max-uses`
checkouts, and after one that never does.

    uv run python bench/tenant_overhead.py [--clinics 1000] [--requests 4000] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import time
import uuid

import httpx
import msgspec
from _common import bench_database, machine, print_result, server_version
from litestar import get
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.app import create_app
from polyclinic.config import Settings
from polyclinic.db.engine import create_app_engine
from polyclinic.platform.lifecycle import clinic_provisioner
from polyclinic.tenancy.provisioning import NewClinic


async def provision(settings: Settings, count: int) -> list[str]:
    engine = create_app_engine(settings, pool_size=2)
    provisioner = clinic_provisioner(engine, settings)
    subdomains = []
    for _ in range(count):
        sub = f"o{uuid.uuid4().hex[:10]}"
        await provisioner.create(NewClinic(f"Clinic {sub}", sub, "UTC", f"o@{sub}.test"))
        subdomains.append(sub)
    await engine.dispose()
    return subdomains


def build_app(settings: Settings, plain_schema: str) -> object:
    app = create_app(settings)
    engine: AsyncEngine = app.state.runtime.engine
    query = text(
        f'SELECT name, timezone FROM "{plain_schema}".clinic_profile ORDER BY created_at LIMIT 1'
    )

    @get("/bench/plain", include_in_schema=False)
    async def plain() -> dict[str, str]:
        async with engine.connect() as connection:
            row = (await connection.execute(query)).one()
        return {"name": row.name, "timezone": row.timezone}

    app.register(plain)
    return app


async def throughput(
    app: object, hosts: list[str], path: str, requests: int, workers: int
) -> float:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    cycle = itertools.cycle(hosts)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:

        async def worker(count: int) -> None:
            for _ in range(count):
                response = await client.get(path, headers={"host": next(cycle)})
                if response.status_code != 200:
                    raise RuntimeError(
                        f"{path} on {response.request.headers['host']}: {response.text}"
                    )

        await asyncio.gather(*(worker(min(200, requests // workers)) for _ in range(workers)))
        started = time.perf_counter()
        await asyncio.gather(*(worker(requests // workers) for _ in range(workers)))
        return (requests // workers) * workers / (time.perf_counter() - started)


def private_mb(pid: int) -> float:
    """Private (unshared) memory of a backend process, from /proc/<pid>/smaps_rollup."""
    total_kb = 0
    with open(f"/proc/{pid}/smaps_rollup") as rollup:
        for line in rollup:
            if line.startswith(("Private_Clean:", "Private_Dirty:")):
                total_kb += int(line.split()[1])
    return total_kb / 1024


async def backend_memory(settings: Settings) -> list[float]:
    """MB held by each backend connected to the bench database, except this one."""
    engine = create_app_engine(settings, pool_size=1)
    async with engine.connect() as connection:
        pids = (
            (
                await connection.execute(
                    text(
                        "SELECT pid FROM pg_stat_activity "
                        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                )
            )
            .scalars()
            .all()
        )
    await engine.dispose()
    return [private_mb(pid) for pid in pids]


async def run(args: argparse.Namespace) -> None:
    pool = args.concurrency
    # The cost of tenancy itself: the fair-share limits (measured by noisy_neighbour.py)
    # would refuse one clinic asking at full speed.
    with bench_database(
        DB_POOL_SIZE=str(pool),
        DB_MAX_OVERFLOW="0",
        CLINIC_RATE_LIMIT_PER_MINUTE="0",
        CLINIC_MAX_CONCURRENT_REQUESTS=str(pool),
    ) as settings:
        started = time.perf_counter()
        subdomains = await provision(settings, args.clinics)
        print(f"{args.clinics} clinics made in {time.perf_counter() - started:.1f} s")
        hosts = [f"{s}.{settings.base_domain}" for s in subdomains]
        plain_schema = await schema_of(settings, subdomains[0])

        results: dict[str, float] = {}
        memory: dict[str, list[float]] = {}
        runs = [
            ("rr", hosts, "/api/v1/clinic", settings.db_connection_max_uses),
            ("one", hosts[:1], "/api/v1/clinic", settings.db_connection_max_uses),
            ("plain", hosts[:1], "/bench/plain", settings.db_connection_max_uses),
            ("rr small recycle", hosts, "/api/v1/clinic", args.memory_max_uses),
            ("rr no recycle", hosts, "/api/v1/clinic", 0),
        ]
        for key, targets, path, max_uses in runs:
            variant = msgspec.structs.replace(settings, db_connection_max_uses=max_uses)
            app = build_app(variant, plain_schema)
            results[key] = await throughput(app, targets, path, args.requests, pool)
            if key.startswith("rr "):
                memory[key] = await backend_memory(settings)
            await app.state.runtime.engine.dispose()  # type: ignore[attr-defined]

        print(f"machine: {machine()}; {server_version(settings)}")
        print(
            f"concurrency {pool}, pool {pool}, {args.requests} requests per run (in-process ASGI),"
            f" connections replaced every {settings.db_connection_max_uses} checkouts"
        )
        one, rr, plain = results["one"], results["rr"], results["plain"]
        print(f"round-robin over {args.clinics} clinics: {rr:8.0f} req/s")
        print(f"one clinic:                       {one:8.0f} req/s")
        print(f"same query, no tenancy:           {plain:8.0f} req/s")
        print(f"round-robin / one clinic:  {rr / one:6.1%}  (target >= 90%)")
        print(f"one clinic / no tenancy:   {one / plain:6.1%}")
        for key, label in (
            ("rr small recycle", f"replaced every {args.memory_max_uses} checkouts"),
            ("rr no recycle", "never replaced"),
        ):
            sizes = memory[key]
            print(
                f"backend private memory after round-robin, connections {label}: "
                f"max {max(sizes):5.1f} MB, mean {sum(sizes) / len(sizes):5.1f} MB"
                f" over {len(sizes)} backends ({results[key]:.0f} req/s)"
            )
        print_result(
            {
                "bench": "tenant_overhead",
                "clinics": args.clinics,
                "round_robin_per_s": round(rr, 1),
                "one_clinic_per_s": round(one, 1),
                "no_tenancy_per_s": round(plain, 1),
                "ratio_round_robin_to_one": round(rr / one, 3),
                "ratio_one_to_no_tenancy": round(one / plain, 3),
                "backend_memory_max_mb": {
                    key: round(max(sizes), 1) for key, sizes in memory.items()
                },
            }
        )


async def schema_of(settings: Settings, subdomain: str) -> str:
    engine = create_app_engine(settings, pool_size=1)
    async with engine.connect() as connection:
        schema = await connection.scalar(
            text("SELECT schema_name FROM platform.tenants WHERE slug = :s"), {"s": subdomain}
        )
    await engine.dispose()
    return str(schema)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clinics", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--memory-max-uses", type=int, default=250)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
