"""Noisy neighbour: how much one clinic hammering the API slows every other clinic down.

The app runs as it does in production (uvicorn, `--workers` processes) against a fresh
database and Redis. Each "other" clinic has staff reading at a normal pace (`--users` each,
a request then a pause of `--think-ms` on average): the day's appointments, the patient list,
a week of free slots, the clinic's profile. Their latency is measured

  - alone, and
  - while one more clinic sends the same reads at full speed over `--hammer-connections`
    connections from a process of its own (each connection sends again as soon as it has an
    answer, whatever the answer says),

in `--rounds` alternating rounds on one server, then the same with the fair-share limits
turned off, for comparison. The others' p95 hammered against alone, with the limits, is the
figure (goal: at most 1.5x). The clients speak minimal HTTP/1.1 on kept-alive connections,
so the load generator costs far less than the server it loads.

    uv run python bench/noisy_neighbour.py [--clinics 5] [--rounds 3] [--seconds 10] [--workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import itertools
import json
import os
import random
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field

import httpx
from _common import (
    bench_database,
    bookable_practitioner,
    machine,
    percentile,
    print_result,
    server_version,
)
from sqlalchemy import insert

from polyclinic.config import Settings
from polyclinic.db.base import utcnow
from polyclinic.db.engine import create_app_engine
from polyclinic.db.session import clinic_transaction
from polyclinic.identity.accounts.models import User
from polyclinic.identity.accounts.passwords import hash_password
from polyclinic.platform.lifecycle import clinic_provisioner
from polyclinic.scheduling.appointments.models import Appointment
from polyclinic.tenancy.provisioning import NewClinic
from polyclinic.tenancy.resolver import tenant_info

PASSWORD = "bench-password-long-enough"
SLOT = datetime.timedelta(minutes=20)
PATIENTS = 200
DAYS_BOOKED = 14


@dataclass
class Clinic:
    subdomain: str
    host: str
    practitioner_id: uuid.UUID
    service_id: uuid.UUID
    token: str = ""
    reads: list[bytes] = field(default_factory=list)


async def seeded_clinic(settings: Settings, engine, provisioner) -> Clinic:  # type: ignore[no-untyped-def]
    """A clinic with a practitioner, a service, 200 patients and two weeks of appointments."""
    sub = f"n{uuid.uuid4().hex[:10]}"
    info = tenant_info(await provisioner.create(NewClinic(sub, sub, "UTC", f"o@{sub}.test")))
    assert info is not None
    async with clinic_transaction(engine, info) as session:
        desk = User(
            email=f"desk@{sub}.test",
            password_hash=hash_password(PASSWORD),
            first_name="Desk",
            last_name="Clerk",
            role="receptionist",
            email_verified_at=utcnow(),
        )
        doctor = User(email=f"d@{sub}.test", first_name="D", last_name="D", role="doctor")
        patients = [
            User(
                email=f"p{n}@{sub}.test",
                first_name=f"Pat{n}",
                last_name=f"Ient{n:03}",
                role="patient",
            )
            for n in range(PATIENTS)
        ]
        session.add_all([desk, doctor, *patients])
        await session.flush()
        practitioner, service = await bookable_practitioner(
            session,
            doctor.id,
            minutes=20,
            opens=datetime.time(8, 0),
            closes=datetime.time(18, 0),
            horizon_days=90,
        )
        lane = practitioner.lane
        today = datetime.datetime.combine(datetime.date.today(), datetime.time(8), datetime.UTC)
        rows = []
        for day in range(DAYS_BOOKED):  # every other slot of the day booked
            for n in range(0, 30, 2):
                starts = today + datetime.timedelta(days=day) + SLOT * n
                rows.append(
                    {
                        "id": uuid.uuid4(),
                        "practitioner_id": practitioner.id,
                        "practitioner_lane": lane,
                        "service_id": service.id,
                        "patient_id": patients[(day * 15 + n) % PATIENTS].id,
                        "starts_at": starts,
                        "ends_at": starts + SLOT,
                        "blocked_from": starts,
                        "blocked_until": starts + SLOT,
                        "status": "confirmed",
                        "payment_method": "in_clinic",
                        "notes": "",
                        "booked_by": desk.id,
                        "created_at": utcnow(),
                        "updated_at": utcnow(),
                    }
                )
        await session.execute(insert(Appointment), rows)
    return Clinic(sub, f"{sub}.{settings.base_domain}", practitioner.id, service.id)


def reads_of(clinic: Clinic) -> list[bytes]:
    """The staff's everyday reads, as raw HTTP/1.1 requests on a kept-alive connection."""
    today = datetime.date.today()
    week = today + datetime.timedelta(days=6)
    paths = [
        f"/api/v1/appointments?date={today}&view=day",
        f"/api/v1/appointments?date={today + datetime.timedelta(days=1)}&view=day",
        "/api/v1/patients?limit=20",
        "/api/v1/patients?limit=20&offset=40&q=ient",
        f"/api/v1/slots?practitionerId={clinic.practitioner_id}&serviceId={clinic.service_id}"
        f"&from={today}&to={week}",
        "/api/v1/clinic",
    ]
    return [
        (
            f"GET {path} HTTP/1.1\r\nHost: {clinic.host}\r\n"
            f"Authorization: Bearer {clinic.token}\r\n\r\n"
        ).encode()
        for path in paths
    ]


class Connection:
    """A minimal HTTP/1.1 keep-alive client: the load generator must cost less than the app."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def send(self, request: bytes) -> int:
        for attempt in range(2):
            if self.writer is None:
                await self.open()
            assert self.reader is not None and self.writer is not None
            try:
                self.writer.write(request)
                head = await self.reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                self.close()  # the server closed an idle connection: once more, anew
                if attempt:
                    raise
                continue
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length:
                await self.reader.readexactly(length)
            return int(head[9:12])
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def staff(
    port: int, clinic: Clinic, think_ms: float, until: float, seen: list[float], rng: random.Random
) -> dict[int, int]:
    """One member of staff: a read, a pause, again; latencies of 2xx answers into `seen`."""
    connection = Connection(port)
    statuses: dict[int, int] = {}
    try:
        while time.perf_counter() < until:
            request = rng.choice(clinic.reads)
            started = time.perf_counter()
            status = await connection.send(request)
            elapsed = (time.perf_counter() - started) * 1000
            statuses[status] = statuses.get(status, 0) + 1
            if status == 200:
                seen.append(elapsed)
            await asyncio.sleep(rng.expovariate(1000 / think_ms))
    finally:
        connection.close()
    return statuses


async def normal_traffic(
    port: int, clinics: list[Clinic], users: int, think_ms: float, seconds: float
) -> tuple[list[float], dict[int, int]]:
    seen: list[float] = []
    until = time.perf_counter() + seconds
    rng = random.Random(7)
    runs = await asyncio.gather(
        *(
            staff(port, clinic, think_ms, until, seen, random.Random(rng.random()))
            for clinic in clinics
            for _ in range(users)
        )
    )
    statuses: dict[int, int] = {}
    for run in runs:
        for status, count in run.items():
            statuses[status] = statuses.get(status, 0) + count
    return seen, statuses


async def hammer(port: int, reads: list[bytes], connections: int, seconds: float) -> dict[str, int]:
    """Full speed: each connection sends the next read as soon as an answer is in."""
    statuses: dict[str, int] = {}
    requests = itertools.cycle(reads)
    pool = [Connection(port) for _ in range(connections)]
    for connection in pool:
        await connection.open()
    print("ready", flush=True)
    until = time.perf_counter() + seconds

    async def one(connection: Connection) -> None:
        try:
            while time.perf_counter() < until:
                status = str(await connection.send(next(requests)))
                statuses[status] = statuses.get(status, 0) + 1
        finally:
            connection.close()

    await asyncio.gather(*(one(connection) for connection in pool))
    return statuses


def hammer_main(config: str) -> None:
    """The hammering clinic, in a process of its own (`--hammer CONFIG`)."""
    options = json.loads(config)
    reads = [r.encode("latin-1") for r in options["reads"]]
    statuses = asyncio.run(
        hammer(options["port"], reads, options["connections"], options["seconds"])
    )
    print(json.dumps(statuses), flush=True)


def start_hammer(port: int, clinic: Clinic, connections: int, seconds: float) -> subprocess.Popen:  # type: ignore[type-arg]
    config = json.dumps(
        {
            "port": port,
            "reads": [r.decode("latin-1") for r in clinic.reads],
            "connections": connections,
            "seconds": seconds,
        }
    )
    return subprocess.Popen(
        [sys.executable, __file__, "--hammer", config], stdout=subprocess.PIPE, text=True
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_environment(settings: Settings, limits: dict[str, str]) -> dict[str, str]:
    environ = {
        k: v for k, v in os.environ.items() if k.isupper() and not k.startswith(("CLINIC_", "DB_"))
    }
    environ.update(
        {
            "DATABASE_URL": settings.database_url,
            "BASE_DOMAIN": settings.base_domain,
            "JWT_SIGNING_KEY": settings.jwt_signing_key,
            "REDIS_NAMESPACE": settings.redis_namespace,
            "LOG_LEVEL": "WARNING",
            **limits,
        }
    )
    if settings.redis_url:
        environ["REDIS_URL"] = settings.redis_url
    else:
        environ.pop("REDIS_URL", None)
    return environ


def start_server(
    settings: Settings, port: int, workers: int, limits: dict[str, str]
) -> subprocess.Popen:  # type: ignore[type-arg]
    command = [sys.executable, "-m", "uvicorn", "polyclinic.app:create_app", "--factory"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    command += ["--no-access-log", "--log-level", "warning"]
    return subprocess.Popen(command, env=server_environment(settings, limits))


async def wait_until_up(server: subprocess.Popen, port: int, host: str) -> None:  # type: ignore[type-arg]
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            try:
                response = await client.get(
                    f"http://127.0.0.1:{port}/health", headers={"host": host}
                )
                if response.status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if server.poll() is not None:
                raise RuntimeError("the server did not start")
            await asyncio.sleep(0.1)
    raise RuntimeError("the server did not answer in 30 s")


def stop(process: subprocess.Popen) -> None:  # type: ignore[type-arg]
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


async def sign_in(port: int, clinics: list[Clinic]) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        for clinic in clinics:
            response = await client.post(
                "/api/v1/auth/login",
                json={"email": f"desk@{clinic.subdomain}.test", "password": PASSWORD},
                headers={"host": clinic.host},
            )
            response.raise_for_status()
            clinic.token = response.json()["data"]["accessToken"]
            clinic.reads = reads_of(clinic)


@dataclass
class Phase:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    hammer: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    round_p95s: list[float] = field(default_factory=list)

    def add(self, latencies: list[float], statuses: dict[int, int], seconds: float) -> None:
        self.latencies += latencies
        self.seconds += seconds
        self.round_p95s.append(percentile(latencies, 0.95))
        for status, count in statuses.items():
            self.statuses[status] = self.statuses.get(status, 0) + count

    @property
    def p95(self) -> float:
        return percentile(self.latencies, 0.95)

    def line(self, name: str) -> str:
        rounds = " / ".join(f"{p:.1f}" for p in self.round_p95s)
        text = (
            f"{name:<32} p50 {percentile(self.latencies, 0.5):6.1f} ms"
            f"  p95 {self.p95:6.1f} ms  (rounds {rounds});"
            f" {len(self.latencies) / self.seconds:5.1f} req/s,"
            f" answers {dict(sorted(self.statuses.items()))}"
        )
        if self.hammer:
            total = sum(self.hammer.values())
            text += (
                f"\n{'':<32} the hammering clinic: {total / self.seconds:6.0f} req/s,"
                f" answers {dict(sorted(self.hammer.items()))}"
            )
        return text


async def measure(
    args: argparse.Namespace, settings: Settings, clinics: list[Clinic], limits: dict[str, str]
) -> tuple[Phase, Phase]:
    """Rounds of the others alone, then with the hammer, alternating on one server, so a
    change in what else the machine runs falls on both alike."""
    port = free_port()
    server = start_server(settings, port, args.workers, limits)
    alone, hammered = Phase(), Phase()
    try:
        await wait_until_up(server, port, settings.base_domain)
        await sign_in(port, clinics)
        noisy, others = clinics[0], clinics[1:]
        await normal_traffic(port, others, args.users, args.think_ms, 3)  # warm-up
        for _ in range(args.rounds):
            alone.add(
                *await normal_traffic(port, others, args.users, args.think_ms, args.seconds),
                args.seconds,
            )
            hammer_process = start_hammer(port, noisy, args.hammer_connections, args.seconds + 1)
            assert hammer_process.stdout is not None
            ready = await asyncio.to_thread(hammer_process.stdout.readline)
            assert ready.strip() == "ready", ready
            hammered.add(
                *await normal_traffic(port, others, args.users, args.think_ms, args.seconds),
                args.seconds,
            )
            out, _ = await asyncio.to_thread(hammer_process.communicate)
            for status, count in json.loads(out.strip().splitlines()[-1]).items():
                hammered.hammer[status] = hammered.hammer.get(status, 0) + count
            await asyncio.sleep(1)  # the hammer's held refusals drain
    finally:
        stop(server)
    return alone, hammered


async def run(args: argparse.Namespace) -> None:
    redis = (
        {}
        if args.no_redis
        else {"REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")}
    )
    with bench_database(REDIS_NAMESPACE=f"bench-{uuid.uuid4().hex[:8]}", **redis) as settings:
        engine = create_app_engine(settings, pool_size=2)
        provisioner = clinic_provisioner(engine, settings)
        clinics = [
            await seeded_clinic(settings, engine, provisioner) for _ in range(args.clinics + 1)
        ]
        await engine.dispose()

        protected = {
            name: str(value)
            for name, value in (
                ("CLINIC_RATE_LIMIT_PER_MINUTE", args.rate),
                ("CLINIC_RATE_BURST", args.burst),
                ("CLINIC_REFUSAL_DELAY_MS", args.refusal_delay_ms),
                ("CLINIC_MAX_CONCURRENT_REQUESTS", args.max_concurrent),
                ("CLINIC_QUEUE_WAIT_MS", args.queue_wait_ms),
            )
            if value is not None
        }
        alone, hammered = await measure(args, settings, clinics, protected)
        unprotected: tuple[Phase, Phase] | None = None
        if not args.skip_unprotected:
            off = {
                "CLINIC_RATE_LIMIT_PER_MINUTE": "0",
                "CLINIC_MAX_CONCURRENT_REQUESTS": "1000",
                "CLINIC_STATEMENT_TIMEOUT_MS": "0",
            }
            unprotected = await measure(args, settings, clinics, off)

        shown = {
            name: getattr(settings, name.lower())
            for name in (
                "CLINIC_RATE_LIMIT_PER_MINUTE",
                "CLINIC_RATE_BURST",
                "CLINIC_REFUSAL_DELAY_MS",
                "CLINIC_MAX_CONCURRENT_REQUESTS",
                "CLINIC_QUEUE_WAIT_MS",
                "CLINIC_STATEMENT_TIMEOUT_MS",
            )
        }
        shown.update(protected)
        print(f"machine: {machine()}; {server_version(settings)}")
        print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print(
            f"{args.workers} server process(es), {'no Redis' if args.no_redis else 'Redis'};"
            f" {args.clinics} other clinics x {args.users} staff, {args.think_ms:.0f} ms pauses"
            f" on average; the hammering clinic on {args.hammer_connections} connections;"
            f" {args.rounds} rounds of {args.seconds:.0f} s alone, {args.seconds:.0f} s hammered"
        )
        print("limits: " + ", ".join(f"{k}={v}" for k, v in shown.items()))
        print(alone.line("others alone"))
        print(hammered.line("others, one clinic hammering"))
        ratio = hammered.p95 / alone.p95
        result = {
            "others_p95_alone_ms": round(alone.p95, 1),
            "others_p95_hammered_ms": round(hammered.p95, 1),
            "ratio": round(ratio, 2),
        }
        if unprotected is not None:
            print(unprotected[0].line("limits off: others alone"))
            print(unprotected[1].line("limits off: one hammering"))
            result["ratio_limits_off"] = round(unprotected[1].p95 / unprotected[0].p95, 2)
            print(f"limits off, others' p95 hammered / alone: {result['ratio_limits_off']:.2f}x")
        print(f"others' p95 hammered / alone: {ratio:.2f}x (goal <= 1.5x)")
        print_result(result)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--hammer":
        hammer_main(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clinics", type=int, default=5, help="other clinics")
    parser.add_argument("--users", type=int, default=2, help="staff per other clinic")
    parser.add_argument("--think-ms", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=10, help="per phase")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--hammer-connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    parser.add_argument("--no-redis", action="store_true", help="in-process rate limit")
    parser.add_argument("--skip-unprotected", action="store_true")
    parser.add_argument("--rate", type=int, help="CLINIC_RATE_LIMIT_PER_MINUTE (default: app's)")
    parser.add_argument("--burst", type=int, help="CLINIC_RATE_BURST")
    parser.add_argument("--refusal-delay-ms", type=int, help="CLINIC_REFUSAL_DELAY_MS")
    parser.add_argument("--max-concurrent", type=int, help="CLINIC_MAX_CONCURRENT_REQUESTS")
    parser.add_argument("--queue-wait-ms", type=int, help="CLINIC_QUEUE_WAIT_MS")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
