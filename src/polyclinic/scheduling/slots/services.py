"""Bookable start times.

Hours and exceptions are wall-clock times in the clinic's zone. Each day's working periods
are built in local time, then turned into UTC instants through the zone's rules for that
date, so a period on the day clocks change is as long as it really is. Start times step
from each period's start in real minutes: on a spring-forward night the missing local hour
offers nothing, and on a fall-back night the repeated hour is offered twice, each with its
own UTC instant.
"""

from __future__ import annotations

import datetime
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from polyclinic.errors import FieldError, InvalidInput
from polyclinic.scheduling.appointments.models import HOLDS_TIME, Appointment, AppointmentStatus
from polyclinic.scheduling.locations.models import LocationHours
from polyclinic.scheduling.setup.models import (
    AvailabilityException,
    BookingPolicy,
    Practitioner,
    Service,
    WeeklyHours,
)

MAX_RANGE_DAYS = 62


Period = tuple[datetime.datetime, datetime.datetime]


Minutes = tuple[int, int]


class Hours(Protocol):
    weekday: int
    starts: datetime.time
    ends: datetime.time


@dataclass(frozen=True)
class Slot:
    starts_at: datetime.datetime
    ends_at: datetime.datetime


@dataclass(frozen=True)
class Window:
    """Where start times may fall: the policy's notice and horizon from now."""

    earliest: datetime.datetime
    latest: datetime.datetime

    @classmethod
    def of(cls, policy: BookingPolicy, now: datetime.datetime, *, notice: bool) -> Window:
        lead = datetime.timedelta(minutes=policy.min_notice_minutes if notice else 0)
        return cls(now + lead, now + datetime.timedelta(days=policy.horizon_days))


def _minutes(t: datetime.time) -> int:
    return t.hour * 60 + t.minute


def _subtract(spans: list[Minutes], cut: Minutes) -> list[Minutes]:
    kept = []
    for start, end in spans:
        if cut[1] <= start or end <= cut[0]:
            kept.append((start, end))
            continue
        if start < cut[0]:
            kept.append((start, cut[0]))
        if cut[1] < end:
            kept.append((cut[1], end))
    return kept


def _merge(spans: Iterable[Minutes]) -> list[Minutes]:
    merged: list[Minutes] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _instant(day: datetime.date, minutes: int, zone: ZoneInfo) -> datetime.datetime:
    local = datetime.datetime.combine(day, datetime.time(minutes // 60, minutes % 60), zone)
    return local.astimezone(datetime.UTC)


def working_periods(
    zone: ZoneInfo,
    first: datetime.date,
    last: datetime.date,
    weekly: Sequence[Hours],
    exceptions: Sequence[AvailabilityException],
) -> list[Period]:
    """Working (or opening) time from `first` to `last` (local dates), in UTC."""
    periods: list[Period] = []
    day = first
    while day <= last:
        spans = [
            (_minutes(h.starts), _minutes(h.ends)) for h in weekly if h.weekday == day.weekday()
        ]
        for exception in (e for e in exceptions if e.day == day):
            if exception.kind == "extra" and exception.starts and exception.ends:
                spans.append((_minutes(exception.starts), _minutes(exception.ends)))
        for exception in (e for e in exceptions if e.day == day and e.kind == "off"):
            if exception.starts is None or exception.ends is None:
                spans = []
            else:
                spans = _subtract(spans, (_minutes(exception.starts), _minutes(exception.ends)))
        periods.extend(
            (_instant(day, start, zone), _instant(day, end, zone)) for start, end in _merge(spans)
        )
        day += datetime.timedelta(days=1)
    return periods


def intersect(first: Sequence[Period], second: Sequence[Period]) -> list[Period]:
    """Where both sorted lists of periods overlap."""
    both = []
    i = j = 0
    while i < len(first) and j < len(second):
        start = max(first[i][0], second[j][0])
        end = min(first[i][1], second[j][1])
        if start < end:
            both.append((start, end))
        if first[i][1] < second[j][1]:
            i += 1
        else:
            j += 1
    return both


def start_times(
    periods: Sequence[Period], length: datetime.timedelta, step: datetime.timedelta
) -> Iterator[datetime.datetime]:
    """Every start, `step` apart from each period's start, whose appointment fits in it."""
    for start, end in periods:
        at = start
        while at + length <= end:
            yield at
            at += step


def free_slots(
    periods: Sequence[Period],
    busy: Sequence[Period],
    service: Service,
    step: datetime.timedelta,
    window: Window,
) -> list[Slot]:
    """Starts inside the window whose appointment, buffers included, meets no busy time."""
    length = datetime.timedelta(minutes=service.duration_minutes)
    before = datetime.timedelta(minutes=service.buffer_before_minutes)
    after = datetime.timedelta(minutes=service.buffer_after_minutes)
    busy = sorted(busy)
    slots = []
    first_relevant = 0
    for at in start_times(periods, length, step):
        if not window.earliest <= at <= window.latest:
            continue
        blocked_from, blocked_until = at - before, at + length + after
        while first_relevant < len(busy) and busy[first_relevant][1] <= blocked_from:
            first_relevant += 1
        clash = any(
            b_start < blocked_until and blocked_from < b_end
            for b_start, b_end in _overlapping(busy, first_relevant, blocked_until)
        )
        if not clash:
            slots.append(Slot(at, at + length))
    return slots


def _overlapping(busy: Sequence[Period], index: int, until: datetime.datetime) -> Iterator[Period]:
    while index < len(busy) and busy[index][0] < until:
        yield busy[index]
        index += 1


def local_range(first: datetime.date, last: datetime.date, today: datetime.date) -> None:
    reach = datetime.timedelta(days=731)  # the longest booking horizon, and a year back
    if first < today - reach or last > today + reach:
        raise InvalidInput(
            "Ask for dates within two years of today",
            [FieldError("from" if first < today - reach else "to", "is out of reach")],
        )
    if last < first:
        raise InvalidInput("The range ends before it starts", [FieldError("to", "is before from")])
    if (last - first).days >= MAX_RANGE_DAYS:
        raise InvalidInput(
            f"Ask for at most {MAX_RANGE_DAYS} days at a time",
            [FieldError("to", f"is more than {MAX_RANGE_DAYS} days after from")],
        )


async def bookable_periods(
    session: AsyncSession,
    practitioner: Practitioner,
    service: Service,
    zone: ZoneInfo,
    first: datetime.date,
    last: datetime.date,
) -> list[Period]:
    """When the practitioner works, and the service's location (if it has one) is open."""
    periods = await practitioner_periods(session, practitioner.id, zone, first, last)
    if service.location_id is None or not periods:
        return periods
    opening = (
        await session.scalars(
            select(LocationHours).where(LocationHours.location_id == service.location_id)
        )
    ).all()
    return intersect(periods, working_periods(zone, first, last, opening, []))


async def practitioner_periods(
    session: AsyncSession,
    practitioner_id: uuid.UUID,
    zone: ZoneInfo,
    first: datetime.date,
    last: datetime.date,
) -> list[Period]:
    weekly = (
        await session.scalars(
            select(WeeklyHours).where(WeeklyHours.practitioner_id == practitioner_id)
        )
    ).all()
    exceptions = (
        await session.scalars(
            select(AvailabilityException).where(
                AvailabilityException.practitioner_id == practitioner_id,
                AvailabilityException.day.between(first, last),
            )
        )
    ).all()
    return working_periods(zone, first, last, weekly, exceptions)


async def busy_periods(
    session: AsyncSession,
    practitioner_id: uuid.UUID,
    since: datetime.datetime,
    until: datetime.datetime,
    now: datetime.datetime,
    location_id: uuid.UUID | None = None,
) -> list[Period]:
    """Time held by the practitioner's appointments, or by any at the location (buffers
    included); a card hold past its expiry no longer holds anything."""
    holder = Appointment.practitioner_id == practitioner_id
    if location_id is not None:
        holder = or_(holder, Appointment.location_id == location_id)
    query = select(Appointment.blocked_from, Appointment.blocked_until).where(
        holder,
        Appointment.status.in_(HOLDS_TIME),
        Appointment.blocked_from < until,
        Appointment.blocked_until > since,
        or_(
            Appointment.status != AppointmentStatus.PENDING_PAYMENT,
            and_(Appointment.hold_expires_at.is_not(None), Appointment.hold_expires_at > now),
        ),
    )
    return [(row.blocked_from, row.blocked_until) for row in await session.execute(query)]
