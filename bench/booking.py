"""Booking throughput and latency, with the quota unit and the no-double-booking constraint,
spread over many clinics against all on one practitioner; and slot search over a month of a
busy practitioner.

Each booking runs the service as the API does (`Desk.book`): checks, the insert the
exclusion constraint guards, the quota consume, history and outbox rows, one commit, in its
own clinic transaction. The baseline is a clinic transaction that writes one row and commits.

    uv run python bench/booking.py [--clinics 100] [--bookings 3000] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import itertools
import time
import uuid
from dataclasses import dataclass

from _common import (
    bench_database,
    bookable_practitioner,
    machine,
    percentile,
    print_result,
    server_version,
)
from sqlalchemy import insert, select, update

from polyclinic.billing.models import Plan, Subscription
from polyclinic.db.base import utcnow
from polyclinic.db.context import TenantInfo
from polyclinic.db.engine import create_app_engine
from polyclinic.db.session import clinic_session, clinic_transaction, platform_session
from polyclinic.identity.accounts.models import User
from polyclinic.identity.permissions.guards import Principal
from polyclinic.identity.trail.models import AuthEvent
from polyclinic.platform.lifecycle import clinic_provisioner
from polyclinic.scheduling.appointments.booking import BookingRequest, Desk
from polyclinic.scheduling.appointments.models import Appointment
from polyclinic.scheduling.setup.models import (
    Practitioner,
)
from polyclinic.tenancy.provisioning import NewClinic, Provisioner
from polyclinic.tenancy.resolver import tenant_info

SLOT = datetime.timedelta(minutes=15)
SLOTS_PER_DAY = 95  # 00:00 to 23:45, 15-minute service


@dataclass
class Clinic:
    info: TenantInfo
    practitioner_id: uuid.UUID
    service_id: uuid.UUID
    patient_id: uuid.UUID
    desk_user: Principal
    next_slot: itertools.count  # type: ignore[type-arg]

    def start(self, first_day: datetime.datetime) -> datetime.datetime:
        n = next(self.next_slot)
        return first_day + datetime.timedelta(days=n // SLOTS_PER_DAY) + SLOT * (n % SLOTS_PER_DAY)


async def ready_clinic(engine, provisioner: Provisioner) -> Clinic:  # type: ignore[no-untyped-def]
    sub = f"b{uuid.uuid4().hex[:10]}"
    info = tenant_info(await provisioner.create(NewClinic(sub, sub, "UTC", f"o@{sub}.test")))
    assert info is not None
    async with clinic_transaction(engine, info) as session:
        doctor = User(email=f"d@{sub}.test", first_name="D", last_name="D", role="doctor")
        patient = User(email=f"p@{sub}.test", first_name="P", last_name="P", role="patient")
        desk = User(email=f"r@{sub}.test", first_name="R", last_name="R", role="receptionist")
        session.add_all([doctor, patient, desk])
        await session.flush()
        practitioner, service = await bookable_practitioner(
            session,
            doctor.id,
            minutes=15,
            opens=datetime.time(0, 0),
            closes=datetime.time(23, 45),
            horizon_days=730,
        )
    return Clinic(
        info,
        practitioner.id,
        service.id,
        patient.id,
        Principal(user_id=desk.id, role="receptionist", session_id=uuid.uuid4()),
        itertools.count(),
    )


async def fill_every_other_slot(  # type: ignore[no-untyped-def]
    engine, clinic: Clinic, first_day: datetime.datetime, days: int
) -> None:
    async with clinic_transaction(engine, clinic.info) as session:
        lane = await session.scalar(
            select(Practitioner.lane).where(Practitioner.id == clinic.practitioner_id)
        )
        rows = []
        for n in range(0, days * SLOTS_PER_DAY, 2):
            day, slot = divmod(n, SLOTS_PER_DAY)
            starts = first_day + datetime.timedelta(days=day) + SLOT * slot
            rows.append(
                {
                    "id": uuid.uuid4(),
                    "practitioner_id": clinic.practitioner_id,
                    "practitioner_lane": lane,
                    "service_id": clinic.service_id,
                    "patient_id": clinic.patient_id,
                    "starts_at": starts,
                    "ends_at": starts + SLOT,
                    "blocked_from": starts,
                    "blocked_until": starts + SLOT,
                    "status": "confirmed",
                    "payment_method": "in_clinic",
                    "notes": "",
                    "booked_by": clinic.desk_user.user_id,
                    "created_at": utcnow(),
                    "updated_at": utcnow(),
                }
            )
        await session.execute(insert(Appointment), rows)


async def run(args: argparse.Namespace) -> None:
    with bench_database(DB_POOL_SIZE=str(args.concurrency), DB_MAX_OVERFLOW="0") as settings:
        engine = create_app_engine(settings)
        async with platform_session(engine) as session:
            # Unlimited appointments, so every booking counts instead of being refused.
            await session.execute(update(Plan).values(is_default=False))
            await session.execute(
                update(Plan).where(Plan.code == "network").values(is_default=True)
            )
            await session.commit()
        provisioner = clinic_provisioner(engine, settings)
        clinics = [await ready_clinic(engine, provisioner) for _ in range(args.clinics)]
        async with platform_session(engine) as session:
            await session.execute(update(Subscription).values(status="active"))
            await session.commit()
        tomorrow = datetime.datetime.combine(
            datetime.date.today() + datetime.timedelta(days=1), datetime.time(), datetime.UTC
        )

        async def one_write(clinic: Clinic) -> None:
            async with clinic_transaction(engine, clinic.info) as session:
                session.add(AuthEvent(event="bench"))

        async def book(clinic: Clinic) -> None:
            async with clinic_session(engine, clinic.info) as session:
                desk = Desk(session, clinic.info, settings, clinic.desk_user)
                await desk.book(
                    BookingRequest(
                        clinic.practitioner_id,
                        clinic.service_id,
                        clinic.start(tomorrow),
                        clinic.patient_id,
                        "in_clinic",
                    )
                )

        async def measure(work, targets: list[Clinic], count: int) -> tuple[float, list[float]]:  # type: ignore[no-untyped-def]
            cycle = itertools.cycle(targets)
            latencies: list[float] = []
            per_worker = count // args.concurrency

            async def worker(n: int) -> None:
                for _ in range(n):
                    started = time.perf_counter()
                    await work(next(cycle))
                    latencies.append((time.perf_counter() - started) * 1000)

            await asyncio.gather(*(worker(10) for _ in range(args.concurrency)))  # warm-up
            latencies.clear()
            started = time.perf_counter()
            await asyncio.gather(*(worker(per_worker) for _ in range(args.concurrency)))
            return per_worker * args.concurrency / (time.perf_counter() - started), latencies

        base_rate, base_lat = await measure(one_write, clinics, args.bookings)
        spread_rate, spread_lat = await measure(book, clinics, args.bookings)
        busy = clinics[0]
        one_rate, one_lat = await measure(book, [busy], args.bookings)

        # Slot search: a practitioner booked every other slot for a month.
        busy = clinics[1]
        month = tomorrow + datetime.timedelta(days=60)  # past what the runs above booked
        await fill_every_other_slot(engine, busy, month, days=31)
        first = month.date()
        last = first + datetime.timedelta(days=30)
        searches: list[float] = []
        month_reads: list[float] = []
        for _ in range(args.searches):
            async with clinic_session(engine, busy.info) as session:
                started = time.perf_counter()
                found = await Desk(session, busy.info, settings, busy.desk_user).slots(
                    busy.practitioner_id, busy.service_id, first, last
                )
                searches.append((time.perf_counter() - started) * 1000)
            async with clinic_session(engine, busy.info) as session:
                started = time.perf_counter()
                rows = (
                    await session.execute(
                        select(Appointment.blocked_from, Appointment.blocked_until).where(
                            Appointment.practitioner_id == busy.practitioner_id,
                            Appointment.starts_at >= month,
                            Appointment.starts_at < month + datetime.timedelta(days=31),
                        )
                    )
                ).all()
                month_reads.append((time.perf_counter() - started) * 1000)
        await engine.dispose()

        def line(name: str, rate: float, lat: list[float]) -> str:
            return (
                f"{name:<44} {rate:7.0f} /s   p50 {percentile(lat, 0.5):6.1f} ms"
                f"   p95 {percentile(lat, 0.95):6.1f} ms"
            )

        print(f"machine: {machine()}; {server_version(settings)}")
        print(f"concurrency {args.concurrency}, {args.bookings} bookings per run")
        print(line("clinic transaction, one row written (base)", base_rate, base_lat))
        print(line(f"booking, spread over {args.clinics} clinics", spread_rate, spread_lat))
        print(line("booking, all on one practitioner", one_rate, one_lat))
        print(
            f"booking spread / baseline: {spread_rate / base_rate:.0%} of the throughput; "
            f"one practitioner / spread: {one_rate / spread_rate:.0%}"
        )
        print(
            f"slot search, 31 days, {len(rows)} bookings in them, {len(found)} free slots: "
            f"p50 {percentile(searches, 0.5):.1f} ms, p95 {percentile(searches, 0.95):.1f} ms; "
            f"reading that month's bookings alone: p50 {percentile(month_reads, 0.5):.1f} ms "
            f"({percentile(searches, 0.5) / percentile(month_reads, 0.5):.1f}x)"
        )
        print_result(
            {
                "bench": "booking",
                "clinics": args.clinics,
                "concurrency": args.concurrency,
                "baseline_per_s": round(base_rate, 1),
                "spread_per_s": round(spread_rate, 1),
                "one_practitioner_per_s": round(one_rate, 1),
                "spread_p95_ms": round(percentile(spread_lat, 0.95), 2),
                "ratio_spread_to_baseline": round(spread_rate / base_rate, 3),
                "slot_search_p50_ms": round(percentile(searches, 0.5), 2),
                "slot_search_p95_ms": round(percentile(searches, 0.95), 2),
            }
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clinics", type=int, default=100)
    parser.add_argument("--bookings", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--searches", type=int, default=50)
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
