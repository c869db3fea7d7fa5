"""What tenancy costs per request: GET /api/v1/clinic over many clinics, one clinic, no tenancy.

Three runs in one process against the same database and the same app:
  - round-robin over all clinics (host resolution, a clinic session, role + search_path),
  - the same route on one clinic only,
  - the same query on a route with no tenancy at all (fixed schema, no role switch).
Then the PostgreSQL backend memory of the pooled connections after the round-robin run, with
connection recycling on (DB_CONNECTION_MAX_USES) and off.

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
from _common import bench_database, machine, server_version
from litestar import get
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from polyclinic.app import create_app
from polyclinic.config import Settings
from polyclinic.db.engine import create_app_engine
from polyclinic.tenancy.provisioning import NewClinic, Provisioner

MEMORY_SQL = text("SELECT sum(total_bytes) FROM pg_backend_memory_contexts")


async def provision(settings: Settings, count: int) -> list[str]:
    engine = create_app_engine(settings, pool_size=2)
    provisioner = Provisioner(engine, settings)
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


async def backend_memory(engine: AsyncEngine, connections: int) -> list[float]:
    """MB held by each pooled backend (checked out all at once so each is a different one)."""
    held = [await engine.connect() for _ in range(connections)]
    sizes = [float(await c.scalar(MEMORY_SQL) or 0) / 2**20 for c in held]
    for connection in held:
        await connection.close()
    return sizes


async def run(args: argparse.Namespace) -> None:
    pool = args.concurrency
    with bench_database(
        DB_POOL_SIZE=str(pool), DB_MAX_OVERFLOW="0", DB_CONNECTION_MAX_USES=str(args.max_uses)
    ) as settings:
        started = time.perf_counter()
        subdomains = await provision(settings, args.clinics)
        print(f"{args.clinics} clinics made in {time.perf_counter() - started:.1f} s")
        hosts = [f"{s}.{settings.base_domain}" for s in subdomains]
        plain_schema = await schema_of(settings, subdomains[0])

        results = {}
        for label, recycle in (("recycling on", args.max_uses), ("recycling off", 0)):
            variant = msgspec.structs.replace(settings, db_connection_max_uses=recycle)
            app = build_app(variant, plain_schema)
            engine = app.state.runtime.engine  # type: ignore[attr-defined]
            if recycle:
                results["one"] = await throughput(
                    app, hosts[:1], "/api/v1/clinic", args.requests, pool
                )
                results["plain"] = await throughput(
                    app, hosts[:1], "/bench/plain", args.requests, pool
                )
            results[f"rr {label}"] = await throughput(
                app, hosts, "/api/v1/clinic", args.requests, pool
            )
            results[f"mem {label}"] = await backend_memory(engine, pool)
            await engine.dispose()

        print(f"machine: {machine()}; {server_version(settings)}")
        print(
            f"concurrency {pool}, pool {pool}, {args.requests} requests per run (in-process ASGI)"
        )
        one, rr, plain = results["one"], results["rr recycling on"], results["plain"]
        print(f"round-robin over {args.clinics} clinics: {rr:8.0f} req/s")
        print(f"one clinic:                       {one:8.0f} req/s")
        print(f"same query, no tenancy:           {plain:8.0f} req/s")
        print(f"round-robin / one clinic:  {rr / one:6.1%}  (target >= 90%)")
        print(f"one clinic / no tenancy:   {one / plain:6.1%}")
        print(f"round-robin, recycling off: {results['rr recycling off']:8.0f} req/s")
        for label in ("recycling on", "recycling off"):
            sizes = results[f"mem {label}"]
            print(
                f"backend memory after round-robin, {label:<13} "
                f"(max uses {args.max_uses if label == 'recycling on' else 0}): "
                f"max {max(sizes):5.1f} MB, mean {sum(sizes) / len(sizes):5.1f} MB"
                f" over {len(sizes)} backends"
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
    parser.add_argument("--max-uses", type=int, default=500)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
