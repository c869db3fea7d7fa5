"""Bookable start times as the slots API gives them (camelCase JSON)."""

import datetime
import uuid
from zoneinfo import ZoneInfo

import msgspec

from polyclinic.scheduling.slots.services import Slot
from polyclinic.web.openapi import published_as


class SlotOut(msgspec.Struct, rename="camel"):
    starts_at: datetime.datetime
    ends_at: datetime.datetime
    local_starts_at: str
    local_ends_at: str


@published_as("polyclinic.scheduling.appointment_schemas")
class SlotsOut(msgspec.Struct, rename="camel"):
    timezone: str
    practitioner_id: uuid.UUID
    service_id: uuid.UUID
    slots: list[SlotOut]


def slots_out(
    slots: list[Slot], zone: ZoneInfo, practitioner_id: uuid.UUID, service_id: uuid.UUID
) -> SlotsOut:
    return SlotsOut(
        timezone=zone.key,
        practitioner_id=practitioner_id,
        service_id=service_id,
        slots=[
            SlotOut(
                starts_at=s.starts_at,
                ends_at=s.ends_at,
                local_starts_at=s.starts_at.astimezone(zone).isoformat(),
                local_ends_at=s.ends_at.astimezone(zone).isoformat(),
            )
            for s in slots
        ],
    )
